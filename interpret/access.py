"""Who may use a shared server: OIDC sign-in (Streamlit's ``st.login``), a shared
password, or open.  Pure logic here; ``ui/`` draws the gate.

secrets.toml (Streamlit's secrets file, never in the URL or the repository):

```toml
# Sign-in with your identity provider (Streamlit's built-in OIDC)
[auth]
redirect_uri = "https://interpret.example.com/oauth2callback"
cookie_secret = "a long random string"
client_id = "..."
client_secret = "..."
server_metadata_url = "https://login.example.com/.well-known/openid-configuration"
# optional: allowed_domains = ["example.com"]   (interpret's own check of the e-mail)

# or, for a small team, a shared password (plain, or its SHA-256 as "sha256:<hex>")
[interpret]
password = "sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
```
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Mapping, Optional, Sequence

OIDC_KEYS = ("client_id", "client_secret", "server_metadata_url", "redirect_uri", "cookie_secret")


def _get(mapping: Any, key: str, default=None):
    try:
        return mapping[key] if key in mapping else default
    except Exception:  # Streamlit's secrets raise if no file exists
        return default


def auth_mode(secrets: Mapping) -> str:
    """'oidc' when an [auth] section with a provider is configured, 'password' when
    [interpret].password is set, else 'open'."""
    auth = _get(secrets, "auth", {}) or {}
    if all(_get(auth, k) for k in OIDC_KEYS) or (
        _get(auth, "redirect_uri") and _get(auth, "cookie_secret")
        and any(isinstance(v, Mapping) and _get(v, "client_id") for v in _values(auth))
    ):
        return "oidc"
    if configured_password(secrets):
        return "password"
    return "open"


def _values(m):
    try:
        return list(m.values())
    except Exception:
        return []


def configured_password(secrets: Mapping) -> Optional[str]:
    section = _get(secrets, "interpret", {}) or {}
    pw = _get(section, "password")
    return str(pw) if pw else None


def password_ok(given: Optional[str], configured: Optional[str]) -> bool:
    """Constant-time comparison of a typed password with the configured one (plain or
    ``sha256:<hex>``).  Both sides are hashed first, so the comparison time depends on
    neither the length nor the content of the secret."""
    if not given or not configured:
        return False
    given_digest = hashlib.sha256(given.encode("utf-8")).digest()
    if configured.startswith("sha256:"):
        try:
            want = bytes.fromhex(configured[len("sha256:"):].strip())
        except ValueError:
            return False
    else:
        want = hashlib.sha256(configured.encode("utf-8")).digest()
    return hmac.compare_digest(given_digest, want)


def email_allowed(email: Optional[str], allowed_domains: Optional[Sequence[str]]) -> bool:
    """With ``allowed_domains`` configured, only e-mails of those domains get in."""
    if not allowed_domains:
        return True
    if not email or "@" not in email:
        return False
    domain = email.rsplit("@", 1)[1].lower()
    return domain in {d.lower().lstrip("@") for d in allowed_domains}


# ----------------------------------------------------------------------------------
# Wrong passwords are slowed down


class PasswordThrottle:
    """Exponential waits after wrong passwords, per client (its address) and for the
    whole server.

    A client's first ``free`` wrong passwords cost nothing; each one after that makes it
    wait ``base_s``, then twice as long, and so on, up to ``cap_s``.  The server as a whole
    allows ``global_free`` wrong passwords (from anyone) before every client waits, in
    the same way, up to ``global_cap_s`` (shorter: a crowd of addresses slows everyone
    down a little, it cannot lock the team out for long).  A wait is a lockout, not a
    sleep: nothing holds a thread, and an attempt made during it is refused without
    being checked or counted (:meth:`retry_after` first).  Counts are forgotten after
    ``forget_s`` without a failure; at most ``max_clients`` clients are remembered
    (the oldest forgotten first).  Thread-safe."""

    def __init__(self, free: int = 3, base_s: float = 2.0, cap_s: float = 900.0,
                 global_free: int = 30, global_cap_s: float = 60.0, forget_s: float = 3600.0,
                 max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.free, self.base_s, self.cap_s = free, base_s, cap_s
        self.global_free, self.global_cap_s = global_free, global_cap_s
        self.forget_s, self.max_clients = forget_s, max_clients
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: "OrderedDict[str, list]" = OrderedDict()  # key -> [count, last, until]
        self._global = [0, -math.inf, -math.inf]

    def __len__(self) -> int:
        return len(self._clients)

    def _wait(self, count: int, free: int, cap: float) -> float:
        if count <= free:
            return 0.0
        return float(min(cap, self.base_s * 2.0 ** min(count - free - 1, 60)))

    def _fresh(self, rec: list, now: float) -> list:
        if now - rec[1] > self.forget_s:
            rec[:] = [0, -math.inf, -math.inf]
        return rec

    def retry_after(self, client: str) -> float:
        """Seconds before ``client`` may try a password (0: now)."""
        now = self._clock()
        with self._lock:
            rec = self._clients.get(client)
            own = self._fresh(rec, now)[2] - now if rec is not None else 0.0
            shared = self._fresh(self._global, now)[2] - now
        return max(0.0, own, shared)

    def failed(self, client: str) -> float:
        """Count a wrong password from ``client``; returns how long it must now wait."""
        now = self._clock()
        with self._lock:
            rec = self._fresh(self._clients.pop(client, [0, -math.inf, -math.inf]), now)
            rec[0] += 1
            rec[1] = now
            rec[2] = now + self._wait(rec[0], self.free, self.cap_s)
            self._clients[client] = rec
            while len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)
            g = self._fresh(self._global, now)
            g[0] += 1
            g[1] = now
            g[2] = now + self._wait(g[0], self.global_free, self.global_cap_s)
            return max(0.0, rec[2] - now, g[2] - now)

    def succeeded(self, client: str) -> None:
        """A right password: ``client``'s count starts again (the server's does not)."""
        with self._lock:
            self._clients.pop(client, None)


def client_key(remote_ip: Optional[str], forwarded_for: Optional[str]) -> str:
    """Whose wrong passwords these are: the connection's address, or, when the
    connection comes from this host or a private network (a reverse proxy in front of
    the server, as in the README's nginx and Docker set-ups), the last address of its
    ``X-Forwarded-For`` header: the one that proxy added, which the client cannot
    choose.  "local" for a loopback connection without the header."""
    import ipaddress

    remote = (remote_ip or "").strip()
    try:
        behind_proxy = not remote or ipaddress.ip_address(remote).is_private
    except ValueError:
        behind_proxy = False
    if behind_proxy and forwarded_for:
        last = forwarded_for.split(",")[-1].strip()
        if last:
            return last
    return remote or "local"


def throttle_message(seconds: float) -> str:
    """What the password form says while a client must wait ``seconds`` ("" for none)."""
    if seconds <= 0:
        return ""
    if seconds <= 60:
        n = max(1, math.ceil(seconds))
        return f"Too many wrong passwords. Try again in {n} second{'s' if n != 1 else ''}."
    n = math.ceil(seconds / 60)
    return f"Too many wrong passwords. Try again in {n} minute{'s' if n != 1 else ''}."


# ----------------------------------------------------------------------------------
# Which sessions have passed the door (read by the server's upload route)


class SignedInSessions:
    """The ids of the Streamlit sessions that have passed the access gate in this
    process.  The script adds its session at sign-in; the server's perimeter
    (ui/perimeter.py) accepts uploads only for these, and drops the ids (and their
    uploads) of sessions that have ended.  Thread-safe."""

    def __init__(self):
        self._ids: set = set()
        self._lock = threading.Lock()

    def add(self, session_id: str) -> None:
        with self._lock:
            self._ids.add(session_id)

    def discard(self, session_id: str) -> None:
        with self._lock:
            self._ids.discard(session_id)

    def allowed(self, session_id: str) -> bool:
        with self._lock:
            return session_id in self._ids

    def ids(self) -> list:
        with self._lock:
            return list(self._ids)

    def keep_only(self, live) -> int:
        """Forget every session not in ``live``; returns how many were forgotten."""
        live = set(live)
        with self._lock:
            gone = self._ids - live
            self._ids -= gone
        return len(gone)


#: this server process's signed-in sessions
SIGNED_IN = SignedInSessions()

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
from typing import Any, Mapping, Optional, Sequence

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

"""The server's perimeter: what is checked before a request reaches Streamlit.

The access gate (ui/access.py) runs inside the script, so on its own it protects only
what the script draws.  Streamlit serves other routes that never run the script; two of
them matter to a shared server:

* ``PUT /_stcore/upload_file/<session>/<file>`` stores a file in the session's memory
  (up to ``server.maxUploadSize`` per request) whether or not the session has passed
  the password;
* ``GET /_stcore/metrics`` tells anyone the active sessions, page runs and uploaded
  bytes.

:class:`Perimeter` is an ASGI middleware on the ``st.App`` that ``app.py`` already
defines for the warm start (``st.App(..., middleware=[Middleware(Perimeter)])``; user
middleware runs before Streamlit's own routes).  Why a middleware and not, say,
Streamlit's upload limit set low until sign-in: ``server.maxUploadSize`` is one
process-wide option, not per session, and each ``st.file_uploader``'s own
``max_upload_size`` is checked only by the browser; a middleware sees every request,
knows the session from the URL, and refuses before a byte of the body is read.  It:

* refuses uploads (403, with the reason) from sessions that are not in
  :data:`interpret.access.SIGNED_IN` (added by the script when the session passes the
  password or the identity provider), unless the server is open (no sign-in at all);
* refuses an upload larger than the largest a form accepts (``max_model_mb``), from its
  Content-Length or while streaming, and one that would make the session hold more
  than twice that (413);
* answers 404 on ``/_stcore/metrics`` unless the operator opens it (``open_metrics``);
* drops the uploads of sessions that have ended (closed tab, lost connection) and
  forgets them as signed in: :func:`sweep`, run every :data:`SWEEP_S` seconds by the
  server's lifespan (ui/warmup.py) and before each upload.  Streamlit itself keeps a
  closed tab's uploads until its session is shut down, which for a disconnected session
  may be never.
"""

from __future__ import annotations

import logging
import re
from typing import Callable, Optional

from interpret.access import SIGNED_IN, SignedInSessions, auth_mode
from interpret.settings import Settings, load_settings

log = logging.getLogger("interpret.app")

UPLOAD = re.compile(r"/_stcore/upload_file/(?P<session>[^/]+)/[^/]+/?$")
METRICS = re.compile(r"/_stcore/metrics/?$")
#: how often the server drops the uploads of ended sessions, seconds
SWEEP_S = 30.0
MIB = 2**20


def _mode() -> str:
    from .access import _secrets

    return auth_mode(_secrets())


def _runtime():
    try:
        from streamlit.runtime import Runtime

        return Runtime.instance() if Runtime.exists() else None
    except Exception:  # noqa: BLE001 - no runtime (tests)
        return None


def _held_bytes(runtime, session_id: str) -> int:
    mgr = getattr(runtime, "uploaded_file_mgr", None) if runtime is not None else None
    storage = getattr(mgr, "file_storage", None)
    if not storage:
        return 0
    files = storage.get(session_id) or {}
    return sum(len(f.data) for f in list(files.values()))


def sweep(runtime=None, signed_in: SignedInSessions = SIGNED_IN) -> int:
    """Drop the uploaded files of every session that is no longer active, and forget
    those sessions as signed in; returns how many sessions' files were dropped."""
    runtime = runtime if runtime is not None else _runtime()
    if runtime is None:
        return 0
    mgr = getattr(runtime, "uploaded_file_mgr", None)
    storage = getattr(mgr, "file_storage", None)
    dropped, freed = 0, 0
    if storage is not None:
        for sid in list(storage.keys()):
            if not runtime.is_active_session(sid):
                freed += _held_bytes(runtime, sid)
                mgr.remove_session_files(sid)
                dropped += 1
    signed_in.keep_only([sid for sid in signed_in.ids() if runtime.is_active_session(sid)])
    if dropped:  # a warning: the operator sees it with Streamlit's default log level
        log.warning("dropped the uploads of %d ended session(s) (%d bytes)", dropped, freed)
    return dropped


async def _reply(send, status: int, text: str) -> None:
    body = text.encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class Perimeter:
    """ASGI middleware: see the module docstring.  ``settings`` and ``mode`` are read
    on each request (the operator's current settings and secrets)."""

    def __init__(self, app, settings: Callable[[], Settings] = load_settings,
                 mode: Callable[[], str] = _mode, signed_in: SignedInSessions = SIGNED_IN,
                 runtime: Callable[[], Optional[object]] = _runtime):
        self.app = app
        self._settings = settings
        self._mode = mode
        self._signed_in = signed_in
        self._runtime = runtime

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if METRICS.search(path):
            if not self._open_metrics():
                return await _reply(send, 404, "Not found.")
            return await self.app(scope, receive, send)
        m = UPLOAD.search(path)
        if m is None or scope.get("method") != "PUT":
            return await self.app(scope, receive, send)
        session = m.group("session")
        runtime = self._runtime()
        if runtime is not None:  # first forget the sessions that have ended
            sweep(runtime, self._signed_in)
        try:
            mode = self._mode()
        except Exception:  # noqa: BLE001 - unreadable secrets: closed, not open
            mode = "password"
        if mode != "open" and not self._signed_in.allowed(session):
            log.warning("refused an upload from a session that has not signed in")
            return await _reply(send, 403, "Sign in first: this server accepts uploads only from "
                                           "sessions that have passed its password or sign-in.")
        try:
            limit = self._settings().max_model_mb * MIB
        except Exception:  # noqa: BLE001 - broken settings: the pages say why
            limit = 0
        limit += 64 * 1024  # the multipart framing around the file
        held = _held_bytes(runtime, session)
        headers = dict(scope.get("headers") or [])
        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            return await _reply(send, 400, "Invalid Content-Length.")
        too_large = (f"Too large: this server accepts uploads of at most {limit // MIB} MiB, and "
                     f"at most {2 * (limit // MIB)} MiB held per session.")
        if declared > limit or held + declared > 2 * limit:
            return await _reply(send, 413, too_large)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit or held + seen > 2 * limit:
                    raise _TooLarge()
            return message

        started = False

        async def tracked_send(message):
            nonlocal started
            if message.get("type") == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked_send)
        except _TooLarge:
            if not started:
                await _reply(send, 413, too_large)

    def _open_metrics(self) -> bool:
        try:
            return bool(self._settings().open_metrics)
        except Exception:  # noqa: BLE001 - broken settings: closed
            return False

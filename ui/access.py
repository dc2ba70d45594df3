"""The door of a shared server: OIDC sign-in (Streamlit's ``st.login``), a shared
password, or open with a plain statement that it is.  The logic (mode, constant-time
password check, e-mail domains) is in :mod:`interpret.access`; this module only draws.

The password is typed into a form and remembered in this session only: never in the
URL, never in a cookie, never shared between sessions.  Wrong passwords are slowed
down per client address and for the whole server (:class:`interpret.access.PasswordThrottle`):
the form then says when to try again and checks nothing until then.  A session that
passes the door is registered (:data:`interpret.access.SIGNED_IN`), and only registered
sessions may upload files: the server's perimeter (ui/perimeter.py) refuses the others'
uploads before reading them.
"""

from __future__ import annotations

import logging

import streamlit as st

from interpret import words
from interpret.access import (SIGNED_IN, PasswordThrottle, auth_mode, client_key, configured_password,
                              email_allowed, password_ok, throttle_message)

log = logging.getLogger("interpret.app")

#: wrong passwords of this server process, per client address and in all
THROTTLE = PasswordThrottle()


def session_id() -> str | None:
    """This script run's Streamlit session id (None outside a session)."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        return ctx.session_id if ctx is not None else None
    except Exception:  # noqa: BLE001 - outside a script run
        return None


def _signed_in(yes: bool) -> None:
    sid = session_id()
    if sid:
        (SIGNED_IN.add if yes else SIGNED_IN.discard)(sid)


def client_address() -> str:
    """The client's address, the key of the wrong-password count
    (:func:`interpret.access.client_key`: behind a reverse proxy, the address the proxy
    saw), "local" for a loopback connection without a proxy."""
    try:
        ip = st.context.ip_address
        forwarded = st.context.headers.get("X-Forwarded-For")
    except Exception:  # noqa: BLE001 - no client context (tests)
        ip, forwarded = None, None
    return client_key(ip if isinstance(ip, str) else None,
                      forwarded if isinstance(forwarded, str) else None)


def _secrets():
    try:
        return st.secrets.to_dict() if hasattr(st.secrets, "to_dict") else dict(st.secrets)
    except Exception:  # noqa: BLE001 - no secrets file: open server
        return {}


def mode() -> str:
    return auth_mode(_secrets())


def gate() -> bool:
    """Draw the sign-in screen if needed; True when this session may use the app."""
    secrets = _secrets()
    m = auth_mode(secrets)
    if m == "open":
        return True
    ok = _oidc(secrets) if m == "oidc" else _password(secrets)
    _signed_in(ok)
    return ok


def _oidc(secrets) -> bool:
    user = st.user
    if not getattr(user, "is_logged_in", False):
        st.title("Interpret")
        st.markdown("This dashboard is private to your organisation. Sign in to continue.")
        if st.button("Sign in", type="primary", icon=":material/login:"):
            st.login()
        return False
    allowed = (secrets.get("auth", {}) or {}).get("allowed_domains")
    email = getattr(user, "email", None) or user.get("email") if hasattr(user, "get") else None
    if not email_allowed(email, allowed):
        st.error(f"{words.text(email or 'This account')} is not allowed on this server.",
                 icon=":material/block:")
        if st.button("Sign out"):
            st.logout()
        return False
    return True


def _password(secrets) -> bool:
    if st.session_state.get("access_ok"):
        return True
    st.title("Interpret")
    st.markdown("This dashboard is shared by a team. Enter the team's password to continue.")
    with st.form("access_form", border=True):
        given = st.text_input("Password", type="password", key="w_access_password")
        ok = st.form_submit_button("Enter", type="primary")
    if ok:
        client = client_address()
        wait = THROTTLE.retry_after(client)
        if wait > 0:  # not even checked (nor counted) before then
            st.error(throttle_message(wait), icon=":material/timer:")
        elif password_ok(given, configured_password(secrets)):
            THROTTLE.succeeded(client)
            st.session_state["access_ok"] = True
            st.session_state.pop("w_access_password", None)
            _signed_in(True)
            st.rerun()
        else:
            wait = THROTTLE.failed(client)
            log.warning("wrong password on the access form from %s", client)
            st.error(" ".join(filter(None, ["That password is not right.", throttle_message(wait)])),
                     icon=":material/lock:")
    return False


def sidebar_note() -> None:
    """A line in the sidebar saying who can reach this server."""
    m = mode()
    if m == "open":
        st.caption(":material/public: This server is **open to anyone who can reach it** "
                   "(no sign-in or password configured).")
    elif m == "oidc":
        user = st.user
        name = getattr(user, "email", None) or getattr(user, "name", None) or "signed in"
        st.caption(f":material/verified_user: {words.text(name)}")  # the visitor's own name
        if st.button("Sign out", key="w_sign_out"):
            st.logout()
    else:
        st.caption(":material/lock: Password-protected team server.")
        if st.button("Lock", key="w_lock", help="Forget the password in this browser tab."):
            st.session_state.pop("access_ok", None)
            _signed_in(False)
            st.rerun()

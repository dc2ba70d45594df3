"""The door of a shared server: OIDC sign-in (Streamlit's ``st.login``), a shared
password, or open with a plain statement that it is.  The logic (mode, constant-time
password check, e-mail domains) is in :mod:`interpret.access`; this module only draws.

The password is typed into a form and remembered in this session only: never in the
URL, never in a cookie, never shared between sessions.
"""

from __future__ import annotations

import logging

import streamlit as st

from interpret.access import auth_mode, configured_password, email_allowed, password_ok

log = logging.getLogger("interpret.app")


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
    if m == "oidc":
        return _oidc(secrets)
    return _password(secrets)


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
        st.error(f"{email or 'This account'} is not allowed on this server.", icon=":material/block:")
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
        if password_ok(given, configured_password(secrets)):
            st.session_state["access_ok"] = True
            st.session_state.pop("w_access_password", None)
            st.rerun()
        else:
            log.warning("wrong password on the access form")
            st.error("That password is not right.", icon=":material/lock:")
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
        st.caption(f":material/verified_user: {name}")
        if st.button("Sign out", key="w_sign_out"):
            st.logout()
    else:
        st.caption(":material/lock: Password-protected team server.")
        if st.button("Lock", key="w_lock", help="Forget the password in this browser tab."):
            st.session_state.pop("access_ok", None)
            st.rerun()

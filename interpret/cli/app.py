"""``app``: start the dashboard.  Options this command does not know (Streamlit's own,
such as ``--server.port 8600`` or ``--theme.base dark``) are passed on to Streamlit.

The server starts warm: ``streamlit run app.py`` serves app.py's ``st.App``, whose
start-up loads the bundled model and builds the default views before the server answers
its health check (ui/warmup.py; setting ``warm_start``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path



def _find_app() -> Path:
    for base in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (base / "app.py").exists() and (base / "pages").is_dir():
            return base / "app.py"
    raise FileNotFoundError


def cmd_app(args) -> int:
    from interpret.errors import InputError
    from interpret.settings import load_settings

    try:
        app = _find_app()
    except FileNotFoundError:
        raise InputError("app.py (and pages/) not found in the current folder or next to the "
                         "interpret package; run this from the project's folder.") from None
    env = dict(os.environ)
    if args.settings:
        env["INTERPRET_SETTINGS"] = str(Path(args.settings).resolve())
    os.environ.update({k: v for k, v in env.items() if k == "INTERPRET_SETTINGS"})
    settings = load_settings()  # validate now: a bad file is one clear line, not a broken server
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port),
           "--server.address", args.address,
           "--server.maxUploadSize", str(max(settings.max_model_mb, settings.max_image_mb))]
    if args.headless:
        cmd += ["--server.headless", "true"]
    # Streamlit's own options, as a Streamlit user would write them; later ones win, so
    # ``--server.port 8600`` overrides the default above
    cmd += list(getattr(args, "passthrough", []) or [])
    if os.name == "posix":
        # become the Streamlit server (exec): signals from a process manager or Docker
        # (PID 1) reach it directly and no orphaned server outlives this command
        os.chdir(app.parent)
        os.execve(sys.executable, cmd, env)
    return subprocess.call(cmd, cwd=str(app.parent), env=env)  # pragma: no cover - Windows



def register(sub) -> None:
    sp = sub.add_parser("app", help="start the dashboard (other options go to Streamlit)")
    sp.add_argument("--port", type=int, default=8501)
    sp.add_argument("--address", default="localhost")
    sp.add_argument("--headless", action="store_true")
    sp.add_argument("--settings", help="settings TOML file (default: $INTERPRET_SETTINGS or ./interpret.toml)")
    sp.set_defaults(func=cmd_app, passes_unknown=True)

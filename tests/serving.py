"""Starting a dashboard server for a test or the load test: a free loopback port and
waiting for Streamlit's health endpoint."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Return once ``url``/_stcore/health answers "ok"; RuntimeError if the server
    process exits first, TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200 and r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not become healthy in {timeout:.0f}s")


def stop(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Terminate the server; kill it if it has not exited after ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


# ----------------------------------------------------------------------------------
# The real-browser tests: one Streamlit server per test module, one Chromium


import contextlib  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Dict, Iterator, Optional  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


@contextlib.contextmanager
def streamlit_server(log_name: str, script: str = "app.py",
                     env: Optional[Dict[str, Optional[str]]] = None) -> Iterator[str]:
    """``streamlit run script`` on a free loopback port, its output in
    test-artifacts/<log_name>; yields the URL once healthy, stops the server after.
    ``env``: variables to set (None: to unset)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ARTIFACTS.mkdir(exist_ok=True)
    full_env = dict(os.environ, PYTHONUNBUFFERED="1")
    for k, v in (env or {}).items():
        if v is None:
            full_env.pop(k, None)
        else:
            full_env[k] = v
    with open(ARTIFACTS / log_name, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=full_env)
        try:
            wait_healthy(url, proc)
            yield url
        finally:
            stop(proc, timeout=15)


def browser_api():
    """Playwright's sync API for a browser test module, or skip the module (at import)
    when Debian's Chromium or the playwright package is missing."""
    import pytest

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium to run the browser test)",
                    allow_module_level=True)
    return pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


@contextlib.contextmanager
def chromium(sync_api) -> Iterator[object]:
    """Debian's Chromium driven by playwright (``sync_api``: playwright.sync_api)."""
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def settle(page, timeout_s: float = 180) -> None:
    """Wait until the script run triggered by the last action has finished."""
    app = "[data-testid=stApp][data-test-script-state=notRunning]"
    page.wait_for_selector(app, timeout=timeout_s * 1000)
    time.sleep(0.4)  # a rerun may start right after the first one (widget callbacks)
    page.wait_for_selector(app, timeout=timeout_s * 1000)


def assert_no_exception(page, where: str) -> None:
    n = page.locator("[data-testid=stException]").count()
    assert n == 0, f"{n} exception box(es) on {where}"

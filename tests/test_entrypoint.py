"""`python -m interpret app`: the entry point the Docker image runs, with its settings
file, answering on the health endpoint the container's HEALTHCHECK polls."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from serving import free_port, stop, wait_healthy

ROOT = Path(__file__).resolve().parent.parent


def test_app_command_serves_health_with_a_settings_file(tmp_path):
    settings = tmp_path / "interpret.toml"
    settings.write_text("max_concurrent_heavy = 1\nmax_model_mb = 64\n")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "interpret", "app", "--headless", "--port", str(port),
                             "--address", "127.0.0.1", "--settings", str(settings)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        try:
            wait_healthy(f"http://127.0.0.1:{port}", proc)
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(f"{exc}: {proc.stdout.read() if proc.poll() is not None else 'no answer'}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert r.status == 200 and b"<html" in r.read().lower()
        # the command *is* the server: stopping it stops serving (nothing orphaned)
        proc.terminate()
        proc.wait(timeout=30)
        time.sleep(0.5)
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
    finally:
        stop(proc)


def test_app_command_refuses_a_broken_settings_file_in_one_line(tmp_path):
    bad = tmp_path / "interpret.toml"
    bad.write_text("allow_uploads = \"sometimes\"\n")
    r = subprocess.run([sys.executable, "-m", "interpret", "app", "--settings", str(bad)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "allow_uploads" in lines[0] and "Traceback" not in r.stderr


def test_app_command_passes_streamlits_own_options_on():
    """``--server.port 8600`` is Streamlit's option, not ours: it reaches Streamlit (and
    wins over our default port), as a Streamlit user would expect."""
    port = free_port()
    env = dict(os.environ, INTERPRET_WARM_START="0")
    proc = subprocess.Popen([sys.executable, "-m", "interpret", "app", "--headless", "--address", "127.0.0.1",
                             "--server.port", str(port), "--theme.base", "dark"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        try:
            wait_healthy(f"http://127.0.0.1:{port}", proc)
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(f"{exc}: {proc.stdout.read() if proc.poll() is not None else 'no answer'}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert r.status == 200 and b"<html" in r.read().lower()
    finally:
        stop(proc)


def test_app_command_still_refuses_a_mistyped_option_of_its_own():
    r = subprocess.run([sys.executable, "-m", "interpret", "app", "--port", "eighty"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "invalid int value" in r.stderr and "Traceback" not in r.stderr

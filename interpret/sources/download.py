"""Downloading weights: with a time limit (torch.hub's own has none and can hang),
progress, an optional checksum, and ``INTERPRET_OFFLINE=1`` to never download."""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path
from typing import Callable, Optional

from ..errors import InputError

DOWNLOAD_TIMEOUT_S = 15.0


def offline() -> bool:
    """Whether ``INTERPRET_OFFLINE`` forbids every download."""
    return os.environ.get("INTERPRET_OFFLINE", "") not in ("", "0")


def download(url: str, dest: Path, timeout: float = DOWNLOAD_TIMEOUT_S,
             progress: Optional[Callable[[int, int], object]] = None,
             sha256_prefix: Optional[str] = None) -> None:
    """Fetch ``url`` to ``dest`` (through a ``.partial`` file, so a broken download never
    looks finished); ``progress(bytes_done, bytes_total)``; the SHA-256 must start with
    ``sha256_prefix`` when given."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".partial")
    with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as fh:
        total = int(resp.headers.get("Content-Length") or 0)
        done = 0
        while True:
            chunk = resp.read(1 << 20)
            if not chunk:
                break
            fh.write(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    if sha256_prefix:
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        if not digest.startswith(sha256_prefix):
            tmp.unlink(missing_ok=True)
            raise InputError(f"Downloaded weights from {url} failed the checksum; try again.")
    tmp.replace(dest)

"""Server settings: one TOML file plus ``INTERPRET_*`` environment variables.

Precedence, lowest to highest: built-in defaults < the settings file < environment
variables < explicit overrides passed by the caller (the CLI).  The settings file is
``$INTERPRET_SETTINGS`` if set, else ``./interpret.toml`` if it exists.  Every key is
documented in the README ("Configuration") and in :data:`DEFAULTS`.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from .errors import InputError


@dataclass(frozen=True)
class Settings:
    #: folder of checkpoints described by a ``models.toml`` manifest (None: no folder)
    model_folder: Optional[str] = None
    #: folder of photos offered as an image set on the Features page (None: no folder)
    image_folder: Optional[str] = None
    #: folder where the Dataset page stores its runs, shared by everyone on the server
    #: (None: a temporary folder that lives as long as the server process)
    dataset_runs: Optional[str] = None
    #: whether people may upload their own models and images at all
    allow_uploads: bool = True
    #: allow pickled modules, TorchScript and .pt2 uploads: they run code from the file,
    #: so a hostile upload could take over the server.  Off unless you trust every user.
    allow_untrusted: bool = False
    #: largest uploaded image, MiB
    max_image_mb: int = 20
    #: largest uploaded model file, MiB (also Streamlit's server.maxUploadSize)
    max_model_mb: int = 500
    #: "auto" (CUDA if available, else CPU), "cpu", "cuda", "cuda:1", ...
    device: str = "auto"
    #: torch intra-op threads; 0 = the container's CPU quota (cgroup, not the host's core
    #: count) divided by max_concurrent_heavy, so that concurrent heavy computations do
    #: not oversubscribe the cores (measured: 2 threads x 2 jobs on 2 cores made each
    #: optimisation step ~25x slower than 1 thread each)
    torch_threads: int = 0
    #: heavy computations (IG, occlusion, Score-CAM, feature visualisation, dataset
    #: scans) allowed to run at once; others wait in a queue with their position shown
    max_concurrent_heavy: int = 2
    #: per-request time limit for a heavy computation, seconds
    heavy_timeout_s: int = 300
    #: memory bound of the server-wide result cache, MiB
    result_cache_mb: int = 512
    #: load the bundled model and build the default views when the server starts, so
    #: that the first visitor does not wait for them (a few seconds of CPU per start)
    warm_start: bool = True
    #: answer Streamlit's /_stcore/metrics (active sessions, page runs, uploaded bytes) to
    #: anyone who can reach the server, without the password: off unless you open it
    open_metrics: bool = False
    #: largest photo, in pixels (width x height), read from its header before any pixel
    #: is decoded (a small file claiming huge dimensions is a decompression bomb)
    max_image_pixels: int = 40_000_000
    #: largest image a preprocessing step may make, in pixels (width x height): the resize
    #: before the crop and the model's input.  A 114-byte 1x10000 PNG resized to a shorter
    #: side of 256 would be 256 x 2,560,000 pixels (3.3 GB), and a model file declaring a
    #: 13000x13000 input would cost gigabytes per prediction: both are refused before any
    #: pixel is made.  Default 4,194,304 = 2048 x 2048.
    max_input_pixels: int = 2048 * 2048
    #: most tensors a state-dict file may hold, counted from the file's index (the
    #: safetensors header, the torch zip's directory) before any tensor is read; vision
    #: models have a few hundred to a few thousand
    max_state_tensors: int = 20_000
    #: most files in an uploaded zip (a Hugging Face folder, an ONNX graph and its data
    #: files, a torch state dict), counted from the zip's end record before it is parsed
    max_zip_files: int = 1024
    #: most bytes, MiB, unpacked from an uploaded zip, and most bytes of tensors in a
    #: state dict
    max_unpacked_mb: int = 2048

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


DEFAULTS = Settings()
ENV_PREFIX = "INTERPRET_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _coerce(name: str, value: Any, origin: str) -> Any:
    f = {f.name: f for f in fields(Settings)}[name]
    typ = str(f.type)
    try:
        if "bool" in typ:
            if isinstance(value, bool):
                return value
            v = str(value).strip().lower()
            if v in _TRUE:
                return True
            if v in _FALSE:
                return False
            raise ValueError
        if "int" in typ:
            if isinstance(value, bool):
                raise ValueError
            out = int(str(value).strip())
            if out < 0:
                raise ValueError
            return out
        if "Optional[str]" in typ:
            return None if value in (None, "") else str(value)
        return str(value)
    except (TypeError, ValueError):
        raise InputError(f"Setting '{name}' from {origin} has an invalid value {value!r}.") from None


def settings_path() -> Optional[Path]:
    env = os.environ.get(ENV_PREFIX + "SETTINGS")
    if env:
        p = Path(env)
        if not p.exists():
            raise InputError(f"INTERPRET_SETTINGS points to {p}, which does not exist.")
        return p
    p = Path("interpret.toml")
    return p if p.exists() else None


def load_settings(path: Optional[os.PathLike] = None, env: Optional[Mapping[str, str]] = None,
                  **overrides) -> Settings:
    """Defaults < file < environment < ``overrides``."""
    env = os.environ if env is None else env
    values = DEFAULTS.as_dict()
    known = set(values)
    p = Path(path) if path is not None else settings_path()
    if p is not None:
        try:
            data = tomllib.loads(Path(p).read_text("utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"Settings file {p} is not valid TOML: {exc}") from None
        data = data.get("interpret", data)  # keys at top level or under [interpret]
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"Settings file {p} has unknown key(s): {', '.join(unknown)}. "
                             f"Known: {', '.join(sorted(known))}.")
        for k, v in data.items():
            values[k] = _coerce(k, v, str(p))
    for k in known:
        ev = env.get(ENV_PREFIX + k.upper())
        if ev is not None:
            values[k] = _coerce(k, ev, f"${ENV_PREFIX}{k.upper()}")
    for k, v in overrides.items():
        if k not in known:
            raise InputError(f"Unknown setting '{k}'.")
        if v is not None:
            values[k] = _coerce(k, v, "the command line")
    if values["max_concurrent_heavy"] < 1:
        raise InputError("max_concurrent_heavy must be at least 1.")
    return Settings(**values)


_CURRENT: Dict[tuple, Settings] = {}


def current() -> Settings:
    """The settings in force now, as :func:`load_settings` reads them (the settings file
    and ``INTERPRET_*`` variables), re-read only when the file or those variables change.
    The backend reads its bounds (``max_input_pixels``, ``max_state_tensors``...) here,
    so that the app, the CLI and a notebook obey the same operator's file."""
    p = settings_path()
    try:
        stamp = p.stat().st_mtime_ns if p is not None else None
    except OSError:
        stamp = None
    key = (str(p), stamp, tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(ENV_PREFIX))))
    hit = _CURRENT.get(key)
    if hit is None:
        hit = load_settings(p)
        _CURRENT.clear()
        _CURRENT[key] = hit
    return hit


def cpu_quota(root: str = "/sys/fs/cgroup") -> Optional[float]:
    """CPUs granted by the container's cgroup quota (v2 ``cpu.max`` or v1 CFS), or None."""
    r = Path(root)
    try:
        txt = (r / "cpu.max").read_text().split()
        if txt and txt[0] != "max":
            return int(txt[0]) / int(txt[1])
    except (OSError, ValueError, IndexError):
        pass
    for base in (r / "cpu", r / "cpu,cpuacct", r):
        try:
            q = int((base / "cpu.cfs_quota_us").read_text())
            per = int((base / "cpu.cfs_period_us").read_text())
            if q > 0 and per > 0:
                return q / per
        except (OSError, ValueError):
            continue
    return None


def default_threads(root: str = "/sys/fs/cgroup") -> int:
    """Threads for torch: the cgroup CPU quota (rounded up), else the CPUs this process
    may run on, never the host's total core count inside a limited container."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        affinity = os.cpu_count() or 1
    quota = cpu_quota(root)
    if quota is not None:
        return max(1, min(affinity, math.ceil(quota)))
    return max(1, affinity)


def apply_runtime(settings: Settings) -> Dict[str, Any]:
    """Apply thread count; return what was applied (for the app's "about" panel)."""
    import torch

    threads = settings.torch_threads or max(1, default_threads() // settings.max_concurrent_heavy)
    torch.set_num_threads(threads)
    return {"torch_threads": threads, "device": resolve_device(settings.device)}


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"Setting device='{device}' but no CUDA device is available.")
    return device

"""A server's model folder: checkpoints described by a ``models.toml`` manifest that
appear in everyone's model picker.

```toml
[[model]]
name = "Chest X-ray ResNet-18"       # shown in the picker (unique)
file = "xray_resnet18.safetensors"   # relative to the folder; state dict or safetensors
arch = "resnet18"                     # torchvision (resnet18 or torchvision:resnet18),
                                      # timm:<name>, or efficientnet_lite0
labels = "xray_labels.txt"            # optional: .txt one per line, or .json
description = "Fine-tuned on ..."     # optional
task = "multilabel"                   # optional: classification, multilabel, binary,
                                      # regression or segmentation (default: from the output)
# optional preprocessing: resize = 256, crop = 224, mean = [...], std = [...]

[[model]]
name = "Our own net"
file = "ournet.safetensors"
factory = "ourlab.models:build_net"   # the team's own code: imported on the server
kwargs = { width = 64, classes = 12 } # optional: passed to the factory
```
``file`` may also be an ``.onnx`` graph or a Hugging Face folder (or its zip), which
need no ``arch``.  Files are loaded with the same safe loader as uploads;
``allow_untrusted`` follows the server setting.  A ``factory`` is the operator's code,
named in the operator's manifest: it is imported when the entry is loaded; nothing a
visitor uploads is ever imported.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .errors import InputError
from .models import ModelHandle, load_model

MANIFEST = "models.toml"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    file: Path
    arch: Optional[str]
    labels: Optional[Path] = None
    description: str = ""
    resize: Optional[int] = None
    crop: Optional[int] = None
    mean: Optional[Tuple[float, float, float]] = None
    std: Optional[Tuple[float, float, float]] = None
    factory: Optional[str] = None
    kwargs: Optional[Dict[str, Any]] = None
    task: Optional[str] = None

    def load(self, allow_untrusted: bool = False) -> ModelHandle:
        return load_model(
            self.file, arch=self.factory or self.arch, arch_kwargs=self.kwargs,
            labels=self.labels, allow_untrusted=allow_untrusted,
            resize=self.resize, crop=self.crop, mean=self.mean, std=self.std, name=self.name,
            task=self.task,
        )


def _inside(folder: Path, rel: str, what: str, name: str, allow_dir: bool = False) -> Path:
    p = (folder / rel).resolve()
    if folder.resolve() not in p.parents and p != folder.resolve():
        raise InputError(f"Model '{name}': {what} '{rel}' points outside the model folder.")
    if allow_dir and p.is_dir():
        return p
    if not p.is_file():
        raise InputError(f"Model '{name}': {what} '{rel}' not found in {folder}.")
    return p


def read_model_folder(folder: Optional[str]) -> List[ModelEntry]:
    """The entries of a model folder's manifest (empty when no folder is configured)."""
    if not folder:
        return []
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"The model folder {root} does not exist or is not a folder.")
    manifest = root / MANIFEST
    if not manifest.exists():
        raise InputError(f"The model folder {root} has no {MANIFEST} manifest describing its models.")
    try:
        data = tomllib.loads(manifest.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{manifest} is not valid TOML: {exc}") from None
    entries, seen = [], set()
    for i, item in enumerate(data.get("model", [])):
        name = str(item.get("name") or "").strip()
        if not name:
            raise InputError(f"{manifest}: model #{i + 1} has no name.")
        if name in seen:
            raise InputError(f"{manifest}: two models are named '{name}'.")
        seen.add(name)
        if "file" not in item:
            raise InputError(f"{manifest}: model '{name}' has no file.")
        unknown = set(item) - {"name", "file", "arch", "labels", "description", "resize", "crop",
                               "mean", "std", "factory", "kwargs", "task"}
        if unknown:
            raise InputError(f"{manifest}: model '{name}' has unknown key(s) {', '.join(sorted(unknown))}.")
        factory = item.get("factory")
        if factory is not None:
            from .sources.factory import is_spec

            if "arch" in item:
                raise InputError(f"{manifest}: model '{name}' has both arch and factory; give one.")
            if not isinstance(factory, str) or not is_spec(factory):
                raise InputError(f"{manifest}: model '{name}': factory must be written "
                                 f"'package.module:function', not {factory!r}.")
        kwargs = item.get("kwargs")
        if kwargs is not None and (not isinstance(kwargs, dict) or factory is None):
            raise InputError(f"{manifest}: model '{name}': kwargs must be a table and need a factory.")
        entries.append(ModelEntry(
            name=name,
            file=_inside(root, item["file"], "file", name, allow_dir=True),
            arch=item.get("arch"),
            labels=_inside(root, item["labels"], "labels", name) if item.get("labels") else None,
            description=str(item.get("description", "")),
            resize=item.get("resize"), crop=item.get("crop"),
            mean=tuple(item["mean"]) if "mean" in item else None,
            std=tuple(item["std"]) if "std" in item else None,
            factory=factory, kwargs=dict(kwargs) if kwargs else None,
            task=_task(item.get("task"), manifest, name),
        ))
    return entries


def _task(task, manifest, name) -> Optional[str]:
    from .targets import TASKS

    if task is None:
        return None
    if task not in TASKS:
        raise InputError(f"{manifest}: model '{name}': task must be one of {', '.join(TASKS)}, not {task!r}.")
    return str(task)

"""timm models (``pip install "interpret-dashboard[timm]"``): by name with pretrained
weights from the local cache (downloaded with a time limit when missing), randomly
initialised, or built for a state-dict file (``arch="timm:<name>"``).

Everything a loader needs to know about a timm model is read from timm's own metadata,
never from a table of names: the preprocessing from ``pretrained_cfg`` through
``timm.data.resolve_model_data_config`` (mean, std, input size, crop percentage,
interpolation, crop mode); the classifier from ``pretrained_cfg["classifier"]``; the
suggested CAM layer from ``feature_info`` (the last feature stage); the token layout
from ``num_prefix_tokens`` and ``patch_embed.grid_size`` (class, distillation and
register tokens) or ``output_fmt == "NHWC"`` (Swin's channels-last maps); the labels
from ``timm.data.infer_imagenet_subset``.
"""

from __future__ import annotations

import difflib
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from ..errors import InputError
from ..handle import ModelInfo
from ..preprocessing import Preprocessing
from ..tokens import TokenLayout
from . import download as dl

PREFIX = "timm:"
HF_RESOLVE = "https://huggingface.co/{repo}/resolve/main/{file}"


def _timm():
    from ..optional import require

    return require("timm models", "timm", "timm")[0]


def model_name(source: str) -> str:
    """``timm:convnext_tiny`` -> ``convnext_tiny`` (a pretrained tag such as
    ``convnext_tiny.fb_in1k`` is kept)."""
    source = source.strip()
    return source[len(PREFIX):].strip() if source.startswith(PREFIX) else source


def architectures(pretrained: bool = False) -> List[str]:
    """Every architecture timm can build (``timm.list_models()``), for pickers."""
    return list(_timm().list_models(pretrained=pretrained))


def check_name(name: str) -> str:
    """The model name, or an InputError with close matches."""
    timm = _timm()
    name = model_name(name)
    if not name or not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise InputError(
            f"'{name}' is not a timm architecture.{hint} timm.list_models('*convnext*') "
            "lists them."
        )
    return name


def is_timm_module(module: nn.Module) -> bool:
    """Whether ``module`` was built by timm (it carries a ``pretrained_cfg``)."""
    return type(module).__module__.startswith("timm.") and hasattr(module, "pretrained_cfg")


# ----------------------------------------------------------------------------------
# what timm's metadata says about a built model


def _fixed_input_size(module: nn.Module) -> Optional[Tuple[int, int]]:
    """The input size a patch-embedding model was built for (ViT, DeiT, Swin built
    with ``img_size=``), which its ``pretrained_cfg`` does not know; None for models
    that take any size (CNNs, ``dynamic_img_size`` ViTs)."""
    pe = getattr(module, "patch_embed", None)
    size = getattr(pe, "img_size", None)
    if size is None or getattr(module, "dynamic_img_size", False):
        return None
    if isinstance(size, int):
        size = (size, size)
    return int(size[0]), int(size[1])


def preprocessing(module: nn.Module) -> Preprocessing:
    """The model's evaluation preprocessing, from ``timm.data.resolve_model_data_config``
    and mapped like timm's ``transforms_imagenet_eval``: resize to
    ``floor(size / crop_pct)`` (the shorter side; both sides for ``crop_mode="squash"``),
    then centre-crop ``size``."""
    from timm.data import resolve_model_data_config

    fixed = _fixed_input_size(module)
    args = {"input_size": (3, *fixed)} if fixed else None
    cfg = resolve_model_data_config(module, args=args)
    _, h, w = cfg["input_size"]
    crop_pct = float(cfg.get("crop_pct") or 1.0)
    interpolation = cfg.get("interpolation") or "bicubic"
    if interpolation not in ("nearest", "bilinear", "bicubic", "lanczos"):
        interpolation = "bicubic"
    sh, sw = math.floor(h / crop_pct), math.floor(w / crop_pct)
    if cfg.get("crop_mode") == "squash" or sh != sw:
        resize: Any = (sh, sw)
    else:
        resize = sh
    return Preprocessing(resize, (h, w) if h != w else h, tuple(cfg["mean"]), tuple(cfg["std"]),
                         interpolation)


def tokens(module: nn.Module) -> TokenLayout:
    """The token layout: ``num_prefix_tokens`` (class, distillation, register tokens)
    before the ``patch_embed.grid_size`` grid; Swin's ``output_fmt="NHWC"`` maps are
    channels-last."""
    pe = getattr(module, "patch_embed", None)
    grid = getattr(pe, "grid_size", None)
    grid = (int(grid[0]), int(grid[1])) if grid is not None else None
    if getattr(module, "output_fmt", "NCHW") == "NHWC":
        return TokenLayout(channels_last=True, grid=grid)
    prefix = getattr(module, "num_prefix_tokens", None)
    if prefix is not None:
        return TokenLayout(prefix_tokens=int(prefix), grid=grid)
    return TokenLayout()


def suggested_layer(module: nn.Module) -> Optional[str]:
    """The layer CAMs default to: the module of the last entry of timm's
    ``feature_info`` (the last feature stage: ``layer4``, ``stages.3``, ``blocks.6``,
    ``s4``, Swin's ``layers.3``...).  For a ViT/DeiT, whose last block passes a gradient
    only through the class token, the first norm of that block (``blocks.11.norm1``),
    where attention still mixes the patch tokens: pytorch-grad-cam's choice too."""
    info = getattr(module, "feature_info", None)
    names = dict(module.named_modules())
    last = None
    if isinstance(info, (list, tuple)) and info:
        last = info[-1].get("module") if isinstance(info[-1], dict) else None
    elif info is not None and hasattr(info, "module_name"):
        last = info.module_name()[-1]
    if not last or last not in names:
        return None
    if getattr(module, "num_prefix_tokens", None) is not None and f"{last}.norm1" in names:
        return f"{last}.norm1"
    return last


def labels(module: nn.Module) -> Optional[Tuple[str, ...]]:
    """Class names of the data set the model's ``pretrained_cfg`` was trained on, from
    ``timm.data.infer_imagenet_subset`` (ImageNet-1k: torchvision's names, as every
    other ImageNet model here), when the class count fits; None otherwise."""
    from timm.data import ImageNetInfo, infer_imagenet_subset

    n = int(getattr(module, "num_classes", 0) or 0)
    try:
        subset = infer_imagenet_subset(module)
    except Exception:  # noqa: BLE001 - an unusual pretrained_cfg
        subset = None
    if not subset or n <= 0:
        return None
    if subset == "imagenet-1k" and n == 1000:
        from .torchvision import imagenet_labels

        return tuple(imagenet_labels())
    try:
        names = [d.split(",")[0].strip() for d in ImageNetInfo(subset).label_descriptions()]
    except Exception:  # noqa: BLE001 - a subset timm has no names for
        return None
    return tuple(names) if len(names) == n else None


def is_transformer(module: nn.Module) -> bool:
    return getattr(module, "num_prefix_tokens", None) is not None or (
        getattr(module, "output_fmt", "NCHW") == "NHWC" and hasattr(module, "layers"))


def info_fields(module: nn.Module) -> Dict[str, Any]:
    """The :class:`~interpret.handle.ModelInfo` fields timm's metadata gives for a built
    model: labels, preprocessing, token layout, suggested layer, transformer or not."""
    return {
        "labels": labels(module),
        "preprocessing": preprocessing(module),
        "tokens": tokens(module),
        "suggested_layer": suggested_layer(module),
        "is_transformer": is_transformer(module),
    }


# ----------------------------------------------------------------------------------
# building for a state dict


def _classifier_keys(name: str) -> Tuple[str, ...]:
    cfg = _timm().models.get_pretrained_cfg(name)
    c = getattr(cfg, "classifier", None) if cfg is not None else None
    if c is None:
        return ()
    return tuple(c) if isinstance(c, (list, tuple)) else (c,)


def build_for_state(name: str, state: Dict[str, torch.Tensor], **kwargs) -> nn.Module:
    """``name`` randomly initialised with the shape of ``state``: ``num_classes`` from
    the classifier weight timm's ``pretrained_cfg`` names, and for a ViT trained at
    another resolution ``img_size`` from its position embedding."""
    timm = _timm()
    name = check_name(name)
    for c in _classifier_keys(name):
        w = state.get(f"{c}.weight")
        if isinstance(w, torch.Tensor) and w.dim() >= 2:
            kwargs.setdefault("num_classes", int(w.shape[0]))
            break
    pos = state.get("pos_embed")
    if isinstance(pos, torch.Tensor) and pos.dim() == 3 and "img_size" not in kwargs:
        with torch.device("meta"):
            probe = timm.create_model(name, pretrained=False, **kwargs)
        mine = getattr(probe, "pos_embed", None)
        pe = getattr(probe, "patch_embed", None)
        if mine is not None and pe is not None and tuple(mine.shape) != tuple(pos.shape):
            prefix = 0 if getattr(probe, "no_embed_class", False) else int(getattr(probe, "num_prefix_tokens", 0))
            side = math.isqrt(int(pos.shape[1]) - prefix)
            if side * side == int(pos.shape[1]) - prefix:
                kwargs["img_size"] = side * int(pe.patch_size[0])
    try:
        return timm.create_model(name, pretrained=False, **kwargs)
    except TypeError as exc:
        raise InputError(f"timm cannot build '{name}' with {kwargs}: {exc}") from None


# ----------------------------------------------------------------------------------
# pretrained weights: local cache, or a download with a time limit


def _hub_file(cfg) -> Tuple[Optional[str], str]:
    """(Hugging Face repo id or None, file name) of a pretrained cfg's weights."""
    repo = getattr(cfg, "hf_hub_id", None)
    fname = getattr(cfg, "hf_hub_filename", None) or "model.safetensors"
    return repo, fname


def weights_file(name: str) -> Path:
    """Where this package keeps (and looks for) the pretrained weights of ``name``:
    ``<torch hub dir>/checkpoints/timm/<repo>/<file>`` (TORCH_HOME moves it)."""
    cfg = _timm().models.get_pretrained_cfg(name)
    repo, fname = _hub_file(cfg)
    if repo is None and getattr(cfg, "url", None):
        return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(cfg.url)
    return Path(torch.hub.get_dir()) / "checkpoints" / "timm" / (repo or name) / fname


def cached_weights(name: str) -> Optional[Path]:
    """A local copy of ``name``'s pretrained weights: ours (:func:`weights_file`),
    timm's old torch-hub cache (the cfg's ``url``), or the Hugging Face cache that
    ``timm.create_model(pretrained=True)`` fills.  None when there is none."""
    cfg = _timm().models.get_pretrained_cfg(name)
    if cfg is None:
        return None
    candidates = [weights_file(name)]
    if getattr(cfg, "url", None):
        candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(cfg.url))
    for p in candidates:
        if p.is_file():
            return p
    repo, fname = _hub_file(cfg)
    if repo:
        try:
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(repo, fname)
            if isinstance(found, str) and os.path.isfile(found):
                return Path(found)
        except Exception:  # noqa: BLE001 - no huggingface_hub, or an odd cache
            pass
    return None


def weights_help(name: str, why: str) -> str:
    cfg = _timm().models.get_pretrained_cfg(name)
    repo, fname = _hub_file(cfg)
    url = HF_RESOLVE.format(repo=repo, file=fname) if repo else getattr(cfg, "url", "")
    return (
        f"Pretrained weights for timm's {name} are not in the local cache ({why}). "
        f"Download {url} and put it at {weights_file(name)} (the folder follows TORCH_HOME), "
        f"or load the file directly with load_model('{fname}', arch='timm:{name}'), "
        "or use weights=None for a randomly initialised model."
    )


def _fetch(name: str, download: bool, progress=None) -> Path:
    path = cached_weights(name)
    if path is not None:
        return path
    if not download or dl.offline():
        raise InputError(weights_help(name, "downloads are off"))
    cfg = _timm().models.get_pretrained_cfg(name)
    repo, fname = _hub_file(cfg)
    url = HF_RESOLVE.format(repo=repo, file=fname) if repo else getattr(cfg, "url", None)
    if not url:
        raise InputError(f"timm has no pretrained weights for '{name}'; use weights=None.")
    dest = weights_file(name)
    try:
        dl.download(url, dest, dl.DOWNLOAD_TIMEOUT_S, progress)
    except InputError:
        raise
    except Exception as exc:  # network errors of many kinds
        raise InputError(weights_help(name, f"download failed: {exc}")) from None
    return dest


def load(name: str, weights: Optional[str], pre: Optional[Preprocessing], download: bool,
         progress=None):
    """(module, info) of timm's ``name``: pretrained (``weights="DEFAULT"``: the name's
    default tag, or a tag such as ``"fb_in1k"``) from the local cache or a download
    with a time limit (never with ``INTERPRET_OFFLINE=1``), or randomly initialised
    (``weights=None``)."""
    timm = _timm()
    name = check_name(name)
    notes: List[str] = []
    if weights is not None and weights != "DEFAULT":
        name = f"{name.split('.', 1)[0]}.{weights}"
    if weights is not None:
        if not timm.models.is_model_pretrained(name):
            tags = [n for n in timm.list_models(name.split(".", 1)[0], pretrained=True)]
            raise InputError(
                f"timm has no pretrained weights '{name}'"
                + (f" (it has {', '.join(tags[:6])}{'...' if len(tags) > 6 else ''})" if tags else "")
                + "; use weights=None for a random initialisation.")
        path = _fetch(name, download, progress)
        try:
            module = timm.create_model(name, pretrained=True,
                                       pretrained_cfg_overlay={"file": str(path)})
        except Exception as exc:
            raise InputError(
                f"The cached weights file {path} could not be loaded into timm's {name} "
                f"({str(exc).splitlines()[0][:200]}); delete it and retry."
            ) from None
        weights_name = f"timm {module.pretrained_cfg.get('architecture', name)}." \
                       f"{module.pretrained_cfg.get('tag', '')}".rstrip(".")
    else:
        module = timm.create_model(name, pretrained=False)
        notes.append("random initialisation (no pretrained weights): predictions are meaningless")
        weights_name = None
    module.eval()
    fields = info_fields(module)
    if pre is not None:
        fields["preprocessing"] = pre
    if weights is None and fields["labels"] is None and getattr(module, "num_classes", 0) == 1000:
        from .torchvision import imagenet_labels

        fields["labels"] = tuple(imagenet_labels())
    return module, ModelInfo(name=f"timm:{name}", source="timm", weights=weights_name,
                             notes=tuple(notes), **fields)

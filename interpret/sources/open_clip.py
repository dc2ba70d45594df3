"""Image-text models: ``open_clip:<name>`` (open_clip's own model configs and
tokenizers) and Hugging Face ``CLIPModel`` / ``SiglipModel`` folders (their tokenizer
files from the folder, no remote code).  Both become an
:class:`interpret.imagetext.ImageTextModel`: the image tower as the module, the text
tower beside it.  open_clip is imported only when such a model is loaded (the optional
extra ``clip``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn

from ..errors import InputError
from ..handle import ModelInfo
from ..preprocessing import Preprocessing
from ..tokens import TokenLayout

PREFIX = "open_clip:"


def _open_clip():
    try:
        import open_clip
    except ImportError:
        raise InputError("open_clip models need the open_clip package: pip install "
                         "'interpret[clip]' (or open-clip-torch).") from None
    return open_clip


def model_name(source: str) -> str:
    return source[len(PREFIX):].strip()


def _preprocessing(cfg: Dict[str, Any]) -> Preprocessing:
    """open_clip's ``preprocess_cfg``: ``resize_mode`` 'shortest' (its default) resizes
    the shorter side and centre-crops, 'squash' resizes to the exact size; 'longest'
    (resize the longer side, pad) is read as 'shortest' (noted by the caller)."""
    size = cfg.get("size", 224)
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    interp = cfg.get("interpolation", "bicubic")
    interp = interp if interp in ("bilinear", "bicubic", "nearest") else "bicubic"
    mean, std = tuple(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))), tuple(
        cfg.get("std", (0.26862954, 0.26130258, 0.27577711)))
    if cfg.get("resize_mode") == "squash":
        return Preprocessing((h, w), None, mean, std, interp)
    return Preprocessing(h if h == w else (h, w), (h, w), mean, std, interp)


def visual_fields(visual: nn.Module, root: str = "visual") -> Dict[str, Any]:
    """Token layout and suggested layer of an open_clip image tower: a ViT's patch grid
    after its class token, and the first norm of its last block (the class token's own
    output ignores the last block's patch tokens, so their gradient is zero: the CAMs
    read the last block's input, as pytorch-grad-cam's CLIP example does); a ResNet's
    ``layer4``."""
    grid = getattr(visual, "grid_size", None)
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    if grid is not None and blocks is not None and len(blocks):
        return {"tokens": TokenLayout(grid=(int(grid[0]), int(grid[1]))), "is_transformer": True,
                "suggested_layer": f"{root}.transformer.resblocks.{len(blocks) - 1}.ln_1"}
    if hasattr(visual, "layer4"):
        return {"tokens": TokenLayout(), "suggested_layer": f"{root}.layer4"}
    return {"tokens": TokenLayout()}


def _cached_weights(oc, name: str, tag: str) -> Optional[str]:
    """The path of ``name``'s ``tag`` weights in the local caches (Hugging Face hub's
    or open_clip's URL cache), or None: nothing is downloaded."""
    cfg = oc.get_pretrained_cfg(name, tag) or {}
    hub = cfg.get("hf_hub")
    if hub:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:  # pragma: no cover - open_clip depends on it
            return None
        parts = hub.rstrip("/").split("/")
        repo, sub = "/".join(parts[:2]), "/".join(parts[2:])
        for fname in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
            p = try_to_load_from_cache(repo, f"{sub}/{fname}" if sub else fname)
            if isinstance(p, str) and os.path.isfile(p):
                return p
    url = cfg.get("url")
    if url:
        p = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        if p.is_file():
            return str(p)
    return None


def weights_cached(name: str) -> bool:
    """Whether the default pretrained weights of open_clip's ``name`` are in the local
    cache (nothing is downloaded; False when open_clip is missing or the name unknown)."""
    try:
        import open_clip as oc
    except ImportError:
        return False
    if name not in oc.list_models():
        return False
    tags = oc.list_pretrained_tags_by_model(name)
    return bool(tags) and _cached_weights(oc, name, tags[0]) is not None


def load(name: str, weights: Optional[str] = "DEFAULT", pre: Optional[Preprocessing] = None,
         download: bool = True, progress=None) -> Tuple[nn.Module, ModelInfo]:
    """(ImageTextModel, info) for open_clip's ``name``: ``weights=None`` a random init;
    ``"DEFAULT"`` the model's first pretrained tag, or a tag (``"laion2b_s34b_b79k"``),
    read from the local cache, downloaded by open_clip only when ``download`` is true
    and ``INTERPRET_OFFLINE`` is not set; or a path to an open_clip checkpoint."""
    from .download import offline

    oc = _open_clip()
    if name not in oc.list_models():
        close = [m for m in oc.list_models() if name.lower() in m.lower()][:5]
        raise InputError(f"open_clip has no model '{name}'" + (f" (did you mean {', '.join(close)}?)" if close else
                                                               "; python -c 'import open_clip; print(open_clip.list_models())' lists them") + ".")
    pretrained, wlabel = None, "random init (weights=None)"
    if weights is not None:
        tags = oc.list_pretrained_tags_by_model(name)
        tag = tags[0] if weights == "DEFAULT" and tags else weights
        if weights == "DEFAULT" and not tags:
            raise InputError(f"open_clip publishes no weights for '{name}'; use weights=None or a checkpoint path.")
        if os.path.isfile(str(tag)):
            pretrained, wlabel = str(tag), os.path.basename(str(tag))
        elif tag not in tags:
            raise InputError(f"open_clip has no weights '{tag}' for '{name}'; one of {', '.join(tags[:8])}.")
        else:
            pretrained = _cached_weights(oc, name, tag)
            wlabel = tag
            if pretrained is None:
                if not download or offline():
                    raise InputError(f"The '{tag}' weights of open_clip '{name}' are not in the local cache "
                                     "and downloads are off; use weights=None for a random init.")
                pretrained = tag  # open_clip downloads them into its cache
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = oc.create_model(name, pretrained=pretrained)
    except (RuntimeError, OSError, ValueError) as exc:
        raise InputError(f"open_clip could not build '{name}': {str(exc).splitlines()[0][:300]}") from None
    model.eval()
    return wrap(model, oc.get_tokenizer(name), f"open_clip {name}", pre, wlabel)


def is_open_clip_module(module: nn.Module) -> bool:
    """An open_clip ``CLIP`` / ``CustomTextCLIP`` (built by ``open_clip.create_model``)."""
    return type(module).__module__.startswith("open_clip.") and hasattr(module, "encode_text") \
        and hasattr(module, "visual")


def wrap(model: nn.Module, tokenizer=None, name: Optional[str] = None, pre: Optional[Preprocessing] = None,
         weights: Optional[str] = None) -> Tuple[nn.Module, ModelInfo]:
    """(ImageTextModel, info) of a built open_clip model (``tokenizer`` None: open_clip's
    CLIP tokenizer at the model's context length)."""
    from ..imagetext import ImageTextModel

    if tokenizer is None:
        oc = _open_clip()
        tokenizer = oc.tokenizer.SimpleTokenizer(context_length=int(getattr(model, "context_length", 77)))

    def encode(prompts):
        return model.encode_text(tokenizer(prompts).to(next(model.parameters()).device))

    bias = getattr(model, "logit_bias", None)
    scale = float(model.logit_scale.detach().exp()) if isinstance(getattr(model, "logit_scale", None), torch.Tensor) else 1.0
    name = name or f"open_clip {type(model).__name__}"
    wrapped = ImageTextModel(model.visual, encode, scale,
                             None if bias is None else float(bias.detach().reshape(-1)[0]),
                             "sigmoid" if bias is not None else "softmax", kind=name)
    cfg = dict(getattr(model.visual, "preprocess_cfg", {}) or {})
    if not cfg and getattr(model.visual, "image_size", None) is not None:
        cfg = {"size": tuple(model.visual.image_size)}
    notes = ()
    if cfg.get("resize_mode") == "longest":
        notes = ("open_clip pads this model's photos to a square (resize_mode 'longest'); here the "
                 "shorter side is resized and the centre cropped",)
    fields = visual_fields(model.visual)
    return wrapped, ModelInfo(name=name, preprocessing=pre or _preprocessing(cfg),
                              source="open_clip", weights=weights, notes=notes, task="embedding", **fields)


# -- Hugging Face CLIP / SigLIP folders ---------------------------------------------------------

IMAGE_TEXT_TYPES = ("clip", "siglip", "siglip2")


class _HFImageTower(nn.Module):
    """A Hugging Face CLIP / SigLIP model's image side: ``vision_model`` (+ CLIP's
    ``visual_projection``), as ``get_image_features`` computes it."""

    def __init__(self, vision_model: nn.Module, projection: Optional[nn.Module]):
        super().__init__()
        self.vision_model = vision_model
        self.visual_projection = projection
        self.training = vision_model.training  # follows the model's own flag

    def forward(self, x):
        pooled = self.vision_model(pixel_values=x).pooler_output
        return self.visual_projection(pooled) if self.visual_projection is not None else pooled


def is_image_text_folder(config: Dict[str, Any]) -> bool:
    return str(config.get("model_type", "")).lower() in IMAGE_TEXT_TYPES


def load_hf_folder(folder, pre: Optional[Preprocessing] = None, name: Optional[str] = None,
                   allow_untrusted: bool = False) -> Tuple[nn.Module, ModelInfo]:
    """(ImageTextModel, info) of a saved ``CLIPModel`` / ``SiglipModel`` folder: the same
    safety checks as every Hugging Face folder (no remote code, safetensors unless
    untrusted models are allowed, declared sizes bounded), the tokenizer from the folder's
    own files, preprocessing from its image processor."""
    from ..imagetext import ImageTextModel
    from . import hf

    transformers = hf._transformers()
    folder = Path(folder)
    what = f"the folder {folder.name}"
    config, safe = hf._check_folder(folder, what, allow_untrusted)
    if "auto_map" in config:
        raise InputError(f"Refused to load {what}: it asks for its own Python code.")
    try:
        model = transformers.AutoModel.from_pretrained(str(folder), use_safetensors=safe,
                                                       trust_remote_code=False, local_files_only=True)
        tok = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True,
                                                         trust_remote_code=False)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise InputError(f"{what} could not be loaded as an image-text model: "
                         f"{str(exc).splitlines()[0][:300]}") from None
    model.eval()
    siglip = "siglip" in str(config.get("model_type", "")).lower()
    tower = _HFImageTower(model.vision_model, getattr(model, "visual_projection", None))

    def encode(prompts):
        kw = dict(padding="max_length", max_length=int(getattr(model.config.text_config, "max_position_embeddings", 64))) \
            if siglip else dict(padding=True)
        t = tok(prompts, return_tensors="pt", truncation=True, **kw)
        dev = next(model.parameters()).device
        # SigLIP is trained on max-length padding without an attention mask (as its
        # model card calls it); CLIP with the mask
        keys = ("input_ids",) if siglip else tuple(t.keys())
        out = model.get_text_features(**{k: t[k].to(dev) for k in keys})
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    scale = float(model.logit_scale.detach().exp())
    bias = getattr(model, "logit_bias", None)
    wrapped = ImageTextModel(tower, encode, scale, None if bias is None else float(bias.detach().reshape(-1)[0]),
                             "sigmoid" if siglip else "softmax", kind=str(config.get("model_type")))
    proc = None
    if (folder / hf.PROCESSOR).is_file():
        proc = hf._read_json(folder / hf.PROCESSOR, hf.PROCESSOR)
    vc = model.config.vision_config
    side, patch = int(vc.image_size), int(vc.patch_size)
    preproc = pre or (hf.preprocessing_from(proc) if proc else None) or Preprocessing(
        side, side, (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711), "bicubic")
    preproc.check_declared(f"{what}'s {hf.PROCESSOR}")
    g = side // patch
    layers = len(model.vision_model.encoder.layers)
    last = f"visual.vision_model.encoder.layers.{layers - 1}"
    fields = {"tokens": TokenLayout(grid=(g, g)), "is_transformer": True,
              "suggested_layer": last if siglip else f"{last}.layer_norm1"}
    return wrapped, ModelInfo(name=name or folder.name, preprocessing=preproc,
                              source=f"Hugging Face folder ({type(model).__name__})",
                              weights=hf.SAFE_WEIGHTS if safe else hf.PICKLED_WEIGHTS[0],
                              task="embedding", **fields)

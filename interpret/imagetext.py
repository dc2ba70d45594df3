"""Image-text (CLIP-style) and embedding models.

An image-text model is explained through its **image tower**: the handle's module is an
:class:`ImageTextModel` whose forward is the image tower alone (photo in, image
embedding out, B x D), and whose text side (tokenizer, text tower, logit scale) is held
outside the module tree, so that the layer list, the fingerprint, the hooks and every
method see the image tower only.  The text embeddings of a prompt set are computed once
(under ``torch.no_grad``, outside any recorded pass) and cached on the model.

* task ``"image-text"`` (``load_model(..., prompts=[...])``): the prompts are the
  labels; :func:`zero_shot` gives ``softmax(logit_scale * image . text^T)`` over them
  (SigLIP: each prompt's own ``sigmoid(logit_scale * cos + logit_bias)``);
  :func:`text` explains any prompt, listed or not, optionally "rather than" another.
* task ``"embedding"``: a module whose output is one embedding vector per photo (a
  timm or torchvision backbone without its head, DINOv2, the image tower of an
  image-text model loaded without prompts); :func:`similar_to` explains the cosine
  similarity of a photo's embedding to a reference photo's.

The scores follow pytorch-grad-cam's ``SimilarityToConceptTarget`` (its CLIP tutorial):
the cosine similarity of the model output to a concept's embedding, here times the
model's logit scale so that a prompt's score is exactly its zero-shot logit.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import InputError
from .targets import Target, escape

__all__ = ["ImageTextModel", "TextTarget", "SimilarTarget", "text", "similar_to", "zero_shot",
           "with_prompts", "check_prompts", "is_embedding_module", "resolve", "Embedding",
           "MAX_PROMPTS", "MAX_PROMPT_CHARS"]

#: a visitor types the prompts: bounded before any text tower runs
MAX_PROMPTS = 64
MAX_PROMPT_CHARS = 300
_TEXT_CACHE = 16  # prompt sets (and single prompts) kept per model


def check_prompts(prompts) -> Tuple[str, ...]:
    """The prompts as a tuple of stripped, non-empty, distinct strings, bounded in number
    and length; an :class:`InputError` that says what is wrong otherwise."""
    if isinstance(prompts, str):
        prompts = [p for p in prompts.splitlines()]
    try:
        items = [str(p).strip() for p in prompts]
    except TypeError:
        raise InputError("prompts is a list of texts (one per class).") from None
    items = [p for p in items if p]
    if len(items) < 1:
        raise InputError("Give at least one prompt (one per line).")
    if len(items) > MAX_PROMPTS:
        raise InputError(f"{len(items)} prompts given; at most {MAX_PROMPTS}.")
    long = [i for i, p in enumerate(items) if len(p) > MAX_PROMPT_CHARS]
    if long:
        raise InputError(f"Prompt {long[0] + 1} has {len(items[long[0]])} characters; at most "
                         f"{MAX_PROMPT_CHARS}.")
    seen, dup = set(), None
    for p in items:
        if p in seen:
            dup = p
            break
        seen.add(p)
    if dup is not None:
        raise InputError(f"The prompt '{dup}' is given twice; each prompt is one class.")
    return tuple(items)


class _TextSide:
    """The text tower, kept out of the module tree (a plain object): ``encode(list of
    str) -> P x D`` unnormalised text embeddings, the logit scale and bias, and a small
    thread-safe cache of normalised embeddings per prompt tuple."""

    def __init__(self, encode: Callable[[List[str]], torch.Tensor], scale: float,
                 bias: Optional[float], probability: str):
        self.encode = encode
        self.scale = float(scale)
        self.bias = None if bias is None else float(bias)
        self.probability = probability  # "softmax" (CLIP) or "sigmoid" (SigLIP)
        self.cache: "OrderedDict[Tuple[str, ...], torch.Tensor]" = OrderedDict()
        self.lock = threading.Lock()

    def __deepcopy__(self, memo):
        # a deep copy of the model (the sanity check's randomised copy, DeepLIFT's private
        # copy) copies the image tower and shares the text side, which is only read
        return self

    def features(self, prompts: Sequence[str]) -> torch.Tensor:
        key = tuple(prompts)
        with self.lock:
            if key in self.cache:
                self.cache.move_to_end(key)
                return self.cache[key]
        with torch.no_grad(), torch.inference_mode(False):
            t = self.encode(list(key))
        t = F.normalize(t.detach().float(), dim=-1).cpu()
        with self.lock:
            self.cache[key] = t
            while len(self.cache) > _TEXT_CACHE:
                self.cache.popitem(last=False)
        return t


class ImageTextModel(nn.Module):
    """An image-text model as the dashboard explains it: ``visual`` (the image tower,
    the only child module) maps a photo to its embedding; the text side is reached
    through :meth:`text_features` (normalised, cached) and ``logit_scale``."""

    def __init__(self, visual: nn.Module, encode_text: Callable[[List[str]], torch.Tensor],
                 logit_scale: float, logit_bias: Optional[float] = None, probability: str = "softmax",
                 kind: str = "model"):
        super().__init__()
        self.visual = visual
        self.training = visual.training  # the wrapper's own flag follows the tower's, never flips it
        self.__dict__["_text"] = _TextSide(encode_text, logit_scale, logit_bias, probability)
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.visual(x)

    @property
    def logit_scale(self) -> float:
        return self._text.scale

    @property
    def logit_bias(self) -> Optional[float]:
        return self._text.bias

    @property
    def probability_kind(self) -> str:
        return self._text.probability

    def text_features(self, prompts: Sequence[str]) -> torch.Tensor:
        """P x D unit-length text embeddings of ``prompts`` (computed once per prompt set)."""
        return self._text.features(prompts)

    def extra_repr(self) -> str:
        return f"kind={self.kind}, logit_scale={self.logit_scale:.4g}"


def text_side(handle) -> ImageTextModel:
    m = handle.module
    if not isinstance(m, ImageTextModel):
        raise InputError(f"Model '{handle.name}' has no text tower: a text prompt needs an image-text "
                         "model (open_clip:<name>, a Hugging Face CLIP or SigLIP folder).")
    return m


def with_prompts(handle, prompts):
    """A handle on the same image-text model with ``prompts`` as its classes (task
    ``"image-text"``); what the sidebar's prompt box and ``--prompts`` call."""
    m = text_side(handle)
    prompts = check_prompts(prompts)
    m.text_features(prompts)  # the text tower runs now, once, bounded by check_prompts
    return handle.with_info(labels=prompts, task="image-text")


# -- targets --------------------------------------------------------------------------------

def _logits(model: ImageTextModel, emb: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
    e = F.normalize(emb.float(), dim=-1)
    z = model.logit_scale * e @ texts.to(e.device).T
    return z + model.logit_bias if model.logit_bias is not None else z


@dataclass(frozen=True)
class TextTarget(Target):
    """A text prompt of an image-text model: the score is the zero-shot logit
    ``logit_scale * cos(image embedding, text embedding)`` of ``index`` (the prompt),
    minus the contrast prompt's.  Drawn in the prompt's probability over the model's
    prompts (an unlisted prompt joins them for that; SigLIP: its own sigmoid), with a
    contrast the probability that A beats B, ``sigmoid(logit_A - logit_B)``."""

    vector: Optional[torch.Tensor] = field(default=None, compare=False, repr=False)
    contrast_vector: Optional[torch.Tensor] = field(default=None, compare=False, repr=False)
    prompts: Optional[torch.Tensor] = field(default=None, compare=False, repr=False)
    position: Optional[int] = None
    scale: float = 1.0
    bias: Optional[float] = None
    sigmoid: bool = False

    kind = "text"
    task = "image-text"

    @property
    def key(self):
        return (self.kind, self.index, self.contrast)

    @property
    def reduce_key(self):
        return None

    @property
    def resolved(self):
        return self.vector is not None and (self.contrast is None or self.contrast_vector is not None)

    def _logit(self, output, v):
        self._need(output, 2)
        e = F.normalize(output, dim=-1)
        z = self.scale * (e @ v.to(device=output.device, dtype=output.dtype))
        return z + self.bias if self.bias is not None else z

    def score(self, output):
        if not self.resolved:
            raise InputError("This text target is not resolved yet: pass it to interpret.explain "
                             "with an image-text model.")
        s = self._logit(output, self.vector)
        return s - self._logit(output, self.contrast_vector) if self.contrast is not None else s

    def probability(self, output):
        out = output.float()
        if self.contrast is not None:
            return torch.sigmoid(self.score(out))
        if self.sigmoid:
            return torch.sigmoid(self._logit(out, self.vector))
        e = F.normalize(out, dim=-1)
        m = self.prompts.to(e.device)
        if self.position is None:
            m = torch.cat([m, self.vector.to(e.device)[None]], 0)
        z = self.scale * e @ m.T
        pos = self.position if self.position is not None else m.shape[0] - 1
        return torch.softmax(z, dim=1)[:, pos]

    def _words(self, name):
        s = f"the prompt “{name(self.index)}”"
        return s + f" rather than “{name(self.contrast)}”" if self.contrast is not None else s


@dataclass(frozen=True)
class SimilarTarget(Target):
    """Why the model finds this photo like a reference photo: the cosine similarity of
    the two embeddings (drawn in that similarity itself, a value in [-1, 1]).  ``index``
    names the reference for people; ``digest`` is its content hash (the key)."""

    image: Any = field(default=None, compare=False, repr=False)
    digest: Optional[str] = None
    vector: Optional[torch.Tensor] = field(default=None, compare=False, repr=False)

    kind = "similar"
    task = "embedding"
    unit = "value"

    @property
    def key(self):
        return (self.kind, self.digest)

    @property
    def resolved(self):
        return self.vector is not None

    def score(self, output):
        if self.vector is None:
            raise InputError("This similarity target is not resolved yet: pass it to "
                             "interpret.explain with the model.")
        self._need(output, 2)
        if output.shape[1] != self.vector.numel():
            raise InputError(f"The reference's embedding has {self.vector.numel()} values but this "
                             f"model's has {output.shape[1]}.")
        e = F.normalize(output, dim=-1)
        return e @ self.vector.to(device=output.device, dtype=output.dtype)

    def probability(self, output):
        return self.score(output.float())

    def _words(self, name):
        return f"what makes this photo look like the {name(self.index)}" if self.index == "reference photo" \
            else f"what makes this photo look like the reference photo {name(self.index)}"


def _text_arg(v, what):
    if isinstance(v, bool) or not isinstance(v, (str, int, np.integer)):
        raise InputError(f"A {what} is a text (or the index of one of the model's prompts), not "
                         f"{type(v).__name__}.")
    if isinstance(v, str):
        s = v.strip()
        if not s:
            raise InputError(f"The {what} is empty.")
        if len(s) > MAX_PROMPT_CHARS:
            raise InputError(f"The {what} has {len(s)} characters; at most {MAX_PROMPT_CHARS}.")
        return s
    return int(v)


def text(prompt, contrast=None) -> TextTarget:
    """A text prompt of an image-text model (any text, listed among the model's prompts
    or not; an int is the index of one of them), "rather than ``contrast``" when given:
    the score is the prompt's zero-shot logit (minus the contrast's)."""
    return TextTarget(_text_arg(prompt, "prompt"), None if contrast is None else _text_arg(contrast, "contrast prompt"))


def _image_digest(image) -> Tuple[Any, str]:
    from PIL import Image

    if isinstance(image, torch.Tensor):
        t = image.detach().float().cpu().contiguous()
        if t.dim() == 3:
            t = t[None]
        if t.dim() != 4 or t.shape[0] != 1:
            raise InputError(f"A reference photo tensor is 1 x 3 x H x W; got {tuple(image.shape)}.")
        return t, "t:" + hashlib.blake2b(t.numpy().tobytes() + str(tuple(t.shape)).encode(), digest_size=12).hexdigest()
    if not isinstance(image, Image.Image):
        from .images import load_image

        image = load_image(image)
    rgb = image.convert("RGB")
    h = hashlib.blake2b(rgb.tobytes() + str(rgb.size).encode(), digest_size=12).hexdigest()
    return rgb, "p:" + h


def similar_to(image, name: Optional[str] = None) -> SimilarTarget:
    """The cosine similarity of a photo's embedding to that of ``image`` (the reference:
    a PIL image, a path, bytes, or a 1 x 3 x H x W model input): "why does the model
    find these two alike?".  ``name`` names the reference in sentences."""
    img, digest = _image_digest(image)
    return SimilarTarget(str(name) if name else "reference photo", None, image=img, digest=digest)


def _embed(handle, x: torch.Tensor) -> torch.Tensor:
    from .capture import logits

    return logits(handle, x)


def resolve(handle, target, x: Optional[torch.Tensor], contrast=None, output=None) -> Target:
    """``target`` made concrete for an image-text or embedding handle: a prompt's text
    embedding (and the prompt set's), a reference photo's embedding.  None: the top
    prompt (image-text); an embedding model needs a reference."""
    task = handle.task
    if isinstance(target, SimilarTarget):
        if contrast is not None:
            raise InputError("A contrast applies to a text prompt, not to a similarity.")
        if target.vector is not None:
            return target
        ref = target.image
        xr = ref.to(handle.device) if isinstance(ref, torch.Tensor) else handle.preprocess(ref)
        emb = _embed(handle, xr)
        if emb.dim() != 2:
            raise InputError(f"The model's output has shape {tuple(emb.shape)}, not one embedding "
                             "vector per photo.")
        v = F.normalize(emb[0].detach().float(), dim=0).cpu()
        return replace(target, vector=v, image=None)
    if task == "embedding":
        if target is None:
            raise InputError("An embedding model is explained by its similarity to a reference photo: "
                             "target=interpret.targets.similar_to(photo).")
        raise InputError(f"An embedding model has no classes or prompts to explain ({target!r}); use "
                         "interpret.targets.similar_to(photo).")
    model = text_side(handle)
    prompts = tuple(handle.labels) if handle.info.labels is not None else ()
    if isinstance(target, TextTarget):
        if contrast is not None:
            if target.contrast is not None:
                raise InputError("The contrast is given twice (in the target and as contrast=).")
            target = replace(target, contrast=_text_arg(contrast, "contrast prompt"))
    elif isinstance(target, Target):
        raise InputError(f"A {type(target).__name__} ({target.kind}) does not fit an image-text model; "
                         "use targets.text(prompt) or targets.similar_to(photo).")
    else:
        if target is None:
            if not prompts:
                raise InputError("No prompt given: load the model with prompts=[...] or explain "
                                 "targets.text('a photo of ...').")
            out = output if output is not None else _embed(handle, x)
            target = int(_logits(model, out, model.text_features(prompts))[0].argmax())
        target = text(target, contrast)

    def concrete(v):
        if isinstance(v, int):
            if not 0 <= v < len(prompts):
                raise InputError(f"Prompt index {v} is out of range: this model has {len(prompts)} "
                                 "prompts." if prompts else "This model has no prompts; give a text.")
            return prompts[v]
        return v

    idx = concrete(target.index)
    con = concrete(target.contrast) if target.contrast is not None else None
    if con is not None and con == idx:
        raise InputError("The contrast prompt must differ from the prompt.")
    mat = model.text_features(prompts) if prompts else torch.zeros(0, 1)
    vec = model.text_features((idx,))[0]
    cvec = model.text_features((con,))[0] if con is not None else None
    if prompts and mat.shape[1] != vec.shape[0]:  # pragma: no cover - one text tower
        raise InputError("The prompts' embeddings do not match the text's.")
    return replace(target, index=idx, contrast=con, vector=vec, contrast_vector=cvec,
                   prompts=mat, position=prompts.index(idx) if idx in prompts else None,
                   scale=model.logit_scale, bias=model.logit_bias,
                   sigmoid=model.probability_kind == "sigmoid")


# -- predictions ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Embedding:
    """What an embedding model says about a photo: its embedding ``vector`` (float32)
    and that vector's length ``norm``."""

    vector: np.ndarray = field(repr=False)
    norm: float

    @property
    def size(self) -> int:
        return int(self.vector.size)


def zero_shot(handle, out: torch.Tensor) -> torch.Tensor:
    """The probabilities over the handle's prompts for image embeddings ``out`` (B x D):
    ``softmax(logit_scale * image . text^T)`` (SigLIP: each prompt's own sigmoid)."""
    model = text_side(handle)
    if handle.info.labels is None:
        raise InputError("This image-text model has no prompts: load it with prompts=[...].")
    z = _logits(model, out, model.text_features(tuple(handle.labels)))
    return torch.sigmoid(z) if model.probability_kind == "sigmoid" else torch.softmax(z, dim=-1)


def prompt_logits(handle, out: torch.Tensor) -> torch.Tensor:
    model = text_side(handle)
    return _logits(model, out, model.text_features(tuple(handle.labels)))


# -- detecting an embedding model -------------------------------------------------------------

def is_embedding_module(module: nn.Module) -> bool:
    """Whether ``module`` says itself that its output is an embedding rather than class
    scores: a timm model built with ``num_classes=0``, a torchvision classifier whose
    head (``fc``, ``head``, ``heads``, ``classifier``) is ``nn.Identity``."""
    if isinstance(module, ImageTextModel):
        return False
    from .sources.timm import is_timm_module

    if is_timm_module(module):
        return getattr(module, "num_classes", None) == 0
    if type(module).__module__.startswith("torchvision.models"):
        for attr in ("fc", "head", "heads", "classifier"):
            h = getattr(module, attr, None)
            if isinstance(h, nn.Identity):
                return True
            if isinstance(h, nn.Sequential) and len(h) and all(
                    isinstance(m, (nn.Identity, nn.Dropout, nn.Flatten)) for m in h):
                return True
    return False

"""Export to TensorBoard: embeddings for the projector, and image summaries of the
inputs, of a layer's activations and of explanations, so that
``tensorboard --logdir LOGDIR`` shows them.

The projector files (``tensors.tsv``, ``metadata.tsv``, ``sprite.png``,
``projector_config.pbtxt``, in the format of TensorBoard's projector plugin) are
plain text and PNG, written without TensorBoard.  The image summaries are event files,
written with ``torch.utils.tensorboard.SummaryWriter``, which needs the optional
``tensorboard`` package (``pip install interpret-dashboard[tensorboard]``).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import InputError
from ..layers import check_layer
from ..overlay import colorize, heatmap_image, overlay
from ..scaling import minmax, tile
from ._common import (Progress, as_handle, as_maps, batches, check_int, map_shape, model_session,
                      record, tap_for)
from .embedding import embedding_features
from .imagesets import as_image_set

__all__ = ["TensorBoardExport", "export_tensorboard", "write_projector", "activation_grid",
           "PROJECTOR_CONFIG", "MAX_SPRITE_SIDE"]

PROJECTOR_CONFIG = "projector_config.pbtxt"
#: TensorBoard's projector refuses sprites larger than 8192 x 8192 pixels.
MAX_SPRITE_SIDE = 8192
INSTALL_HINT = "pip install interpret-dashboard[tensorboard]"


@dataclass(frozen=True)
class TensorBoardExport:
    """What :func:`export_tensorboard` wrote: ``files`` (paths), the ``image_tags`` of
    the image summaries, the embedding's ``shape`` (N, D) and ``layer``, the sprite's
    ``sprite_size`` (w, h) and ``thumb`` (the side of one image in it)."""

    logdir: str
    files: Tuple[str, ...]
    image_tags: Tuple[str, ...]
    shape: Tuple[int, int]
    layer: str
    sprite_size: Tuple[int, int]
    thumb: int

    @property
    def command(self) -> str:
        return f"tensorboard --logdir {self.logdir}"


def summary_writer_class():
    """``torch.utils.tensorboard.SummaryWriter``, or an :class:`InputError` saying how
    to install TensorBoard."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise InputError(
            "Writing TensorBoard image summaries needs the tensorboard package: "
            f"{INSTALL_HINT} (or pip install tensorboard).  The projector files alone can "
            "be written without it (summaries=False)."
        ) from None
    return SummaryWriter


def _clean(text: str) -> str:
    """One TSV cell: no tabs or line breaks."""
    return re.sub(r"[\t\r\n]+", " ", str(text)).strip() or "-"


def _pbtxt_string(s: str) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def write_projector(logdir: Union[str, os.PathLike], features: np.ndarray,
                    metadata: Mapping[str, Sequence], thumbnails: Sequence[Image.Image],
                    tensor_name: str = "embedding", thumb: int = 64) -> Tuple[Tuple[str, ...], Tuple[int, int], int]:
    """Write ``features`` (N x D) in TensorBoard projector format into ``logdir``:
    ``tensors.tsv``, ``metadata.tsv`` (a header row, then one row per point, from the
    columns of ``metadata``), ``sprite.png`` (the ``thumbnails`` on a square grid,
    row-major) and ``projector_config.pbtxt``.  Returns (files, sprite (w, h), side of
    one thumbnail)."""
    out = Path(logdir)
    out.mkdir(parents=True, exist_ok=True)
    f = np.asarray(features, dtype=np.float32)
    if f.ndim != 2 or f.shape[0] < 1:
        raise InputError(f"Features must be N x D; got shape {f.shape}.")
    n = f.shape[0]
    if not np.isfinite(f).all():
        raise InputError("The features contain NaN or infinite values.")
    for col, values in metadata.items():
        if len(values) != n:
            raise InputError(f"Metadata column '{col}' has {len(values)} values for {n} points.")
    if len(thumbnails) != n:
        raise InputError(f"{len(thumbnails)} thumbnails were given for {n} points.")
    tensors = out / "tensors.tsv"
    np.savetxt(tensors, f, fmt="%.6g", delimiter="\t")
    meta = out / "metadata.tsv"
    cols = list(metadata)
    with open(meta, "w", encoding="utf-8", newline="\n") as fh:
        # the projector reads a header row whenever there is more than one column
        if len(cols) > 1:
            fh.write("\t".join(_clean(c) for c in cols) + "\n")
        for i in range(n):
            fh.write("\t".join(_clean(metadata[c][i]) for c in cols) + "\n")
    per_row = int(math.ceil(math.sqrt(n)))
    side = int(max(8, min(int(thumb), MAX_SPRITE_SIDE // per_row)))
    sprite = Image.new("RGB", (per_row * side, per_row * side), (255, 255, 255))
    for i, im in enumerate(thumbnails):
        r, c = divmod(i, per_row)
        sprite.paste(im.convert("RGB").resize((side, side), Image.Resampling.BILINEAR),
                     (c * side, r * side))
    sprite_path = out / "sprite.png"
    sprite.save(sprite_path)
    config = out / PROJECTOR_CONFIG
    config.write_text(
        "embeddings {\n"
        f"  tensor_name: {_pbtxt_string(tensor_name)}\n"
        f"  tensor_shape: {n}\n"
        f"  tensor_shape: {f.shape[1]}\n"
        '  tensor_path: "tensors.tsv"\n'
        '  metadata_path: "metadata.tsv"\n'
        "  sprite {\n"
        '    image_path: "sprite.png"\n'
        f"    single_image_dim: {side}\n"
        f"    single_image_dim: {side}\n"
        "  }\n"
        "}\n", encoding="utf-8")
    return tuple(str(p) for p in (tensors, meta, sprite_path, config)), sprite.size, side


def activation_grid(maps: torch.Tensor, k: int = 16, cell: int = 64, gap: int = 2,
                    colormap: str = "viridis") -> Tuple[Image.Image, Tuple[int, ...]]:
    """The ``k`` channels with the highest mean of one image's C x h x w maps, each
    min-max scaled and colour-mapped, tiled on a square grid (white gaps).  Returns
    (image, channel indices shown)."""
    m = maps.detach().float().cpu()
    k = max(1, min(int(k), m.shape[0]))
    order = torch.argsort(m.mean(dim=(1, 2)), descending=True)[:k]
    up = F.interpolate(m[order][None], size=(cell, cell), mode="nearest")[0]
    tiles = [colorize(a, colormap) for a in minmax(up.numpy(), per_item=True)]
    grid, _ = tile(tiles, cols=int(math.ceil(math.sqrt(k))), gap=gap)
    return Image.fromarray(grid, "RGB"), tuple(int(i) for i in order)


def _tag(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-/]+", "_", str(text)).strip("_") or "x"


def export_tensorboard(
    logdir: Union[str, os.PathLike],
    model,
    images,
    layer: Optional[str] = None,
    *,
    explanations: Sequence[Any] = (),
    activation_layer: Optional[str] = None,
    max_channels: int = 16,
    max_summary_images: int = 32,
    thumb: int = 64,
    summaries: bool = True,
    batch_size: int = 16,
    progress: Optional[Progress] = None,
) -> TensorBoardExport:
    """Write what TensorBoard needs to show ``images`` through ``model`` into
    ``logdir``; open it with ``tensorboard --logdir LOGDIR``.

    * Projector (always): the features of ``layer`` (default: the penultimate
      features) with a sprite of the images and their names, predicted classes and
      probabilities as metadata.
    * Image summaries (``summaries=True``; needs the tensorboard package, else an
      :class:`InputError` saying how to install it, before anything is written): for
      the first ``max_summary_images`` images the input as the model sees it and a
      grid of the ``max_channels`` strongest channels of ``activation_layer`` (default:
      ``layer`` if it has maps, else the model's default CAM layer); and for each of
      ``explanations`` (:class:`interpret.Explanation`, or ``(image, Explanation)``
      for an overlay on the image) its heatmap.

    Files of an earlier export to the same folder are replaced (event files add up).
    ``progress(done, total)`` reports the feature pass (raise :class:`interpret.Cancelled` in it to stop).
    """
    handle = as_handle(model)
    writer_cls = summary_writer_class() if summaries else None
    max_channels = check_int("max_channels", max_channels, 1, 256)
    max_summary_images = check_int("max_summary_images", max_summary_images, 0, 1000)
    thumb = check_int("thumb", thumb, 8, 512)
    items = []
    for j, e in enumerate(explanations):
        img, ex = (e if isinstance(e, tuple) and len(e) == 2 else (None, e))
        if not hasattr(ex, "heatmap") or not hasattr(ex, "method"):
            raise InputError(f"Explanation {j} is not an interpret.Explanation (or an (image, Explanation) pair).")
        items.append((img, ex))
    iset = as_image_set(images)
    feats, logits, key, iset = embedding_features(handle, iset, layer, batch_size=batch_size,
                                                  progress=progress)
    probs = torch.softmax(torch.from_numpy(logits), dim=1)
    conf, pred = probs.max(dim=1)
    views = [handle.preprocessing.model_view(im) for im in iset.images]
    metadata = {
        "name": list(iset.names),
        "predicted": [handle.label(int(i)) for i in pred],
        "probability": [f"{float(p):.3f}" for p in conf],
        "index": list(range(len(iset))),
    }
    files, sprite_size, side = write_projector(logdir, feats, metadata, views,
                                               tensor_name=f"{handle.name}: {key}", thumb=thumb)
    tags = []
    if writer_cls is not None:
        act_layer = activation_layer
        if act_layer is None:
            act_layer = layer if layer is not None and _has_maps(handle, layer) else check_layer(handle, None)
        tap = tap_for(handle, act_layer)
        writer = writer_cls(log_dir=str(logdir))
        try:
            writer.add_text("interpret/about", (
                f"model **{handle.name}**; embedding layer `{key}` ({feats.shape[0]} x "
                f"{feats.shape[1]}); activations of `{act_layer}`; preprocessing: "
                f"{handle.preprocessing.describe()}"), 0)
            shown = list(range(min(len(iset), max_summary_images)))
            with model_session(handle):
                for lo, hi in batches(len(shown), batch_size):
                    x = torch.cat([handle.preprocess(iset.images[i]) for i in shown[lo:hi]], 0)
                    tensors = record(handle, x, [tap], logits=False).values
                    maps = as_maps(handle, tensors[tap.key], f"Layer '{act_layer}'")
                    for b, i in enumerate(shown[lo:hi]):
                        base = f"image_{i:03d}_{_tag(iset.names[i])}"
                        t_in = f"{base}/input"
                        writer.add_image(t_in, np.asarray(views[i]), 0, dataformats="HWC")
                        grid, _ = activation_grid(maps[b], max_channels)
                        t_act = f"{base}/activations_{_tag(act_layer)}"
                        writer.add_image(t_act, np.asarray(grid), 0, dataformats="HWC")
                        tags += [t_in, t_act]
            for j, (img, ex) in enumerate(items):
                label = getattr(ex, "target_label", "") or ""
                tag = f"explanation_{j:02d}/{_tag(ex.method)}_{_tag(label)}"
                pic = overlay(img, ex.heatmap, model=handle) if img is not None else heatmap_image(ex.heatmap)
                writer.add_image(tag, np.asarray(pic), 0, dataformats="HWC")
                tags.append(tag)
            writer.flush()
        finally:
            writer.close()
        files += tuple(str(p) for p in sorted(Path(logdir).glob("events.out.tfevents.*")))
    return TensorBoardExport(str(logdir), files, tuple(tags), tuple(int(s) for s in feats.shape),
                             key, tuple(sprite_size), side)


def _has_maps(handle, layer: str) -> bool:
    try:
        _, (h, w) = map_shape(handle, layer)
    except InputError:
        return False
    return h > 1 or w > 1


#: the folder name inside the zip of :func:`export_tensorboard_zip`
EXPORT_FOLDER = "interpret-tensorboard"


def export_tensorboard_zip(model, images, layer: Optional[str] = None, *,
                           activation_layer: Optional[str] = None, summaries: bool = True,
                           folder: str = EXPORT_FOLDER, progress: Optional[Progress] = None,
                           **kwargs) -> bytes:
    """:func:`export_tensorboard` into a temporary folder, returned as the bytes of a zip
    holding ``folder/`` (for a download: ``unzip`` it, then ``tensorboard --logdir
    folder``).  Nothing is left on disk."""
    import io
    import tempfile
    import zipfile

    with tempfile.TemporaryDirectory(prefix="interpret-tb-") as tmp:
        logdir = Path(tmp) / folder
        logdir.mkdir()
        export_tensorboard(logdir, model, images, layer, activation_layer=activation_layer,
                           summaries=summaries, progress=progress, **kwargs)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in sorted(logdir.rglob("*")):
                if p.is_file():
                    zf.write(p, p.relative_to(tmp).as_posix())
        return buf.getvalue()

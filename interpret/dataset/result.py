"""A stored dataset analysis, reopened: :func:`open_dataset` and :class:`DatasetResult`.

A result is read from its folder (see :mod:`interpret.dataset.store`); a folder that a
killed or still running job is writing to opens too, and says how much it holds.
Light columns (paths, labels, predictions, scores) are read for the table; maps,
thumbnails and features only when asked for, aligned with the table's rows.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError
from ..images import MAX_IMAGE_BYTES
from .batch import BATCHED_CAMS, LABEL_TASKS, TRUST_FIELDS, JobSettings, decode_map, decode_maps
from .store import Store, _pa as _parquet
from .summary import (BORDER, CENTRE, Box, Flag, FlagRules, box_shares, find_flags, grid_boxes,
                      normalise)

__all__ = ["DatasetResult", "open_dataset", "RunInfo", "list_runs"]

_LIGHT = ("item", "path", "label", "label_index", "status", "reason", "prediction_index",
          "prediction", "probability", "label_probability", "correct", "topk_index",
          "topk_probability", "target_index", "score", "box", *TRUST_FIELDS, "verdict",
          "trust_sentence", "batch")
#: The extra light columns of a multi-label or binary run.
_LABELLED = ("truth", "probabilities", "target_indices", "target_signs", "scores")


class DatasetResult:
    """The results of :func:`interpret.analyze_dataset` in folder ``out``.

    ``accuracy``, ``confusion`` (labels x labels counts, rows the true class, columns
    the prediction, in the model's label order), ``table()`` (one row per analysed
    image), ``flags`` (:class:`Flag`: shortcut suspicions), ``skipped`` ((path,
    reason) of every image that was not analysed), ``done`` / ``total`` / ``complete``
    (a stopped job's folder holds part of the set: run the analysis again to finish
    it), ``maps()``, ``mean_maps()``, ``where()``, ``least_faithful()``,
    ``most_outside()``, ``embedding()``."""

    def __init__(self, out):
        self.store = Store(out)
        self.manifest = self.store.read_manifest()
        self._items = self.store.read_items()

    # -- what the run is -------------------------------------------------------------
    @property
    def out(self) -> Path:
        return self.store.root

    @property
    def settings(self) -> JobSettings:
        return JobSettings.from_dict(self.manifest["settings"])

    @property
    def methods(self) -> Tuple[str, ...]:
        return self.settings.methods

    @property
    def labels(self) -> List[str]:
        """The model's labels (the order of ``confusion``)."""
        return list(self.manifest["labels"])

    @property
    def task(self) -> str:
        """The model's task when the run was made: ``"classification"``, ``"multilabel"``
        or ``"binary"``."""
        return str(self.manifest.get("task") or "classification")

    @property
    def labelled(self) -> bool:
        """A multi-label or binary run: independent labels per image, analysed per label
        (:meth:`per_label` instead of :attr:`confusion`)."""
        return self.task in LABEL_TASKS

    def target_name(self, index: int, sign: int = 1) -> str:
        """What one stored map explains, by name: a label (multi-label), the positive class
        or "not <it>" (binary, ``sign=-1``: what lowers its probability)."""
        from .sources import negative_name

        if self.task == "binary":
            return self.labels[0] if sign > 0 else negative_name(self.labels[0])
        return self.labels[int(index)]

    @property
    def model(self) -> str:
        return self.manifest["model"]["name"]

    @property
    def map_shape(self) -> Tuple[int, int]:
        return tuple(self.manifest["map_shape"])  # type: ignore[return-value]

    @property
    def input_size(self) -> Tuple[int, int]:
        return tuple(self.manifest["input_size"])  # type: ignore[return-value]

    @property
    def boxes(self) -> Dict[str, Box]:
        """Object boxes given by a person per class (fractions of the model's view)."""
        return {k: tuple(v) for k, v in (self.manifest.get("boxes") or {}).items()}

    @property
    def total(self) -> int:
        """Images planned (the set, without the files skipped when listing it)."""
        return self._items.num_rows

    @property
    def done(self) -> int:
        """Images with a stored row (analysed or skipped as unreadable)."""
        return len(self._rows_by_key)

    @property
    def complete(self) -> bool:
        return self.done >= self.total

    @property
    def running(self) -> bool:
        """Whether a job is writing to the folder now."""
        return self.store.is_running()

    @property
    def status(self) -> str:
        """``"complete"``, ``"running"`` or ``"stopped"`` (a job ended before finishing)."""
        if self.complete:
            return "complete"
        return "running" if self.running else "stopped"

    # -- rows ----------------------------------------------------------------------------
    @cached_property
    def _all_rows(self):
        return self.store.read_rows(columns=list(_LIGHT) + (list(_LABELLED) if self.labelled else []))

    @cached_property
    def _rows_by_key(self) -> Dict[str, int]:
        """Plan key -> row number in the stored rows (the last one, should a key ever be
        stored twice)."""
        planned = set(self._items.column("item").to_pylist())
        out: Dict[str, int] = {}
        if self._all_rows is None:
            return out
        for r, k in enumerate(self._all_rows.column("item").to_pylist()):
            if k in planned:
                out[k] = r
        return out

    @property
    def stored_rows(self) -> int:
        """Rows in the part files, duplicates included (a resumed job must add none)."""
        return 0 if self._all_rows is None else self._all_rows.num_rows

    @cached_property
    def _frame(self):
        import pandas as pd

        if self._all_rows is None:
            return pd.DataFrame(columns=list(_LIGHT))
        keep = sorted(self._rows_by_key.values())
        df = self._all_rows.take(keep).to_pandas()
        return df.sort_values("path", kind="stable").reset_index(drop=True)

    def table(self, all_rows: bool = False):
        """One row per analysed image (pandas DataFrame), in path order: ``path``,
        ``label``, ``prediction``, ``probability``, ``correct``, ``topk_index``,
        ``topk_probability``, ``label_probability``, ``score`` (the explained logit),
        the trust figures when computed, ``box`` (CSV boxes)...  ``all_rows``: also the
        images skipped as unreadable (``status="skipped"``, ``reason``)."""
        df = self._frame
        if not all_rows:
            df = df[df["status"] == "ok"].reset_index(drop=True)
        return df.copy()

    @cached_property
    def _ok(self):
        return self.table()

    @cached_property
    def _explained(self):
        """One row per stored map, aligned with :meth:`maps`: for a classifier the
        analysed images (:meth:`table`); for a multi-label or binary run one row per
        image and explained label (``label``: the label explained, ``image_labels``: the
        image's true labels, ``k``: the map's place in the image's stored maps)."""
        import pandas as pd

        df = self._ok
        if not self.labelled:
            return df
        out = []
        for r in df.itertuples(index=False):
            idx = list(r.target_indices) if r.target_indices is not None else []
            sg = list(r.target_signs) if r.target_signs is not None else []
            for k, (i, g) in enumerate(zip(idx, sg)):
                out.append({"item": r.item, "path": r.path, "label": self.target_name(i, g),
                            "image_labels": r.label, "k": k, "box": r.box, "batch": r.batch,
                            "correct": r.correct, "prediction": r.prediction})
        cols = ["item", "path", "label", "image_labels", "k", "box", "batch", "correct", "prediction"]
        return pd.DataFrame(out, columns=cols)

    def per_label(self, threshold: float = 0.5):
        """Per label of a multi-label or binary run (binary: the positive class): images
        where it is ``present``, ``predicted`` (probability >= ``threshold``), both
        (``true_positives``), ``precision`` = true positives / predicted and ``recall`` =
        true positives / present (NaN where the denominator is 0), and the
        ``threshold``."""
        import pandas as pd

        if not self.labelled:
            raise InputError("Precision and recall per label are for multi-label and binary runs; "
                             "this run's classifier has a confusion matrix.")
        t = float(threshold)
        if not 0.0 < t < 1.0:
            raise InputError(f"The threshold is a probability between 0 and 1 (exclusive); got {threshold!r}.")
        df = self._ok
        n = len(self.labels) if self.task == "multilabel" else 1
        truth = np.zeros((len(df), n), bool)
        probs = np.zeros((len(df), n), np.float64)
        for j, (tr, pr) in enumerate(zip(df.get("truth", []), df.get("probabilities", []))):
            truth[j, [int(v) for v in tr]] = True
            probs[j] = np.asarray(pr, np.float64)[:n]
        pred = probs >= t
        tp = (truth & pred).sum(0)
        present, predicted = truth.sum(0), pred.sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), np.nan)
            recall = np.where(present > 0, tp / np.maximum(present, 1), np.nan)
        return pd.DataFrame({"label": self.labels[:n], "present": present, "predicted": predicted,
                             "true_positives": tp, "precision": precision, "recall": recall,
                             "threshold": t})

    @property
    def skipped(self) -> List[Tuple[str, str]]:
        """(path, reason) of every file left out: when the set was listed (not an image,
        a folder that matches no label...) and when it was read (unreadable images)."""
        listed = [tuple(x) for x in self.manifest.get("skipped", [])]
        df = self._frame
        bad = df[df["status"] == "skipped"]
        return listed + list(zip(bad["path"], bad["reason"]))

    # -- accuracy ----------------------------------------------------------------------
    @property
    def accuracy(self) -> float:
        df = self._ok
        return float(df["correct"].mean()) if len(df) else float("nan")

    @cached_property
    def confusion(self) -> np.ndarray:
        if self.labelled:
            raise InputError("A multi-label or binary run has no confusion matrix; see per_label() "
                             "for each label's precision and recall.")
        k = len(self.labels)
        m = np.zeros((k, k), dtype=np.int64)
        df = self._ok
        np.add.at(m, (df["label_index"].to_numpy(int), df["prediction_index"].to_numpy(int)), 1)
        return m

    def confusion_classes(self) -> List[int]:
        """The label indices that occur as a true class or a prediction, in label order
        (the rows and columns worth drawing)."""
        c = self.confusion
        return [int(i) for i in np.nonzero(c.sum(0) + c.sum(1))[0]]

    def classes(self) -> List[str]:
        """The true classes of the set, in label order (multi-label and binary runs: the
        labels explained by at least one stored map, in label order; binary: the
        positive class, then "not <it>")."""
        if self.labelled:
            present = set(self._explained["label"])
            names = (self.labels if self.task == "multilabel"
                     else [self.target_name(0, 1), self.target_name(0, -1)])
            return [l for l in names if l in present]
        present = set(self._items.column("label").to_pylist())
        return [l for l in self.labels if l in present]

    def class_summary(self):
        """Per true class: images, accuracy, the most frequent wrong prediction, the
        mean share of map mass on the border and in the centre, and the flags."""
        import pandas as pd

        if self.labelled:
            return self._label_summary()
        df = self._ok
        where = self.where()
        flags: Dict[str, List[str]] = {}
        for f in self.flags:
            flags.setdefault(f.label, []).append(f.kind)
        out = []
        for lab in self.classes():
            sub = df[df["label"] == lab]
            wrong = sub[~sub["correct"]]["prediction"].value_counts()
            w = where[where["label"] == lab]
            out.append({
                "label": lab, "images": len(sub),
                "accuracy": float(sub["correct"].mean()) if len(sub) else float("nan"),
                "confused_with": wrong.index[0] if len(wrong) else "",
                "confused_count": int(wrong.iloc[0]) if len(wrong) else 0,
                "border": float(w["border"].iloc[0]) if len(w) else float("nan"),
                "centre": float(w["centre"].iloc[0]) if len(w) else float("nan"),
                "flags": ", ".join(flags.get(lab, [])),
            })
        return pd.DataFrame(out)

    def _label_summary(self, threshold: float = 0.5):
        """:meth:`class_summary` of a multi-label or binary run: per explained label, the
        maps (``images``), precision and recall at ``threshold`` (binary: of the
        positive class; NaN for "not <it>"), where its maps sit, and the flags."""
        import pandas as pd

        pl = self.per_label(threshold).set_index("label")
        where = self.where()
        flags: Dict[str, List[str]] = {}
        for f in self.flags:
            flags.setdefault(f.label, []).append(f.kind)
        out = []
        for lab in self.classes():
            w = where[where["label"] == lab]
            out.append({
                "label": lab, "images": int(w["images"].iloc[0]) if len(w) else 0,
                "precision": float(pl.loc[lab, "precision"]) if lab in pl.index else float("nan"),
                "recall": float(pl.loc[lab, "recall"]) if lab in pl.index else float("nan"),
                "border": float(w["border"].iloc[0]) if len(w) else float("nan"),
                "centre": float(w["centre"].iloc[0]) if len(w) else float("nan"),
                "flags": ", ".join(flags.get(lab, [])),
            })
        return pd.DataFrame(out)

    # -- maps ----------------------------------------------------------------------------
    def _method(self, method: Optional[str]) -> str:
        m = method or self.methods[0]
        if m not in self.methods:
            raise InputError(f"This analysis holds maps of {', '.join(self.methods)}, not '{m}'.")
        return m

    def _column(self, name: str) -> list:
        """One heavy column, aligned with :meth:`table`."""
        t = self.store.read_rows(columns=["item", name])
        if t is None:
            return []
        by_key = dict(zip(t.column("item").to_pylist(), t.column(name).to_pylist()))
        return [by_key.get(k) for k in self._ok["item"]]

    @cached_property
    def _maps_cache(self) -> Dict[str, np.ndarray]:
        return {}

    def maps(self, method: Optional[str] = None) -> np.ndarray:
        """N x h x w float32: each analysed image's map (raw CAM, signed, at the layer's
        resolution; for methods that are not batched CAMs, their [0, 1] heatmap pooled
        to it), in :meth:`table` order; for a multi-label or binary run, one map per
        image and explained label, in the order of ``_explained``."""
        m = self._method(method)
        if m not in self._maps_cache and self.labelled:
            h, w = self.map_shape
            by_item = dict(zip(self._ok["item"], self._column(f"map_{m}")))
            ex = self._explained
            arr = (np.stack([decode_maps(by_item[i], (h, w))[k] for i, k in zip(ex["item"], ex["k"])])
                   if len(ex) else np.zeros((0, h, w), np.float32))
            self._maps_cache[m] = arr.astype(np.float32)
        if m not in self._maps_cache:
            h, w = self.map_shape
            blobs = self._column(f"map_{m}")
            arr = np.stack([decode_map(b, (h, w)) for b in blobs]) if blobs else np.zeros((0, h, w), np.float32)
            self._maps_cache[m] = arr.astype(np.float32)
        return self._maps_cache[m]

    def mass_maps(self, method: Optional[str] = None) -> np.ndarray:
        """:meth:`maps` as mass (ReLU for CAMs, divided by the sum; NaN: no positive mass)."""
        m = self._method(method)
        return normalise(self.maps(m), "cam" if m in BATCHED_CAMS else "heatmap")

    def mean_maps(self, method: Optional[str] = None) -> Dict[str, np.ndarray]:
        """{class: its images' mean mass map (h x w)}, classes in label order."""
        mm = self.mass_maps(method)
        labels = self._explained["label"].to_numpy()
        out = {}
        for lab in self.classes():
            sel = mm[labels == lab]
            sel = sel[~np.isnan(sel.reshape(len(sel), -1)).any(1)] if len(sel) else sel
            if len(sel):
                out[lab] = sel.mean(0)
        return out

    def regions(self, method: Optional[str] = None, grid: int = 3):
        """Per analysed image (table order): the share of its map's mass on the border
        (a band of :data:`BORDER` of the side), in the centre (:data:`CENTRE`) and in
        each cell of a ``grid`` x ``grid`` grid (``cell_<row>_<col>``, from the top
        left), and inside its own box (CSV boxes) or its class's given box."""
        import pandas as pd

        mm = self.mass_maps(method)
        cells = grid_boxes(grid)
        inner = (BORDER, BORDER, 1 - BORDER, 1 - BORDER)
        per = self._given_boxes(self.boxes)
        shares, own = box_shares(mm, [inner, CENTRE, *cells], self.input_size, per_image=per)
        ex = self._explained
        df = pd.DataFrame({"path": ex["path"], "label": ex["label"],
                           "border": 1.0 - shares[:, 0], "centre": shares[:, 1]})
        for q in range(len(cells)):
            df[f"cell_{q // grid}_{q % grid}"] = shares[:, 2 + q]
        df["inside_box"] = own
        return df

    def where(self, method: Optional[str] = None, grid: int = 3):
        """Per true class, the mean of :meth:`regions`: where its evidence sits."""
        r = self.regions(method, grid)
        cols = [c for c in r.columns if c not in ("path", "label")]
        g = r.groupby("label", sort=False)[cols].mean()
        g.insert(0, "images", r.groupby("label", sort=False).size())
        order = [l for l in self.classes() if l in g.index]
        return g.loc[order].reset_index()

    def _given_boxes(self, boxes: Optional[Dict[str, Box]]) -> np.ndarray:
        """N x 4: each image's own box (CSV), else its class's given box, else NaN."""
        df = self._explained
        out = np.full((len(df), 4), np.nan)
        boxes = boxes or {}
        for j, (lab, b) in enumerate(zip(df["label"], df["box"])):
            if b is not None and len(b) == 4:
                out[j] = b
            elif lab in boxes:
                out[j] = boxes[lab]
        return out

    # -- flags -----------------------------------------------------------------------------
    def find_flags(self, boxes: Optional[Dict[str, Box]] = None, method: Optional[str] = None,
                   rules: FlagRules = FlagRules()) -> List[Flag]:
        """The shortcut flags (see :mod:`interpret.dataset.summary`), with ``boxes``
        ({class: (x0, y0, x1, y1)} in fractions of the model's view) instead of the
        ones stored with the run."""
        from ..methods.registry import get_method

        m = self._method(method)
        df = self._explained
        per = np.full((len(df), 4), np.nan)
        for j, b in enumerate(df["box"]):
            if b is not None and len(b) == 4:
                per[j] = b
        return find_flags(df["label"].tolist(), df["path"].tolist(), self.mass_maps(m), self.input_size,
                          self.classes(), self.boxes if boxes is None else boxes, per, rules,
                          get_method(m).label)

    @cached_property
    def flags(self) -> List[Flag]:
        """The shortcut flags of the primary method, with the run's boxes."""
        return self.find_flags()

    # -- sorted views ------------------------------------------------------------------------
    def least_faithful(self, n: Optional[int] = None):
        """Images whose primary map is least faithful first: the smallest margin of
        (insertion AUC - random insertion AUC) - (deletion AUC - random deletion AUC)
        (a faithful map drops the score faster than random when its top pixels are
        removed and raises it faster when they are inserted).  Needs ``trust=True``;
        empty otherwise."""
        df = self._ok
        if not self.settings.trust or df["deletion_auc"].isna().all():
            return df.iloc[0:0].assign(faithfulness_margin=[])
        margin = ((df["insertion_auc"] - df["random_insertion_auc"])
                  - (df["deletion_auc"] - df["random_deletion_auc"]))
        out = df.assign(faithfulness_margin=margin).dropna(subset=["faithfulness_margin"])
        out = out.sort_values("faithfulness_margin", kind="stable").reset_index(drop=True)
        return out if n is None else out.head(n)

    def most_outside(self, boxes: Optional[Dict[str, Box]] = None, method: Optional[str] = None,
                     n: Optional[int] = None):
        """Images with the most map mass outside their object's box first (column
        ``outside``): CSV boxes, else the class boxes (``boxes`` or the run's).  Empty
        when no image has a box."""
        r = self.regions(method) if boxes is None else None
        if r is None:
            per = self._given_boxes(boxes)
            _, own = box_shares(self.mass_maps(method), [], self.input_size, per_image=per)
        else:
            own = r["inside_box"].to_numpy()
        df = self._explained.assign(outside=1.0 - own).dropna(subset=["outside"])
        df = df.sort_values("outside", ascending=False, kind="stable").reset_index(drop=True)
        return df if n is None else df.head(n)

    # -- images and features ---------------------------------------------------------------
    def embedding(self) -> Tuple[np.ndarray, np.ndarray]:
        """(coords N x 2, explained-variance ratios): a PCA of the classifier's input
        features of the analysed images (table order).  Needs ``features=True``."""
        from ..features.embedding import pca

        blobs = self._column("features")
        if not blobs or any(b is None for b in blobs):
            raise InputError("This analysis kept no features (run it with features=True).")
        if len(blobs) < 2:
            raise InputError("An embedding needs at least two images.")
        f = np.stack([np.frombuffer(b, dtype="<f2") for b in blobs]).astype(np.float32)
        return pca(f, 2)

    def _cells(self, paths: Sequence[str], column: str) -> List[Optional[bytes]]:
        """One heavy column for some images, read from their batches' files only."""
        _, pq = _parquet()
        df = self._ok
        batch_of = dict(zip(df["path"], df["batch"]))
        wanted: Dict[str, List[str]] = {}
        for p in paths:
            if p in batch_of:
                wanted.setdefault(batch_of[p], []).append(p)
        found: Dict[str, Optional[bytes]] = {}
        for batch in wanted:
            f = self.store.parts / f"{batch}.parquet"
            if f.exists():
                t = pq.read_table(f, columns=["path", column])
                found.update(zip(t.column("path").to_pylist(), t.column(column).to_pylist()))
        return [found.get(p) for p in paths]

    def thumbnails(self, paths: Sequence[str]) -> List[Optional[bytes]]:
        """The stored JPEG thumbnails (the model's view) of some analysed images."""
        return self._cells(paths, "thumb")

    def map_of(self, path: str, method: Optional[str] = None, label: Optional[str] = None
               ) -> Optional[np.ndarray]:
        """One image's raw map (h x w), or None; for a multi-label or binary run, the map of
        ``label`` (default: the image's first explained label)."""
        ex = self._explained
        hit = ex["path"].to_numpy() == path
        if label is not None and self.labelled:
            hit &= ex["label"].to_numpy() == label
        idx = np.nonzero(hit)[0]
        return self.maps(method)[int(idx[0])] if len(idx) else None

    def image_bytes(self, path: str) -> Optional[bytes]:
        """The original file of an image, from the set's folder or zip, when it is still
        there (None otherwise: the thumbnail is then all there is).  Only paths of this
        run's analysed images are read."""
        if path not in set(self._ok["path"]):
            return None
        src = self.manifest.get("source", {})
        kind, root = src.get("kind"), src.get("root")
        try:
            if kind == "zip":
                with zipfile.ZipFile(root) as zf, zf.open(path) as fh:
                    data = fh.read(MAX_IMAGE_BYTES + 1)
            else:
                p = Path(path)
                p = p if p.is_absolute() else Path(src.get("base") or root) / p
                if p.is_symlink():
                    return None
                with open(p, "rb") as fh:
                    data = fh.read(MAX_IMAGE_BYTES + 1)
        except (OSError, KeyError, zipfile.BadZipFile, TypeError):
            return None
        return data if len(data) <= MAX_IMAGE_BYTES else None

    # -- for people ---------------------------------------------------------------------------
    def describe(self) -> str:
        """A few lines: what the folder holds, accuracy, flags, skipped files."""
        lines = [f"{self.out}: {self.model}, {', '.join(self.methods)} at layer {self.settings.layer}, "
                 f"{self.done} of {self.total} images stored ({self.status})."]
        if not self.complete and not self.running:
            lines.append("The job stopped before finishing: run it again with the same settings to "
                         "compute the rest (nothing stored is computed again).")
        if len(self._ok) and self.labelled:
            lines.append(f"Exact match (every label right) {self.accuracy:.1%} on {len(self._ok)} images.")
            for r in self.per_label().itertuples(index=False):
                lines.append(f"'{r.label}': precision {_pct(r.precision)}, recall {_pct(r.recall)} "
                             f"at a threshold of {r.threshold:.2f} ({r.present} present, {r.predicted} predicted).")
        elif len(self._ok):
            lines.append(f"Accuracy {self.accuracy:.1%} on {len(self._ok)} images.")
        for f in self.flags:
            lines.append(f"Flag: {f.sentence}")
        if self.skipped:
            lines.append(f"{len(self.skipped)} file(s) skipped, e.g. {self.skipped[0][0]}: {self.skipped[0][1]}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        acc = f", accuracy {self.accuracy:.3f}" if len(self._ok) else ""
        return (f"DatasetResult({self.out}, {self.done} of {self.total} images, {self.status}{acc}, "
                f"{len(self.flags)} flag(s))")


def _pct(v: float) -> str:
    """A share for people; "n/a" where it is undefined (nothing to count)."""
    return "n/a" if not np.isfinite(v) else f"{v:.1%}"


def open_dataset(out) -> DatasetResult:
    """Reopen the results stored in folder ``out`` by :func:`interpret.analyze_dataset`,
    also those of a job that was stopped or is still running (``result.status``)."""
    return DatasetResult(out)


@dataclass(frozen=True)
class RunInfo:
    """One stored run, for a list of a team's runs: folder, name, who ran it and when,
    model, source, images done of total, status, accuracy (NaN: none yet)."""

    path: str
    name: str
    created_by: str
    created_at: str
    model: str
    source: str
    done: int
    total: int
    status: str
    accuracy: float


def list_runs(folder) -> List[RunInfo]:
    """The runs stored in the sub-folders of ``folder``, newest first (folders that
    hold no readable run are left out)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        return []
    runs = []
    for p in sorted(root.iterdir()):
        if not (p / "manifest.json").is_file() or p.is_symlink():
            continue
        try:
            r = DatasetResult(p)
            runs.append(RunInfo(str(p), r.manifest.get("name") or p.name, r.manifest.get("created_by") or "",
                                r.manifest.get("created_at") or "", r.model,
                                r.manifest.get("source", {}).get("description", ""), r.done, r.total,
                                r.status, r.accuracy))
        except (InputError, OSError, ValueError, KeyError):
            continue
    return sorted(runs, key=lambda r: r.created_at, reverse=True)

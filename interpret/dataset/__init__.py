"""Dataset mode: explain a whole labelled image set, find the classes whose evidence
looks like a shortcut, store the results, and scale out on Ray.

>>> result = interpret.analyze_dataset(model, "val/", methods=["gradcam"], out="runs/val")
>>> result.accuracy, result.confusion, result.flags
>>> result.table()                      # one row per image: path, label, prediction, ...
>>> interpret.open_dataset("runs/val")  # later, or a teammate, or after a killed job

Modules: :mod:`.sources` (folders, zips, CSVs; labels matched), :mod:`.batch` (one
batch: forward, backward to the layer, the CAMs, the rows), :mod:`.engines` (local and
Ray), :mod:`.store` (Parquet parts, atomic and resumable), :mod:`.summary` (region
shares, shortcut flags), :mod:`.result` (reading a run back), :mod:`.synthetic` (a
planted shortcut to try it on).
"""

from .api import analyze_dataset, run_key
from .batch import BATCHED_CAMS, JobSettings
from .engines import DatasetWorker, ModelSpec
from .result import DatasetResult, RunInfo, list_runs, open_dataset
from .sources import (MAX_DATASET_IMAGES, MAX_UPLOAD_BYTES, MAX_UPLOAD_IMAGES, DatasetSource, Item,
                      match_labels, read_source)
from .summary import BORDER, CENTRE, Flag, FlagRules, region_name

__all__ = ["analyze_dataset", "open_dataset", "DatasetResult", "Flag", "FlagRules", "JobSettings",
           "ModelSpec", "DatasetWorker", "RunInfo", "list_runs", "read_source", "DatasetSource", "Item",
           "match_labels", "BATCHED_CAMS", "MAX_DATASET_IMAGES", "MAX_UPLOAD_IMAGES",
           "MAX_UPLOAD_BYTES", "BORDER", "CENTRE", "region_name", "run_key"]

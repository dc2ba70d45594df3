"""The sidebar's "Upload a checkpoint" form: which library the model comes from, the
file, its architecture (searchable lists of torchvision's and timm's), its labels; the
preprocessing of an uploaded model (editable: ONNX graphs and some Hugging Face folders
carry none); and the sentences the Home page and the form show about which sources this
server reads.

Only architectures from these lists reach :func:`interpret.load_model`
(:func:`check_upload_arch`): a visitor can never name code to import.

**The uploader takes every model file this server reads**, whatever the Library says:
the file is told by its content (:func:`interpret.sources.files.file_kind`): an ONNX
graph or a zipped Hugging Face folder needs no architecture; a state dict needs the
Library and architecture chosen above it.

**The form keeps what was chosen and loaded across pages.**  Streamlit forgets the
state of a widget that a page does not draw, and each page draws its own sidebar, so
the choices are mirrored into plain session keys (``upload_*``) that are written back
into the widgets before they are drawn; a file uploader cannot be given a file, so the
loaded file's name is shown under it.
"""

from __future__ import annotations

import importlib.util
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import streamlit as st

import interpret
from interpret import words

from . import compute, state
from .errors import error_message, show_input_error

SAFE_MODEL_TYPES = ["pt", "pth", "bin", "safetensors"]
UNTRUSTED_MODEL_TYPES = ["pt2", "ts", "jit"]

#: the libraries the form offers, in order: id -> label
LIBRARIES: Dict[str, str] = {
    "torchvision": "torchvision (or the bundled EfficientNet-Lite0)",
    "timm": "timm (PyTorch Image Models)",
    "hf": "Hugging Face transformers (zipped folder)",
    "onnx": "ONNX graph",
}
#: the Python packages each library needs on the server (import names = pip names)
_PACKAGES = {"timm": ("timm",), "hf": ("transformers",), "onnx": ("onnx", "onnx2torch")}
#: the file types each library's files come as
_TYPES = {"hf": ("zip",), "onnx": ("onnx", "zip")}
#: what each library's files are called in sentences
_WHAT = {"timm": "timm state dicts", "hf": "zipped Hugging Face folders", "onnx": "ONNX graphs"}

# plain session keys that outlive a page change (widget keys do not: see the docstring)
_KEEP = {"w_model_library": "upload_library", "w_model_arch": "upload_arch",
         "w_model_timm_arch": "upload_timm_arch"}


#: the upload form's task choice: read from the model, or one of interpret.targets.TASKS
TASK_CHOICES = ("read from the model", "classification", "multilabel", "binary", "regression",
                "segmentation", "detection", "embedding")


def library_available(library: str) -> bool:
    """Whether the packages a library's models need are installed on this server."""
    return all(importlib.util.find_spec(p) is not None for p in _PACKAGES.get(library, ()))


def available_libraries() -> List[str]:
    """The libraries whose packages this server has, in the form's order."""
    return [lib for lib in LIBRARIES if library_available(lib)]


def install_command(library: str) -> str:
    """The pip command that adds a library's packages (``pip install onnx onnx2torch``)."""
    return "pip install " + " ".join(_PACKAGES[library])


def accepted_file_types(available: Sequence[str], untrusted: bool) -> List[str]:
    """What the uploader takes: state dicts and safetensors always, ``.onnx`` and
    ``.zip`` when ONNX or Hugging Face support is installed, the formats that run code
    only when the operator allowed them.  One list for every Library: a file is routed
    by its content (:func:`route`)."""
    types = list(SAFE_MODEL_TYPES)
    for lib in ("onnx", "hf"):
        if lib in available:
            types += [t for t in _TYPES[lib] if t not in types]
    if untrusted:
        types += UNTRUSTED_MODEL_TYPES
    return types


def upload_caption(available: Sequence[str], untrusted: bool) -> str:
    """The sentence under the uploader: what this server reads (from the packages it
    has), what it refuses, and the pip command for each missing source."""
    reads = ["state dicts and safetensors (torchvision" + (", timm" if "timm" in available else "") + ")"]
    reads += [_WHAT[lib] for lib in ("onnx", "hf") if lib in available]
    said = (", ".join(reads[:-1]) + " and " + reads[-1]) if len(reads) > 1 else reads[0]
    out = f"This server reads {said}."
    if untrusted:
        out += (" It also accepts formats that run code when loaded (setting allow_untrusted): "
                "load only files you trust.")
    else:
        out += " Files that would run code when loaded are refused."
    missing = [lib for lib in LIBRARIES if lib in _PACKAGES and lib not in available]
    if missing:
        out += " Not installed here: " + "; ".join(
            f"{_WHAT[lib]} (`{install_command(lib)}`, then restart the server)" for lib in missing) + "."
    return out


def route(kind: str, library: str, available: Sequence[str]) -> str:
    """Which loader a file goes to: ``"onnx"`` and ``"hf"`` from the file's content
    (``kind``: :func:`interpret.sources.files.file_kind`), else the ``library`` chosen
    for a state dict.  InputError, saying what to do, when that cannot work here."""
    if kind in ("onnx", "onnx-zip"):
        lib = "onnx"
    elif kind == "hf-zip":
        lib = "hf"
    elif kind == "unknown":
        raise interpret.InputError(
            "This file is not a model this server can read: not a PyTorch state dict, "
            "safetensors file, ONNX graph, or zipped Hugging Face folder (config.json and "
            "model.safetensors).")
    else:  # a state dict, safetensors, or a format that runs code: the Library decides
        if library not in ("torchvision", "timm"):
            raise interpret.InputError(
                "This file is a PyTorch checkpoint, not "
                f"{'an ONNX graph' if library == 'onnx' else 'a zipped Hugging Face folder'}: "
                "choose torchvision or timm under Library, then the architecture it belongs to.")
        return library
    if lib not in available:
        raise interpret.InputError(
            f"This file is {'an ONNX graph' if lib == 'onnx' else 'a zipped Hugging Face folder'}, "
            f"and this server has no {' and '.join(_PACKAGES[lib])} installed to read it: "
            f"{install_command(lib)} (then restart the server).")
    return lib


def yolo_architectures() -> List[str]:
    """``ultralytics:<yaml>`` for each detection YAML the installed Ultralytics package
    ships (read from its files, never a path a visitor gives); none without the package."""
    if importlib.util.find_spec("ultralytics") is None:
        return []
    from interpret.sources.ultralytics import PREFIX, architectures as yolo_yamls

    return [PREFIX + name for name in yolo_yamls()]


def _architectures(library: str) -> List[str]:
    if library == "torchvision":  # classifiers, segmentation models (issue 19), detectors (issue 20)
        from interpret.sources.torchvision import detectors, segmenters

        return ([state.DEFAULT_MODEL] + interpret.torchvision_classifiers() + segmenters() + detectors()
                + yolo_architectures())
    if library == "timm":
        from interpret.sources.timm import architectures

        return architectures()
    return []


@st.cache_data(show_spinner=False)
def architectures(library: str) -> list:
    """The architecture names the form lists for ``library`` (timm: ``timm.list_models()``)."""
    return _architectures(library)


def classifiers() -> list:
    """torchvision's classification architectures (the sidebar's torchvision picker)."""
    return [a for a in architectures("torchvision")
            if a != state.DEFAULT_MODEL and not a.startswith("ultralytics:")]


def check_upload_arch(library: str, arch: Optional[str]) -> Optional[str]:
    """The ``arch=`` to load an upload with: a name from the offered lists only
    (torchvision's, the bundled model's, an Ultralytics YAML's ``ultralytics:<yaml>``, or
    ``timm:<name>``), None for formats that
    carry their architecture (Hugging Face folders, ONNX graphs).  Anything else, a
    ``package.module:function`` factory string say, is refused before any loading."""
    if library in ("hf", "onnx"):
        return None
    if library not in LIBRARIES or arch not in _architectures(library):
        raise interpret.InputError(
            f"'{arch}' is not one of the architectures this form offers for "
            f"{LIBRARIES.get(library, library)}.")
    return f"timm:{arch}" if library == "timm" else arch


_FILE_HELP = {
    "torchvision": "A state dict saved with torch.save(model.state_dict(), 'm.pth'), or a "
                   ".safetensors file. An Ultralytics YOLO's: save its DetectionModel's "
                   "state_dict() and choose its YAML (ultralytics:yolov8n.yaml...) as the "
                   "architecture.",
    "timm": "A timm state dict (torch.save(model.state_dict(), 'm.pth') or safetensors); "
            "the class count is read from the file.",
    "hf": "A zip of the folder model.save_pretrained(folder) writes: config.json, "
          "model.safetensors and, if you have it, preprocessor_config.json.",
    "onnx": "An .onnx file; it is converted to PyTorch (onnx2torch) so that every gradient "
            "method works on it. torch.onnx.export writes the weights to a separate "
            "model.onnx.data file by default: upload a .zip of both files, or export with "
            "external_data=False.",
}
_ANY_FILE = (" Whatever the Library says, an .onnx file or a zip of an ONNX graph or a Hugging "
             "Face folder is recognised by its content.")


def _keep(widget: str) -> None:
    """on_change: mirror a widget's value into its plain session key."""
    st.session_state[_KEEP[widget]] = st.session_state.get(widget)


def _restore(widget: str, options: Sequence[str], default: str) -> None:
    """Before drawing: the widget shows the kept choice (or ``default``)."""
    ss = st.session_state
    now, kept = ss.get(widget), ss.get(_KEEP[widget])
    value = now if now in options else (kept if kept in options else default)
    ss[widget] = ss[_KEEP[widget]] = value


def loaded_caption(loaded: Mapping[str, object]) -> str:
    """The line under the uploader once a model is loaded: the file (escaped: a
    visitor's name), the library and the architecture it was loaded as."""
    lib = LIBRARIES.get(str(loaded.get("library")), str(loaded.get("library")))
    arch = loaded.get("arch")
    labels = loaded.get("labels")
    return (f":material/check_circle: Loaded **{words.text(loaded.get('file'))}** "
            f"({words.text(lib)}" + (f", {words.text(arch)}" if arch else "") + ")"
            + (f" with the class names of {words.text(labels)}" if labels else "") + ".")


def upload_model_form() -> None:
    ss = st.session_state
    settings = compute.server_settings()
    untrusted = settings.allow_untrusted
    libs = available_libraries()
    _restore("w_model_library", libs, libs[0])
    library = st.selectbox("Library", libs, format_func=LIBRARIES.get, key="w_model_library",
                           on_change=_keep, args=("w_model_library",),
                           help="Where a state dict's architecture comes from (torchvision, timm; an "
                                "Ultralytics YOLO's YAML is under torchvision). "
                                "ONNX graphs and Hugging Face folders carry theirs: they are "
                                "recognised by their content whatever this says.")
    with st.form("upload_model", border=False):
        weights = st.file_uploader(
            "Checkpoint", type=accepted_file_types(libs, untrusted), key="w_model_file",
            max_upload_size=settings.max_model_mb,
            help=_FILE_HELP[library] + _ANY_FILE + (
                " Whole pickled models and TorchScript are also accepted on this server."
                if untrusted and library == "torchvision" else ""))
        loaded = ss.get("upload_loaded")
        if loaded and weights is None and state.get("model") == "upload":
            st.caption(loaded_caption(loaded))
        arch = None
        if library == "torchvision":
            archs = architectures("torchvision")
            _restore("w_model_arch", archs, "resnet50" if "resnet50" in archs else archs[0])
            arch = st.selectbox("Architecture", archs, key="w_model_arch",
                                help="The architecture the weights belong to (type to search); "
                                     "an Ultralytics YOLO's is its model YAML, ultralytics:<yaml>.")
        elif library == "timm":
            archs = architectures("timm")
            _restore("w_model_timm_arch", archs, "convnext_tiny" if "convnext_tiny" in archs else archs[0])
            arch = st.selectbox("timm architecture", archs, key="w_model_timm_arch",
                                help=f"One of timm's {len(archs)} architectures (type to search), "
                                     "as passed to timm.create_model.")
        labels = None
        if library != "hf":
            labels = st.file_uploader("Class names (optional)", type=["txt", "json"], key="w_model_labels",
                                      help="One label per line, or a JSON list.", max_upload_size=5)
        task = st.selectbox("Task", TASK_CHOICES, key="w_model_task",
                            help="What the model's output means. Read from the model when left as "
                                 "it is: a map per pixel is segmentation, one output is a binary "
                                 "classifier, several are classes (softmax). Say multilabel for a "
                                 "sigmoid per label, regression for values, embedding for a backbone "
                                 "without its classifier (explained by its likeness to a reference "
                                 "photo; a classifier's own head is then left out).")
        submitted = st.form_submit_button("Load model", type="primary", width="stretch")
    st.caption(upload_caption(libs, untrusted))
    if submitted:
        if weights is None:
            show_input_error("Choose a checkpoint file first.")
            return
        try:
            from interpret.sources.files import file_kind

            data = weights.getvalue()
            lib = route(file_kind(data, weights.name), library, libs)
            chosen = check_upload_arch(lib, arch)
            with st.spinner("Loading the model..."):
                handle = compute.load_uploaded_model(
                    data, weights.name, chosen, labels.getvalue() if labels else None,
                    task=None if task == TASK_CHOICES[0] else task)
        except Exception as exc:  # noqa: BLE001 - InputError shown as is, others logged
            show_input_error(error_message(exc, "loading the checkpoint"))
            return
        ss["uploaded_model"] = ss["uploaded_model_base"] = handle
        ss["upload_token"] = ss.get("upload_token", 0) + 1
        ss.pop("upload_pre_error", None)
        ss["upload_loaded"] = {"file": weights.name, "library": lib, "arch": arch if lib == library else None,
                               "labels": labels.name if labels else None}
        state.set("model", "upload")
        view = state.view()
        view["target"] = view["contrast"] = view["layer"] = None
        st.success(f"Loaded **{words.text(handle.name)}**.")


# ----------------------------------------------------------------------------------
# The preprocessing of an uploaded model, editable


def _numbers(raw: str, what: str) -> Tuple[float, float, float]:
    parts = [p for p in raw.replace(",", " ").split() if p]
    try:
        vals = tuple(float(p) for p in parts)
    except ValueError:
        raise interpret.InputError(f"The {what} must be three numbers (red, green, blue), e.g. "
                                   f"0.485, 0.456, 0.406; got '{raw}'.") from None
    if len(vals) != 3:
        raise interpret.InputError(f"The {what} must be three numbers (red, green, blue); got {len(vals)}.")
    return vals  # type: ignore[return-value]


def edited_preprocessing(resize: int, crop, mean: str, std: str, interpolation: str):
    """The :class:`interpret.Preprocessing` a person set in the form: the photo's
    shorter side resized to ``resize``, then its centre ``crop`` x ``crop`` (resize 0:
    the whole photo resized to ``crop`` x ``crop``, nothing cut off); checked: three
    means in [0, 1], three positive standard deviations, sizes within the server's
    ``max_input_pixels``."""
    from interpret.preprocessing import Preprocessing

    m, s = _numbers(mean, "mean"), _numbers(std, "standard deviation")
    if not all(0.0 <= v <= 1.0 for v in m):
        raise interpret.InputError("Each mean is a pixel value between 0 and 1 (ImageNet's: 0.485, 0.456, 0.406).")
    if not all(v > 0 for v in s):
        raise interpret.InputError("Each standard deviation must be more than 0 (ImageNet's: 0.229, 0.224, 0.225).")
    c = (int(crop), int(crop)) if isinstance(crop, (int, float)) else (int(crop[0]), int(crop[1]))
    if min(c) < 8:
        raise interpret.InputError("The crop (the model's input side) must be at least 8 pixels.")
    if int(resize) and int(resize) < min(c):
        raise interpret.InputError(f"The resize ({int(resize)}) is smaller than the crop ({min(c)}): the "
                                   "shorter side is resized first, then the centre is cropped.")
    crop_arg = c[0] if c[0] == c[1] else c
    pre = (Preprocessing(int(resize), crop_arg, m, s, interpolation) if int(resize)
           else Preprocessing(c, None, m, s, interpolation))
    pre.check_declared()
    return pre


def _apply_preprocessing(values: dict) -> None:
    """Give the uploaded model the edited preprocessing (a new handle on the same
    module: its fingerprint, and so every cached figure's key, includes the
    preprocessing); the note that the preprocessing was assumed goes."""
    ss = st.session_state
    base = ss.get("uploaded_model_base") or ss.get("uploaded_model")
    ss.pop("upload_pre_error", None)
    try:
        pre = edited_preprocessing(**values)
    except interpret.InputError as exc:
        ss["upload_pre_error"] = str(exc)
        return
    notes = tuple(n for n in base.notes if "assumed" not in n)
    ss["uploaded_model"] = base if pre == base.preprocessing else base.with_info(preprocessing=pre, notes=notes)


def _form_sizes(pre) -> Tuple[int, int]:
    """(resize, crop) as the form shows them: an exact resize and no crop is resize 0."""
    if pre.crop is None:
        return 0, int(min(pre.input_size))
    resize = 0 if pre.resize is None else int(pre.resize if isinstance(pre.resize, int) else min(pre.resize))
    return resize, int(min(pre.input_size))


def preprocessing_editor(handle) -> None:
    """The Preprocessing panel of an uploaded model: its resize, crop, mean and std
    (ONNX graphs carry none, so the loader's are a guess the person can correct)."""
    ss = st.session_state
    pre = handle.preprocessing
    r0, c0 = _form_sizes(pre)
    k = ss.get("upload_token", 0)  # a new upload starts from its own values
    modes = ["bilinear", "bicubic", "nearest", "lanczos"]
    with st.form("upload_preprocessing", border=False):
        st.caption("Set them if the model was trained with other values (ONNX files carry none).")
        c1, c2 = st.columns(2)
        resize = c1.number_input("Resize (shorter side)", 0, 4096, r0, step=8, key=f"w_pre_resize_{k}",
                                 help="The photo's shorter side becomes this many pixels, then its centre "
                                      "is cropped. 0: the whole photo is resized to the crop's size.")
        h, w = pre.input_size
        if h == w:
            crop = c2.number_input("Crop (input side)", 8, 4096, c0, step=8, key=f"w_pre_crop_{k}",
                                   help="The side of the square the model sees, in pixels.")
        else:  # a graph with a fixed, non-square input: that size is kept
            c2.caption(f"Input: {h}×{w} pixels (fixed by the model).")
            crop = (h, w)
        mean = st.text_input("Mean (R, G, B)", ", ".join(f"{v:g}" for v in pre.mean), key=f"w_pre_mean_{k}")
        std = st.text_input("Std (R, G, B)", ", ".join(f"{v:g}" for v in pre.std), key=f"w_pre_std_{k}")
        interp = st.selectbox("Interpolation", modes, index=modes.index(pre.interpolation),
                              key=f"w_pre_interp_{k}")
        if st.form_submit_button("Apply preprocessing", width="stretch"):
            _apply_preprocessing({"resize": resize, "crop": crop, "mean": mean, "std": std,
                                  "interpolation": interp})
            st.rerun()
    err = ss.get("upload_pre_error")
    if err:
        show_input_error(err)


def accepted_sources_markdown(settings) -> str:
    """Markdown for the Home page: which models this server accepts, from its settings
    (uploads on or off, untrusted formats, the model folder) and the libraries
    installed (a missing one: the pip command that adds it)."""
    missing = {lib for lib in _PACKAGES if not library_available(lib)}

    def needs(lib: str) -> str:
        return (f" *(not installed on this server: `{install_command(lib)}`, then restart it)*"
                if lib in missing else "")

    lines = ["**Models this server accepts**", "",
             "- the bundled **EfficientNet-Lite0** (ImageNet), always;",
             "- any **torchvision** classifier by name (pretrained where its weights are in "
             "this server's torch cache, random weights otherwise);"]
    if getattr(settings, "model_folder", None):
        lines.append("- the **team models** the operator put in the model folder (including "
                     "models built by the team's own code);")
    if not getattr(settings, "allow_uploads", True):
        lines.append("- uploads are **switched off** on this server.")
        return "\n".join(lines)
    mb = getattr(settings, "max_model_mb", None)
    size = f" up to {mb} MB" if mb else ""
    lines += [
        f"- **uploads**{size}, which stay in your session:",
        "  - a **state dict** or **safetensors** file of a torchvision architecture or the "
        "bundled model;",
        "  - an **Ultralytics YOLO** detector's state dict or safetensors file, with its model YAML "
        "chosen as the architecture (`ultralytics:yolov8n.yaml`, ...)" + (
            "" if importlib.util.find_spec("ultralytics") is not None else
            " *(not installed on this server: `pip install ultralytics`, then restart it)*") + ";",
        "  - a **timm** state dict of any of timm's architectures (class count read from the "
        "file, preprocessing from timm's metadata)" + needs("timm") + ";",
        "  - a zipped **Hugging Face** folder (`config.json` + `model.safetensors`, labels from "
        "`id2label`)" + needs("hf") + ";",
        "  - an **ONNX** graph (a `.onnx` file, or a zip of it and its `.onnx.data` file), "
        "converted to PyTorch so that every gradient method works; set its preprocessing "
        "under *Preprocessing* in the sidebar (ONNX files carry none)" + needs("onnx") + ".",
    ]
    if getattr(settings, "allow_untrusted", False):
        lines.append("- **also formats that run code when loaded** (pickled modules, TorchScript, "
                     "`.pt2`, Hugging Face folders with their own code or `pytorch_model.bin`): "
                     "the operator allowed them; load only files you trust.")
    else:
        lines.append("- files that would run code when loaded (pickled modules, TorchScript, "
                     "Hugging Face remote code or `pytorch_model.bin`) are **refused**.")
    return "\n".join(lines)

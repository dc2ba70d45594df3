"""The sidebar's "Upload a checkpoint" form: which library the model comes from, the
file, its architecture (searchable lists of torchvision's and timm's), its labels; and
the sentence the Home page shows about which sources this server accepts.

Only architectures from these lists reach :func:`interpret.load_model`
(:func:`check_upload_arch`): a visitor can never name code to import.
"""

from __future__ import annotations

import importlib.util
from typing import Dict, List, Optional

import streamlit as st

import interpret

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
#: the Python package each library needs on the server
_PACKAGES = {"timm": ("timm",), "hf": ("transformers",), "onnx": ("onnx", "onnx2torch")}


def library_available(library: str) -> bool:
    """Whether the packages a library's models need are installed on this server."""
    return all(importlib.util.find_spec(p) is not None for p in _PACKAGES.get(library, ()))


def _architectures(library: str) -> List[str]:
    if library == "torchvision":
        return [state.DEFAULT_MODEL] + interpret.torchvision_classifiers()
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
    return [a for a in architectures("torchvision") if a != state.DEFAULT_MODEL]


def check_upload_arch(library: str, arch: Optional[str]) -> Optional[str]:
    """The ``arch=`` to load an upload with: a name from the offered lists only
    (torchvision's, the bundled model's, or ``timm:<name>``), None for formats that
    carry their architecture (Hugging Face folders, ONNX graphs).  Anything else, a
    ``package.module:function`` factory string say, is refused before any loading."""
    if library in ("hf", "onnx"):
        return None
    if library not in LIBRARIES or arch not in _architectures(library):
        raise interpret.InputError(
            f"'{arch}' is not one of the architectures this form offers for "
            f"{LIBRARIES.get(library, library)}.")
    return f"timm:{arch}" if library == "timm" else arch


def _file_types(library: str, untrusted: bool) -> List[str]:
    if library == "hf":
        return ["zip"]
    if library == "onnx":
        return ["onnx", "zip"]  # a zip: the .onnx file and its .data file
    return SAFE_MODEL_TYPES + (UNTRUSTED_MODEL_TYPES if untrusted and library == "torchvision" else [])


_FILE_HELP = {
    "torchvision": "A state dict saved with torch.save(model.state_dict(), 'm.pth'), or a "
                   ".safetensors file.",
    "timm": "A timm state dict (torch.save(model.state_dict(), 'm.pth') or safetensors); "
            "the class count is read from the file.",
    "hf": "A zip of the folder model.save_pretrained(folder) writes: config.json, "
          "model.safetensors and, if you have it, preprocessor_config.json.",
    "onnx": "An .onnx file; it is converted to PyTorch (onnx2torch) so that every gradient "
            "method works on it. torch.onnx.export writes the weights to a separate "
            "model.onnx.data file by default: upload a .zip of both files, or export with "
            "external_data=False.",
}


def upload_model_form() -> None:
    settings = compute.server_settings()
    untrusted = settings.allow_untrusted
    libs = [lib for lib in LIBRARIES if library_available(lib)]
    st.session_state.setdefault("w_model_library", libs[0])
    if st.session_state["w_model_library"] not in libs:
        st.session_state["w_model_library"] = libs[0]
    library = st.selectbox("Library", libs, format_func=LIBRARIES.get, key="w_model_library",
                           help="Where the model comes from: its architecture is picked below "
                                "(torchvision, timm) or stored in the file (Hugging Face, ONNX).")
    with st.form("upload_model", border=False):
        weights = st.file_uploader(
            "Checkpoint", type=_file_types(library, untrusted), key="w_model_file",
            max_upload_size=settings.max_model_mb,
            help=_FILE_HELP[library] + (" Whole pickled models and TorchScript are also accepted "
                                        "on this server." if untrusted and library == "torchvision" else ""))
        arch = None
        if library == "torchvision":
            archs = architectures("torchvision")
            arch = st.selectbox("Architecture", archs,
                                index=archs.index("resnet50") if "resnet50" in archs else 0,
                                key="w_model_arch", help="The architecture the weights belong to "
                                                          "(type to search).")
        elif library == "timm":
            archs = architectures("timm")
            arch = st.selectbox("timm architecture", archs,
                                index=archs.index("convnext_tiny") if "convnext_tiny" in archs else 0,
                                key="w_model_timm_arch",
                                help=f"One of timm's {len(archs)} architectures (type to search), "
                                     "as passed to timm.create_model.")
        labels = None
        if library != "hf":
            labels = st.file_uploader("Class names (optional)", type=["txt", "json"], key="w_model_labels",
                                      help="One label per line, or a JSON list.", max_upload_size=5)
        submitted = st.form_submit_button("Load model", type="primary", width="stretch")
    if untrusted:
        st.caption(":material/warning: This server accepts formats that run code when loaded "
                   "(setting allow_untrusted): load only files you trust.")
    else:
        st.caption("Weights only (state dict, safetensors, ONNX): files that would run code "
                   "when loaded are refused.")
    if submitted:
        if weights is None:
            show_input_error("Choose a checkpoint file first.")
            return
        try:
            chosen = check_upload_arch(library, arch)
            with st.spinner("Loading the model..."):
                handle = compute.load_uploaded_model(
                    weights.getvalue(), weights.name, chosen, labels.getvalue() if labels else None)
        except Exception as exc:  # noqa: BLE001 - InputError shown as is, others logged
            show_input_error(error_message(exc, "loading the checkpoint"))
            return
        st.session_state["uploaded_model"] = handle
        state.set("model", "upload")
        view = state.view()
        view["target"] = view["contrast"] = view["layer"] = None
        st.success(f"Loaded **{handle.name}**.")


def accepted_sources_markdown(settings) -> str:
    """Markdown for the Home page: which models this server accepts, from its settings
    (uploads on or off, untrusted formats, the model folder) and the libraries
    installed."""
    missing = {lib: ", ".join(_PACKAGES[lib]) for lib in _PACKAGES if not library_available(lib)}

    def needs(lib: str) -> str:
        return f" *(not installed on this server: {missing[lib]})*" if lib in missing else ""

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
        "  - a **timm** state dict of any of timm's architectures (class count read from the "
        "file, preprocessing from timm's metadata)" + needs("timm") + ";",
        "  - a zipped **Hugging Face** folder (`config.json` + `model.safetensors`, labels from "
        "`id2label`)" + needs("hf") + ";",
        "  - an **ONNX** graph (a `.onnx` file, or a zip of it and its `.onnx.data` file), "
        "converted to PyTorch so that every gradient method works" + needs("onnx") + ".",
    ]
    if getattr(settings, "allow_untrusted", False):
        lines.append("- **also formats that run code when loaded** (pickled modules, TorchScript, "
                     "`.pt2`, Hugging Face folders with their own code or `pytorch_model.bin`): "
                     "the operator allowed them; load only files you trust.")
    else:
        lines.append("- files that would run code when loaded (pickled modules, TorchScript, "
                     "Hugging Face remote code or `pytorch_model.bin`) are **refused**.")
    return "\n".join(lines)

"""The sidebar's "Upload a checkpoint" form: the file, its architecture, its labels."""

from __future__ import annotations

import streamlit as st

import interpret

from . import compute, state
from .errors import error_message, show_input_error

SAFE_MODEL_TYPES = ["pt", "pth", "bin", "safetensors"]
UNTRUSTED_MODEL_TYPES = ["pt2", "ts", "jit"]


@st.cache_data(show_spinner=False)
def classifiers() -> list:
    return interpret.torchvision_classifiers()


def upload_model_form() -> None:
    settings = compute.server_settings()
    untrusted = settings.allow_untrusted
    types = SAFE_MODEL_TYPES + (UNTRUSTED_MODEL_TYPES if untrusted else [])
    with st.form("upload_model", border=False):
        weights = st.file_uploader(
            "Checkpoint", type=types, key="w_model_file", max_upload_size=settings.max_model_mb,
            help="A state dict saved with torch.save(model.state_dict(), 'm.pth'), or a "
                 ".safetensors file." + (" Whole pickled models and TorchScript are also "
                                         "accepted on this server." if untrusted else ""))
        archs = [state.DEFAULT_MODEL] + classifiers()
        arch = st.selectbox("Architecture", archs, index=archs.index("resnet50") if "resnet50" in archs else 0,
                            key="w_model_arch", help="The architecture the weights belong to.")
        labels = st.file_uploader("Class names (optional)", type=["txt", "json"], key="w_model_labels",
                                  help="One label per line, or a JSON list.", max_upload_size=5)
        submitted = st.form_submit_button("Load model", type="primary", width="stretch")
    if untrusted:
        st.caption(":material/warning: This server accepts formats that run code when loaded "
                   "(setting allow_untrusted): load only files you trust.")
    else:
        st.caption("Weights only (state dict or safetensors): files that would run code when "
                   "loaded are refused.")
    if submitted:
        if weights is None:
            show_input_error("Choose a checkpoint file first.")
            return
        try:
            with st.spinner("Loading the checkpoint..."):
                handle = compute.load_uploaded_model(
                    weights.getvalue(), weights.name, arch, labels.getvalue() if labels else None)
        except Exception as exc:  # noqa: BLE001 - InputError shown as is, others logged
            show_input_error(error_message(exc, "loading the checkpoint"))
            return
        st.session_state["uploaded_model"] = handle
        state.set("model", "upload")
        view = state.view()
        view["target"] = view["contrast"] = view["layer"] = None
        st.success(f"Loaded **{handle.name}**.")



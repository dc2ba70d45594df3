"""A small page that sets itself up with ``ui.setup`` and draws the Trust panel, the
comparison, the region picker and the report buttons of :mod:`ui.trust` (what the
Attributions page will call), for AppTest and the browser test.

Query parameters (tests only): ``methods`` (comma-separated, default
gradcam,layercam), ``steps``, ``seeds``, ``sanity_layers``, ``auto_seconds``
(the automatic-run budget: tests set it so that they do not depend on the machine's speed).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

import interpret  # noqa: E402
import ui  # noqa: E402
from ui import compute, trust  # noqa: E402


def _int(name: str, default):
    raw = st.query_params.get(name)
    try:
        return int(raw) if raw not in (None, "") else default
    except ValueError:
        return default


def main() -> None:
    # read before ui.setup, which rewrites the address to the view's own parameters
    if "trust_test_settings" not in st.session_state:
        st.session_state["trust_test_settings"] = (
            {"steps": _int("steps", 20), "seeds": _int("seeds", 3),
             "sanity_layers": _int("sanity_layers", None),
             "auto_seconds": _int("auto_seconds", trust.AUTO_SECONDS)},
            [m for m in (st.query_params.get("methods") or "gradcam,layercam").split(",") if m])
    settings, names = st.session_state["trust_test_settings"]
    ctx = ui.setup("Trust", "🔍", "The Trust panel of ui/trust.py on its own.")
    if ctx is None:
        return
    layer = interpret.default_layer(ctx.handle)
    explanations = {}
    for name in names:
        spec = interpret.get_method(name)
        with ui.guard(f"computing {spec.label}"):
            explanations[spec.label] = compute.explain(
                ctx.handle, ctx.image, name, layer if spec.needs_layer else None, ctx.target, None,
                spec.defaults())
    if not explanations:
        return
    first_label, first = next(iter(explanations.items()))
    left, right = st.columns([3, 2])
    with left:
        st.image(interpret.overlay(ctx.image.image, first.heatmap, ctx.handle), caption=first_label)
        with ui.guard("the region picker"):
            trust.region_picker(ctx)
    with right:
        with ui.guard("the Trust panel"):
            trust.trust_panel(ctx, interpret.get_method(first.method), first, settings)
    with ui.guard("the comparison"):
        trust.comparison_trust(ctx, explanations, settings)
    with ui.guard("the report"):
        trust.report_downloads(ctx, explanations, settings)
    ui.finish()


with ui.guard("this page"):
    main()

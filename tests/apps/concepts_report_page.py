"""A small page for AppTest: the Concepts page's computation of the top concepts
(``ui.concepts.top_concepts``, on a button) and what the Attributions page's report
download would be given (``ui.trust._report_kwargs``), written out as text."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

import interpret  # noqa: E402
import ui  # noqa: E402
from ui import compute, trust  # noqa: E402
from ui import concepts as cx  # noqa: E402


def main() -> None:
    ctx = ui.setup("Concepts report", "🧩", "The concepts a report is given.")
    if ctx is None:
        return
    layer = interpret.default_layer(ctx.handle)
    if st.button("Concepts", key="t_concepts"):
        cx.top_concepts(ctx.handle, ctx.image, layer, ctx.target, 3, "epsilon_plus_flat")
    e = compute.explain(ctx.handle, ctx.image, "gradcam", layer, ctx.target, None,
                        interpret.get_method("gradcam").defaults())
    kwargs = trust._report_kwargs(ctx, [e], trust._settings(None))
    cs = kwargs["concepts"]
    st.text(json.dumps({"target": ctx.target, "plain": kwargs["plain"],
                        "concepts": None if cs is None else [[c.channel, c.relevance] for c in cs]}))


with ui.guard("this page"):
    main()

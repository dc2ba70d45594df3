"""Dataset: a whole labelled image set: what the model confuses, where it looks for each
class, and which classes it recognises for the wrong reasons."""

from __future__ import annotations

import io
from typing import Dict, List, Optional, Sequence

import numpy as np
import streamlit as st
from PIL import Image

import interpret
import ui
from interpret import words
from interpret.dataset.store import Store
from interpret.figures import dataset as dfig
from ui import compute
from ui import dataset as ds

NOBAR = {"displayModeBar": False}
TARGETS = {"label": "its true class", "prediction": "the model's prediction"}


# ----------------------------------------------------------------------------------
# Clicks (callbacks run before the page: they only note what was clicked)


def _points(key: str) -> list:
    ev = st.session_state.get(key)
    try:
        return list(ev["selection"]["points"])
    except (TypeError, KeyError):
        return []


def _on_cell() -> None:
    pts = _points("ds_confusion")
    if pts and pts[0].get("customdata"):
        t, p = pts[0]["customdata"][:2]
        st.session_state["ds_cell"] = (int(t), int(p))


def _on_image(key: str) -> None:
    pts = _points(key)
    if pts and pts[0].get("customdata"):
        st.session_state["ds_open"] = (st.session_state.get("ds_run"), str(pts[0]["customdata"][0]))


def _on_cancel() -> None:
    st.session_state["ds_cancelled"] = True


def _open_pending() -> None:
    """An image was clicked on the previous run: open it on the Attributions page."""
    pending = st.session_state.pop("ds_open", None)
    if not pending or not pending[0]:
        return
    with ui.guard("opening the image"):
        ds.open_in_attributions(ds.open_run(pending[0]), pending[1])


# ----------------------------------------------------------------------------------
# Starting an analysis


def _run_job(ctx: ui.PageContext, job: ds.Job) -> None:
    ss = st.session_state
    ss["ds_active"] = job
    ss.pop("ds_cancelled", None)
    ss.pop("ds_cell", None)
    left, right = st.columns([5, 1], vertical_alignment="center")
    # in a placeholder: the button goes when the analysis ends (finished, stopped or failed)
    cancel = right.empty()
    cancel.button("Cancel", key="ds_cancel_btn", icon=":material/stop_circle:", on_click=_on_cancel,
                  help="Stop the analysis. The images finished so far are kept; continue later.")
    with left:
        bar = st.progress(0.0, text=f"Analysing {job.label}: starting...")
    try:
        with ui.guard("the analysis"):
            ds.run(ctx.handle, job, bar)
            ss.pop("ds_active", None)
    finally:
        cancel.empty()
        bar.empty()
    if Store(job.out).exists():
        ss["ds_run"] = job.out


def start_section(ctx: ui.PageContext) -> None:
    ss = st.session_state
    options = ds.sources()
    ss.setdefault("w_ds_source", "sample")
    if ss["w_ds_source"] not in options:
        ss["w_ds_source"] = "sample"
    counts = {"stored": len(ds.stored_runs())}
    kind = st.segmented_control(
        "Start from", options, key="w_ds_source", required=True,
        format_func=lambda k: ds.SOURCES[k] + (f" ({counts[k]})" if k in counts else ""),
        help="A small labelled set shipped with the app, the server's image folder (one sub-folder per "
             "class, named after the model's labels), a zip of such folders, or a run stored on this "
             "server by you or a teammate.")
    if kind == "stored":
        stored_section()
        return
    upload = None
    if kind == "upload":
        from ui.access import mode as access_mode

        st.caption(ds.sharing_note(ds.runs_are_kept(), access_mode()))
        zip_label, zip_help = ds.zip_layout(ctx.handle.task, interpret.dataset.MAX_UPLOAD_IMAGES)
        f = st.file_uploader(zip_label, type=["zip"], key="w_ds_zip",
                             max_upload_size=min(ds.MAX_ZIP_MB, compute_max_mb()), help=zip_help)
        if f is None:
            st.info("Upload a zip to analyse it.", icon=":material/upload:")
            return
        upload = (f.name, f.getvalue())
    c1, c2, c3 = st.columns([3, 2, 2], vertical_alignment="bottom")
    with c1:
        methods = st.multiselect("Maps", ds.cam_methods(), default=["gradcam"], key="w_ds_methods",
                                 format_func=ds.method_label, max_selections=3,
                                 help="Gradient CAMs: all computed in one batched pass per batch of images. "
                                      "The first one is used for the summaries and flags.") or ["gradcam"]
    with c2:
        target = st.segmented_control("Explain", list(TARGETS), format_func=TARGETS.get, default="label",
                                      key="w_ds_target", required=True,
                                      help="The class each map explains: the image's true class (where the "
                                           "model finds evidence for it) or what the model predicted.") or "label"
    with c3:
        trust = st.toggle("Faithfulness figures", value=False, key="w_ds_trust",
                          help="Deletion and insertion curves of every map against random maps (the "
                               "'least faithful maps' list). Slow: about 150 forwards of the model per "
                               "image (20 points on each curve, 3 random maps), batched across images.")
    cmap, skip, undecided = {}, False, []
    with ui.guard("reading the set's class names"):
        names = ds.class_names(ctx.handle, ds.plan(ctx.handle, kind, methods, target, trust, upload))
        cmap, skip, undecided = class_names_control(names, ctx.handle.labels)
    if undecided:
        st.warning(ds.unmapped_message(undecided), icon=":material/label_off:")
    if st.button("Analyse", type="primary", key="ds_start_btn", icon=":material/play_arrow:"):
        if undecided:
            st.error(ds.unmapped_message(undecided), icon=":material/error:")
        else:
            with ui.guard("preparing the analysis"):
                job = ds.plan(ctx.handle, kind, methods, target, trust, upload, class_map=cmap,
                              skip_unmatched=skip)
                ds.check_source(ctx.handle, job)  # anything else wrong with the set: said now
                _run_job(ctx, job)
    if not ds.runs_are_kept():
        st.caption("This server keeps dataset runs only while it runs (its operator can set "
                   "`dataset_runs` to keep and share them).")


def _name_key(name: str) -> str:
    import hashlib

    return "w_ds_map_" + hashlib.blake2b(name.encode(), digest_size=6).hexdigest()


#: at most this many class names get a picker each (a set with more: use a CSV of labels)
MAX_PICKERS = 60


def class_names_control(names, labels) -> tuple:
    """The "Class names" control: the set's class names (folder names, or a CSV's
    labels) and the model label each is read as.  A name that matches no label gets a
    picker (a label, or leave its images out); "Change the matched names too" gives
    every name one.  Returns (class map {name: label}, whether names are left out,
    the names still without a label)."""
    ss = st.session_state
    unmatched = [c for c in names if c.index is None]
    matched = [c for c in names if c.index is not None]
    title = f"Class names → the model's labels ({len(matched)} of {len(names)} match)"
    cmap, skip, undecided = {}, False, []
    with st.expander(title, expanded=bool(unmatched), icon=":material/label:"):
        st.caption("Each class folder (or CSV label) of the set is read as a label of the model: the same "
                   "name, ignoring case and the difference between spaces, _ and -. Choose the label of a "
                   "name that matches none, or leave its images out.")
        every = st.toggle("Change the matched names too", key="w_ds_map_all", disabled=not matched,
                          help="Read a folder as another label than the one its name matches.")
        shown = (unmatched + (matched if every else []))[:MAX_PICKERS]
        for c in shown:
            key = _name_key(c.name)
            if c.index is None:
                options = [ds.CHOOSE, ds.LEAVE_OUT] + list(labels)
                default = ds.CHOOSE
            else:
                options = [ds.LEAVE_OUT] + list(labels)
                default = labels[c.index]
            if ss.get(key) not in options:
                ss[key] = default
            pick = st.selectbox(words.text(c.name), options, key=key,
                                help="The model's label these images are (type to search).")
            if pick == ds.CHOOSE:
                undecided.append(c)
            elif pick == ds.LEAVE_OUT:
                skip = True
            elif c.index is None or pick != labels[c.index]:
                cmap[c.name] = pick
        undecided += unmatched[len([c for c in shown if c.index is None]):]
        if matched and not every:
            st.caption("Matched: " + ", ".join(
                f"{words.text(c.name)} → {words.text(labels[c.index])}" for c in matched[:30])
                + (f" and {len(matched) - 30} more" if len(matched) > 30 else "") + ".")
    return cmap, skip, undecided


def compute_max_mb() -> int:
    return int(compute.server_settings().max_model_mb)


def stored_section() -> None:
    runs = ds.stored_runs()
    if not runs:
        st.info("No runs are stored on this server yet.", icon=":material/inventory_2:")
        return
    rows = [{"run": r.name, "by": r.created_by or "-", "when": ds.when(r.created_at), "model": r.model,
             "images": f"{r.done} of {r.total}", "status": r.status,
             "accuracy": None if np.isnan(r.accuracy) else round(100 * r.accuracy, 1)} for r in runs]
    st.dataframe(rows, hide_index=True, width="stretch",
                 column_config={"accuracy": st.column_config.NumberColumn("accuracy (%)")})
    labels = {r.path: f"{r.name} · {r.created_by or 'someone'} · {ds.when(r.created_at)}" for r in runs}
    pick = st.selectbox("Run", list(labels), format_func=labels.get, key="w_ds_stored")
    if st.button("Open", key="ds_open_stored", type="primary", icon=":material/folder_open:"):
        st.session_state["ds_run"] = pick
        st.session_state.pop("ds_cell", None)


# ----------------------------------------------------------------------------------
# Results


def _thumbs(r, paths: Sequence[str]) -> List[Image.Image]:
    out = []
    for b in r.thumbnails(paths):
        out.append(Image.open(io.BytesIO(b)).convert("RGB") if b else Image.new("RGB", (64, 64), (200, 200, 200)))
    return out


def gallery(r, paths: Sequence[str], key: str, caption: str, box=None, given_box=None,
            extra: Optional[Dict[str, str]] = None, label: Optional[str] = None) -> None:
    paths = list(paths)[: ds.GALLERY]
    if not paths:
        st.info("No images here.", icon=":material/image_not_supported:")
        return
    df = r.table().set_index("path")
    titles, hover = [], []
    for p in paths:
        row = df.loc[p]
        mark = "✓" if row["correct"] else "✗"
        # file and class names are text in Plotly's HTML-like labels
        titles.append(f"{mark} {words.plotly_text(ds_short(p))}")
        hover.append(f"<b>{words.plotly_text(p)}</b><br>true {words.plotly_text(row['label'])}, "
                     f"predicted {words.plotly_text(row['prediction'])} "
                     f"({row['probability']:.0%})" + (f"<br>{extra[p]}" if extra and p in extra else "")
                     + "<br>click: open on Attributions")
    maps = [r.map_of(p, label=label) for p in paths]  # label: a multi-label run's map of that label
    kind = "cam" if r.methods[0] in interpret.dataset.BATCHED_CAMS else "maps"
    fig = dfig.map_gallery_figure(_thumbs(r, paths), maps, titles, paths, hover=hover, box=box,
                                  given_box=given_box, cols=6, kind=kind)
    st.plotly_chart(fig, key=key, on_select=lambda: _on_image(key), selection_mode="points", config=NOBAR)
    st.caption(caption + " Click an image to open it on the Attributions page.")


def ds_short(path: str, n: int = 16) -> str:
    base = path.rsplit("/", 1)[-1]
    return base if len(base) <= n else base[: n - 1] + "…"


def confusion_tab(r) -> None:
    labels = r.labels
    rows = [labels.index(c) for c in r.classes()]
    cols = [i for i in r.confusion_classes()]
    cols = rows + [c for c in cols if c not in rows]
    sel = st.session_state.get("ds_cell")
    fig = dfig.confusion_figure(r.confusion, labels, rows, cols, selected=sel)
    st.plotly_chart(fig, key="ds_confusion", on_select=_on_cell, selection_mode="points", config=NOBAR)
    st.caption("Rows: the true class; columns: the prediction; the number is the count of images, the "
               "colour the share of the row. Click a cell to see its images with their maps.")
    if sel is None:
        return
    t, p = sel
    df = r.table()
    cell = df[(df["label_index"] == t) & (df["prediction_index"] == p)]
    st.markdown(f"##### True *{words.text(labels[t])}*, predicted *{words.text(labels[p])}*: {len(cell)} image(s)")
    gallery(r, cell["path"].tolist(), "ds_gal_cell",
            f"The map of each image ({ds.method_label(r.methods[0])}, for "
            f"{'its true class' if r.settings.target == 'label' else 'the prediction'}).")


def per_label_tab(r) -> None:
    """A multi-label or binary run: precision and recall per label at a stated threshold
    (in place of the confusion matrix)."""
    t = st.slider("Threshold", 0.05, 0.95, 0.5, 0.05, key="w_ds_threshold",
                  help="A label counts as predicted when its own (sigmoid) probability is at least this.")
    table = r.per_label(threshold=t)
    st.plotly_chart(dfig.per_label_figure(table), key="ds_per_label", config=NOBAR)
    st.caption(dfig.per_label_caption(t, len(r.table()), len(table), binary=r.task == "binary"))
    st.dataframe(table.drop(columns=["threshold"]), hide_index=True, width="stretch",
                 column_config={"precision": st.column_config.NumberColumn(format="percent"),
                                "recall": st.column_config.NumberColumn(format="percent")})


def class_maps_tab(r) -> None:
    means = r.mean_maps()
    summary = r.class_summary().set_index("label")
    if r.labelled:  # per explained label: how many maps
        titles = [f"{ds_short(l, 16)}<br>{int(summary.loc[l, 'images'])} map(s)" for l in means]
    else:
        titles = [f"{ds_short(l, 16)}<br>{summary.loc[l, 'accuracy']:.0%} right" for l in means]
    st.plotly_chart(dfig.class_maps_figure(means, titles), key="ds_class_maps", config=NOBAR)
    st.caption("Each class's maps averaged over its images (each map counted as a share of its mass): "
               "where the model finds the class's evidence, on the square of the model's view.")


def where_tab(r) -> None:
    grid = st.segmented_control("Grid", [2, 3, 4], default=3, key="w_ds_grid", required=True,
                                format_func=lambda g: f"{g} × {g}") or 3
    w = r.where(grid=grid)
    shares = [w.loc[i, [f"cell_{a}_{b}" for a in range(grid) for b in range(grid)]].to_numpy(float)
              .reshape(grid, grid) for i in range(len(w))]
    extras = [f"border {b:.0%} · centre {c:.0%}" for b, c in zip(w["border"], w["centre"])]
    st.plotly_chart(dfig.where_figure(shares, list(w["label"]), grid, extras), key="ds_where", config=NOBAR)
    st.caption(f"The share of each class's map mass in each cell of a {grid}×{grid} grid over the model's "
               f"view, averaged over the class's images; 'border' is the outer "
               f"{interpret.dataset.BORDER:.0%} band of the image, 'centre' its middle half.")


def _boxes(r) -> Dict[str, tuple]:
    """The object boxes given in this session for the run (starting from its own)."""
    return st.session_state.setdefault("ds_boxes", {}).setdefault(str(r.out), dict(r.boxes))


def _on_box_set(run: str) -> None:
    """"Set" was pressed: the box is kept before the page runs, so that the counters
    drawn above the tabs (boxes given, shortcut flags) count it in the same run."""
    ss = st.session_state
    lab = ss.get("w_ds_box_class")
    xs, ys = ss.get(f"w_ds_bx_{lab}"), ss.get(f"w_ds_by_{lab}")
    if lab is None or not xs or not ys:
        return
    if xs[1] > xs[0] and ys[1] > ys[0]:
        ss.setdefault("ds_boxes", {}).setdefault(run, {})[lab] = (xs[0], ys[0], xs[1], ys[1])


def _on_box_clear(run: str) -> None:
    st.session_state.setdefault("ds_boxes", {})[run] = {}


def _boxes_editor(r) -> Dict[str, tuple]:
    boxes = _boxes(r)
    with st.expander(f"Where the objects are (boxes given: {len(boxes)})", icon=":material/crop_free:"):
        st.caption("Give a class's box (fractions of the model's view) to flag the classes whose maps fall "
                   "outside their object.")
        c1, c2, c3, c4 = st.columns([2, 3, 3, 1], vertical_alignment="bottom")
        lab = c1.selectbox("Class", r.classes(), key="w_ds_box_class")
        b = boxes.get(lab, (0.2, 0.2, 0.8, 0.8))
        xs = c2.slider("Left to right", 0.0, 1.0, (float(b[0]), float(b[2])), 0.05, key=f"w_ds_bx_{lab}")
        ys = c3.slider("Top to bottom", 0.0, 1.0, (float(b[1]), float(b[3])), 0.05, key=f"w_ds_by_{lab}")
        c4.button("Set", key="ds_box_set", on_click=_on_box_set, args=(str(r.out),))
        if boxes:
            st.caption("; ".join(f"{words.text(k)}: ({v[0]:.2f}, {v[1]:.2f}, {v[2]:.2f}, {v[3]:.2f})" for k, v in boxes.items()))
            st.button("Clear the boxes", key="ds_box_clear", on_click=_on_box_clear, args=(str(r.out),))
    return dict(boxes)


def flags_tab(r, flags) -> None:
    """The shortcut flags (``flags``: found with the boxes given, as the counter above)."""
    boxes = _boxes_editor(r)
    if not flags:
        st.success("No class's maps concentrate on one small region in most of its images"
                   + (", or fall outside the boxes given." if boxes else "."), icon=":material/check_circle:")
        return
    for k, f in enumerate(flags):
        st.warning(words.text(f.sentence), icon=":material/flag:")  # quotes class names
        gallery(r, list(f.paths), f"ds_gal_flag_{k}",
                f"The images of '{words.text(f.label)}', most concentrated first; red: the region, "
                + ("dashed: the box given." if f.given_box else f"{words.region(f.box, False)}."),
                box=f.box, given_box=f.given_box, label=f.label if r.labelled else None)


def embedding_tab(r) -> None:
    try:
        coords, explained = r.embedding()
    except interpret.InputError as exc:
        st.info(words.text(exc), icon=":material/info:")
        return
    by = st.segmented_control("Colour by", ["class", "correct"], default="class", key="w_ds_colour",
                              required=True, format_func={"class": "true class", "correct": "right or wrong"}.get)
    df = r.table()
    if by == "correct":
        groups = ["correct" if c else "wrong" for c in df["correct"]]
        colors, legend = dfig.CORRECT_COLORS, "prediction"
    else:
        groups, colors, legend = list(df["label"]), None, "true class"
    hover = [f"<b>{words.plotly_text(p)}</b><br>true {words.plotly_text(l)}, predicted "
             f"{words.plotly_text(q)} ({pr:.0%})<br>click: open on Attributions"
             for p, l, q, pr in zip(df["path"], df["label"], df["prediction"], df["probability"])]
    fig = dfig.dataset_embedding_figure(coords, groups, list(df["path"]), hover, legend, colors)
    st.plotly_chart(fig, key="ds_embedding", on_select=lambda: _on_image("ds_embedding"),
                    selection_mode="points", config={"displayModeBar": False, "scrollZoom": True})
    st.caption(f"The classifier's input features of every image, projected by PCA (the two axes hold "
               f"{explained[0]:.0%} and {explained[1]:.0%} of the variance). Click a point to open its image.")


def sorted_tab(r) -> None:
    st.markdown("##### Least faithful maps")
    worst = r.least_faithful(ds.GALLERY)
    if len(worst):
        extra = {p: f"faithfulness margin {m:.2f} ({v})" for p, m, v in
                 zip(worst["path"], worst["faithfulness_margin"], worst["verdict"])}
        gallery(r, worst["path"].tolist(), "ds_gal_faith",
                "Maps whose top pixels change the score least compared with random pixels (deletion and "
                "insertion curves), least faithful first.", extra=extra)
    else:
        st.info("Run the analysis with 'Faithfulness figures' on to sort the maps by how faithful they are.",
                icon=":material/info:")
    st.markdown("##### Most mass outside the object")
    boxes = st.session_state.get("ds_boxes", {}).get(str(r.out), r.boxes)
    out = r.most_outside(boxes=boxes, n=ds.GALLERY) if boxes or r.table()["box"].notna().any() else None
    if out is not None and len(out):
        extra = {p: f"{o:.0%} of the map outside the box" for p, o in zip(out["path"], out["outside"])}
        gallery(r, out["path"].tolist(), "ds_gal_out", "Images whose map falls most outside their object's box.",
                extra=extra)
    else:
        st.info("Give the objects' boxes (Shortcut flags tab, or x0,y0,x1,y1 columns in a CSV) to sort the "
                "images by the map mass outside them.", icon=":material/info:")


def results_section(ctx: ui.PageContext, path: str) -> None:
    r = ds.open_run(path)
    st.divider()
    st.subheader(words.text(r.manifest.get("name") or r.out.name))
    by = r.manifest.get("created_by") or "someone on this server"
    st.caption(f"{words.text(r.model)} · {', '.join(ds.method_label(m) for m in r.methods)} at layer "
               f"{words.text(r.settings.layer)}, explaining {TARGETS[r.settings.target]} · run by "
               f"{words.text(by)}, {ds.when(r.manifest.get('created_at', ''))}")
    if r.manifest["model"]["fingerprint"] != ctx.handle.fingerprint():
        st.warning(f"This run was made with **{words.text(r.model)}**, not with the model chosen in the sidebar; "
                   "an image opened on the Attributions page is explained by the sidebar's model.",
                   icon=":material/warning:")
    a, b, c, d = st.columns(4)
    a.metric("Images", f"{len(r.table())}", help=f"{r.done} of {r.total} stored")
    a_acc = r.accuracy
    b.metric("Exact match" if r.labelled else "Accuracy", "-" if np.isnan(a_acc) else f"{a_acc:.1%}",
             help="Images whose predicted labels (probability at least 0.5) are exactly their true labels."
             if r.labelled else None)
    flags = r.find_flags(boxes=_boxes(r))  # with the boxes given in this session, as the tab
    c.metric("Shortcut flags", len(flags))
    d.metric("Skipped files", len(r.skipped))
    if not r.complete:
        st.info(f"This run holds {r.done} of {r.total} images ({r.status}). Continue it to compute the rest; "
                "nothing stored is computed again.", icon=":material/pause_circle:")
        if r.status != "running" and r.manifest["model"]["fingerprint"] == ctx.handle.fingerprint():
            if st.button("Continue", key="ds_continue", icon=":material/play_arrow:"):
                job = st.session_state.get("ds_active")
                if job is None or job.out != str(r.out):
                    src = r.manifest["source"]
                    job = ds.Job(src["root"], r.manifest.get("name") or "the set", str(r.out), r.methods,
                                 r.settings.target, r.settings.trust, upload=src["kind"] == "zip",
                                 class_map=tuple((n, l) for n, l in r.manifest.get("classes", [])),
                                 skip_unmatched=True)  # the classes the run read, as it read them
                _run_job(ctx, job)
                if "ds_active" not in st.session_state:  # finished: the counters above
                    st.rerun()                           # count what was just computed
                r = ds.open_run(path)
    if ctx.present and not r.labelled:
        ui.plain(f"The model got **{a_acc:.0%}** of these {len(r.table())} images right. Click a square of "
                 "the table to see those images and where the model looked in each.")
    tabs = st.tabs(["Per label" if r.labelled else "Confusion", "Per-label maps" if r.labelled else
                    "Per-class maps", "Where it looks", "Shortcut flags", "Embedding",
                    "Sorted images", f"Skipped ({len(r.skipped)})"])
    if r.labelled:
        with tabs[0], ui.guard("the precision and recall per label"):
            per_label_tab(r)
    else:
        with tabs[0], ui.guard("the confusion matrix"):
            confusion_tab(r)
    with tabs[1], ui.guard("the per-class maps"):
        class_maps_tab(r)
    with tabs[2], ui.guard("the 'where it looks' grid"):
        where_tab(r)
    with tabs[3], ui.guard("the shortcut flags"):
        flags_tab(r, flags)
    if not r.labelled:
        with tabs[3], ui.guard("the concepts of each class"):
            from ui import concepts as cx

            cx.dataset_section(ctx, r, flags)
    with tabs[4], ui.guard("the embedding"):
        embedding_tab(r)
    with tabs[5], ui.guard("the sorted images"):
        sorted_tab(r)
    with tabs[6]:
        if r.skipped:
            st.dataframe([{"file": n, "why": w} for n, w in r.skipped], hide_index=True, width="stretch")
        else:
            st.caption("Every file of the set was analysed.")


def main() -> None:
    ctx = ui.setup("Dataset", "🗂️", "A whole labelled image set: what the model confuses, where it looks "
                   "for each class, and which classes it recognises for the wrong reasons.")
    if ctx is None:
        return
    _open_pending()
    ss = st.session_state
    with st.container(border=True), ui.guard("the start panel"):
        start_section(ctx)
    if ss.get("ds_cancelled"):
        ss.pop("ds_cancelled")
        st.info("Stopped. The images finished so far are stored; Continue below computes the rest.",
                icon=":material/stop_circle:")
    path = ss.get("ds_run")
    if path and Store(path).exists():
        with ui.guard("the results"):
            results_section(ctx, path)
    ui.finish()


main()

"""A trust report to hand to stakeholders: one self-contained HTML file (every image an
inline data URI, every chart inline SVG, no script and no link it needs to load, so it
opens offline), and the same as a PDF printed by a real Chromium.

>>> interpret.report(model, image, [gradcam, saliency], "report.html")
>>> interpret.report(model, image, [gradcam], "report.pdf")      # via Chromium

Contents: the model, the photo as the model sees it, the prediction, each map over the
photo with its faithfulness verdict, sentence, numbers and curves (and its sanity check
or "not run", and the pointing game and relevance mass for a marked region), the
agreement between the maps, the settings, the package versions and a timestamp.

The HTML is one string (no script, no external link); the PDF is printed by a real
Chromium with ``--print-to-pdf`` (the browser the tests already use), so it looks
exactly like the page a person opens.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html as _html
import io
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
from PIL import Image

from . import words
from .errors import InputError, Progress

__all__ = ["report", "report_html", "html_to_pdf", "find_chromium", "package_versions",
           "CHROMIUM_FLAGS"]


# ----------------------------------------------------------------------------------
# PDF

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-extensions",
                  "--disable-sync", "--no-default-browser-check", "--no-pdf-header-footer")


def find_chromium() -> Optional[str]:
    """The Chromium to print with: ``$INTERPRET_CHROMIUM``, else ``chromium``,
    ``chromium-browser``, ``google-chrome`` on the PATH, else ``/usr/bin/chromium``;
    None when there is none."""
    env = os.environ.get("INTERPRET_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def html_to_pdf(html: str, path=None, timeout_s: float = 120.0) -> bytes:
    """Print ``html`` to PDF with Chromium; writes ``path`` when given and returns the
    PDF's bytes.  InputError when no Chromium is installed or printing fails."""
    exe = find_chromium()
    if exe is None:
        raise InputError("A PDF report needs Chromium (install Debian's chromium, or set "
                         "INTERPRET_CHROMIUM to a Chrome/Chromium executable); the HTML report "
                         "needs nothing.")
    with tempfile.TemporaryDirectory(prefix="interpret-report-") as tmp:
        src = Path(tmp) / "report.html"
        out = Path(tmp) / "report.pdf"
        src.write_text(html, encoding="utf-8")
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={Path(tmp) / 'profile'}",
               f"--print-to-pdf={out}", src.as_uri()]
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise InputError(f"Chromium did not print the report within {timeout_s:.0f} s.") from None
        except OSError as exc:
            raise InputError(f"Chromium could not be started ({exc}).") from None
        if not out.exists() or out.stat().st_size == 0:
            tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise InputError(f"Chromium did not write the PDF (exit code {proc.returncode}: {tail[0]}).")
        data = out.read_bytes()
    if path is not None:
        Path(path).write_bytes(data)
    return data


# ----------------------------------------------------------------------------------
# HTML

_PACKAGES = ("interpret-dashboard", "torch", "torchvision", "numpy", "pillow", "captum",
             "streamlit", "plotly")

_BADGE = {"faithful": ("#1b7f3b", "#e3f5e8"), "weak": ("#8a5a00", "#fff3d6"),
          "no better than random": ("#a4262c", "#fde7e9"), "passed": ("#1b7f3b", "#e3f5e8"),
          "failed": ("#a4262c", "#fde7e9"), "not run": ("#555555", "#eeeeee")}

_CSS = """
body{font-family:"Source Sans Pro","Segoe UI",Helvetica,Arial,sans-serif;color:#1f2328;margin:0;background:#fff}
main{max-width:980px;margin:0 auto;padding:28px 32px 48px}
h1{font-size:26px;margin:0 0 4px} h2{font-size:20px;margin:28px 0 10px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:17px;margin:0 0 6px} .muted{color:#666;font-size:13px}
.row{display:flex;gap:22px;align-items:flex-start;flex-wrap:wrap}
.card{border:1px solid #ddd;border-radius:8px;padding:14px 16px;margin:14px 0;page-break-inside:avoid;break-inside:avoid}
img.photo{width:224px;height:224px;border-radius:6px;image-rendering:auto}
.badge{display:inline-block;padding:3px 10px;border-radius:999px;font-weight:600;font-size:13px;margin:0 6px 6px 0}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f6f8fa} td.l,th.l{text-align:left}
.sentence{font-size:15px;line-height:1.45;background:#f3f2fd;border-left:4px solid #4F46E5;padding:8px 12px;border-radius:4px;margin:8px 0}
svg text{font-family:inherit}
.legend{font-size:11px;color:#555;margin-top:4px} .legend .bar{height:10px;border-radius:3px}
.legend .ends{display:flex;justify-content:space-between}
@media print{main{padding:0 8px} .card{margin:8px 0}}
"""


def package_versions() -> Dict[str, str]:
    """Python, the platform and the installed versions of the packages that shape a
    result."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _e(text) -> str:
    return _html.escape(str(text), quote=True)


def _data_uri(image: Image.Image, fmt: str = "JPEG") -> str:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    mime = "jpeg" if fmt == "JPEG" else "png"
    return f"data:image/{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _badge(word: str, prefix: str = "") -> str:
    fg, bg = _BADGE.get(word, ("#333", "#eee"))
    return f'<span class="badge" style="color:{fg};background:{bg}">{_e(prefix + word)}</span>'


def _axis_top(peak: float) -> float:
    """The top of a probability axis: the next round value at or above ``peak`` (steps
    of 10%, or of 1% / 0.1% for small probabilities), never above 100%."""
    peak = min(1.0, max(float(peak), 1e-4)) if peak == peak else 1.0
    for step in (0.1, 0.01, 0.001, 0.0001):
        if peak > step or step == 0.0001:
            return min(1.0, float(np.ceil(peak / step - 1e-9) * step))
    return 1.0


def _tick(v: float) -> str:
    """A tick of a probability axis: "50%", "2.5%", "0.05%" (no more digits than it needs)."""
    pct = 100.0 * v
    for d in range(0, 4):
        if abs(round(pct, d) - pct) < 1e-9 * max(1.0, pct):
            return f"{pct:.{d}f}%"
    return f"{pct:.3g}%"


def _what(e, handle) -> str:
    """What a map explains, in words (plain text, escaped where it is written): the
    target's own description (:meth:`interpret.targets.Target.describe`), or for an
    explanation without one its class label."""
    t = getattr(e, "explained", None)
    if t is not None and getattr(t, "kind", "class") != "class":  # a label, an output, a segment
        try:
            return t.describe(handle.labels)
        except (AttributeError, TypeError, NotImplementedError, IndexError):
            pass
    return e.target_label + (f" rather than {e.contrast_label}" if e.contrast_label else "")


def _answer_rows(preds, task: str) -> Tuple[Tuple[str, str], str]:
    """The "model says" table in the task's terms: each present class's share of the
    pixels (segmentation), each output's value (regression), else each class's or
    label's probability.  Labels escaped."""
    if hasattr(preds, "classes") and not isinstance(preds, list):  # a Segmentation
        return (("class", "share of the pixels"),
                "".join(f'<tr><td class="l">{_e(c.label)}</td><td>{c.share:.1%}</td></tr>' for c in preds.classes))
    preds = list(preds) if isinstance(preds, (list, tuple)) else []
    if preds and all(p.probability is None for p in preds):
        return (("output", "value"),
                "".join(f'<tr><td class="l">{_e(p.label)}</td><td>{p.value:.4g}</td></tr>' for p in preds))
    name = {"multilabel": "label", "binary": "positive class", "image-text": "prompt"}.get(task, "class")
    return ((name, "probability"),
            "".join(f'<tr><td class="l">{_e(p.label)}</td><td>{p.probability:.1%}</td></tr>'
                    for p in preds if p.probability is not None))


def _legend(colormap: str, width: int = 224) -> str:
    """The colour scale of the maps: a gradient bar from "least" to "most important"
    (a CSS gradient: no image to load)."""
    from .overlay import colormap_lut

    lut = colormap_lut(colormap)
    stops = ", ".join(f"rgb({r},{g},{b}) {i / 8:.0%}" for i, (r, g, b) in
                      enumerate(lut[np.linspace(0, 255, 9).round().astype(int)]))
    return (f'<div class="legend" style="width:{width}px"><div class="bar" style="background:'
            f'linear-gradient(to right, {stops})"></div><div class="ends"><span>least important'
            f'</span><span>most important</span></div></div>')


def _svg_curves(f, width: int = 420, height: int = 220) -> str:
    """The deletion / insertion curves (and the random maps', dotted) as inline SVG."""
    left, right, top, bottom = 46, 10, 10, 34
    pw, ph = width - left - right, height - top - bottom
    curves = [np.asarray(c, float) for c in (f.deletion, f.random_deletion, f.insertion, f.random_insertion)]
    value = getattr(f, "unit", "probability") == "value"
    if value:  # a regressor's value: the axis spans the curves' own range, ticks in its unit
        ymin = min(float(np.nanmin(c)) for c in curves)
        ymax = max(float(np.nanmax(c)) for c in curves)
        if not ymax > ymin:
            ymin, ymax = ymin - 0.5, ymax + 0.5
    else:
        ymin, ymax = 0.0, _axis_top(max(float(np.nanmax(c)) for c in curves))
    fr = np.asarray(f.fractions, float)

    def pts(c):
        return " ".join(f"{left + x * pw:.1f},{top + ph - ((y - ymin) / (ymax - ymin)) * ph:.1f}"
                        for x, y in zip(fr, c))

    styles = [("#E45756", "", "deletion"), ("#E45756", "4,3", "deletion, random maps"),
              ("#4C78A8", "", "insertion"), ("#4C78A8", "4,3", "insertion, random maps")]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 36}" '
             f'viewBox="0 0 {width} {height + 36}" role="img" aria-label="deletion and insertion curves">',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>']
    for t in (0.0, 0.5, 1.0):
        y = top + ph - t * ph
        tick = f"{ymin + t * (ymax - ymin):.3g}" if value else _tick(t * ymax)
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{tick}</text>')
        x = left + t * pw
        parts.append(f'<text x="{x:.1f}" y="{top + ph + 13}" font-size="10" text-anchor="middle">{t * 100:.0f}%</text>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{top + ph + 27}" font-size="11" text-anchor="middle">'
                 f'% of the photo hidden (deletion) / shown (insertion)</text>')
    for c, (color, dash, _) in zip(curves, styles):
        d = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="{1.4 if dash else 2.2}"{d} points="{pts(c)}"/>')
    lx = left
    for i, (color, dash, name) in enumerate(styles):
        x = lx + (i % 2) * 190
        y = height + 10 + (i // 2) * 14
        d = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<line x1="{x}" y1="{y}" x2="{x + 22}" y2="{y}" stroke="{color}" stroke-width="2"{d}/>'
                     f'<text x="{x + 27}" y="{y + 4}" font-size="10">{_e(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _matrix_table(agr) -> str:
    labels = list(agr.labels)
    head = "".join(f"<th>{_e(l)}</th>" for l in labels)
    rows = []
    for i, l in enumerate(labels):
        cells = []
        for j in range(len(labels)):
            v = float(agr.matrix[i, j])
            if v != v:
                cells.append("<td>n/a</td>")
                continue
            # red for agreement, blue for opposite orders
            a = min(1.0, abs(v))
            col = f"rgba(228,87,86,{a * 0.6:.2f})" if v >= 0 else f"rgba(76,120,168,{a * 0.6:.2f})"
            cells.append(f'<td style="background:{col}">{v:.2f}</td>')
        rows.append(f'<tr><th class="l">{_e(l)}</th>{"".join(cells)}</tr>')
    return f'<table><tr><th class="l">rank correlation</th>{head}</tr>{"".join(rows)}</table>'


def _unique(labels: List[str]) -> List[str]:
    """The labels, numbered where one repeats (a dict needs distinct keys)."""
    out, seen = [], {}
    for l in labels:
        seen[l] = seen.get(l, 0) + 1
        out.append(l if seen[l] == 1 else f"{l} ({seen[l]})")
    return out


def _as_list(explanations) -> List:
    from .explain import Explanation

    if isinstance(explanations, Explanation):
        return [explanations]
    items = list(explanations.values()) if isinstance(explanations, Mapping) else list(explanations)
    if not items:
        raise InputError("A report needs at least one explanation.")
    for e in items:
        if not isinstance(e, Explanation):
            raise InputError(f"A report takes explanations from interpret.explain, not {type(e).__name__}.")
    return items


def report_html(model, image, explanations, *, faithfulness: Optional[Mapping] = None,
                sanity: Optional[Mapping] = None, box: Optional[Tuple[float, float, float, float]] = None,
                steps: int = 20, baseline: str = "blur", colormap: str = "jet", opacity: float = 0.5,
                title: Optional[str] = None, top_k: int = 5,
                progress: Optional[Progress] = None, plain: bool = False, concepts=None) -> str:
    """The report as one HTML string (see :func:`report`); ``plain``: the presentation
    variant (:func:`_plain_report`); ``concepts``: an :func:`interpret.concepts` result
    for this photo, drawn as the section "What the decision rests on"."""
    from . import __version__
    from .explain import as_handle, predict
    from .methods.registry import get_method
    from .overlay import overlay
    from .trust import agreement as _agreement
    from .trust import faithfulness as _faithfulness
    from .trust import localization as _localization
    from .trust import measures as _measures

    handle = as_handle(model)
    if isinstance(image, (str, Path, bytes)):
        from .images import load_image

        image = load_image(image)
    if not isinstance(image, Image.Image):
        raise InputError("A report needs the photo itself (a PIL image, a path or bytes), to show it.")
    items = _as_list(explanations)
    labels = [get_method(e.method).label for e in items]
    faith = dict(faithfulness or {})
    sanity = dict(sanity or {})
    for n, e in enumerate(items):
        key = e.method
        if key not in faith:
            faith[key] = _faithfulness(handle, image, e, steps=steps, baseline=baseline)
        if progress is not None:
            progress(n + 1, len(items))
    view = handle.preprocessing.model_view(image.convert("RGB"))
    preds = predict(handle, image, top_k=top_k)
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    h, w = handle.input_size
    if plain:
        return _plain_report(handle, image, view, items, labels, faith, sanity,
                             predict(handle, image, top_k=None), colormap, opacity,
                             title or f"What the model sees: {handle.name}", now, concepts=concepts)
    title = title or f"How far to trust these heatmaps: {handle.name}"

    out: List[str] = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                      '<meta name="viewport" content="width=device-width, initial-scale=1">',
                      f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
                      f"<h1>{_e(title)}</h1>",
                      f'<p class="muted">Made {now.isoformat()} with interpret-dashboard {_e(__version__)}. '
                      "Every figure is inside this file: it opens without the internet.</p>"]
    # the model and the photo
    out.append("<h2>Model and photo</h2><div class='row'>")
    out.append(f'<div><img class="photo" alt="the photo as the model sees it" src="{_data_uri(view)}">'
               f'<div class="muted">the photo as the model sees it ({w}x{h})</div></div>')
    d = handle.describe()
    rows = "".join(f'<tr><th class="l">{_e(k)}</th><td class="l">{_e(v)}</td></tr>' for k, v in (
        ("model", d["name"]), ("source", d["source"]), ("weights", d["weights"] or "-"),
        ("parameters", f"{d['parameters']:,}"), ("input", f"{w}x{h}"),
        ("classes", d["classes"]), ("preprocessing", d["preprocessing"])))
    head, pred_rows = _answer_rows(preds, handle.task)
    out.append(f"<div><table>{rows}</table></div>"
               f'<div><h3>The model says</h3><table><tr><th class="l">{head[0]}</th><th>{head[1]}</th></tr>'
               f"{pred_rows}</table></div></div>")
    # one card per map
    out.append("<h2>The maps, and how far to trust each</h2>")
    out.append('<p class="muted">Faithfulness: the photo\'s pixels are hidden (deletion) or shown '
               "(insertion) in the order the map ranks them, and the probability (for a regressor, the "
               "value) of what is explained is followed; "
               "the dotted curves do the same for random maps of the same coarseness. The verdict rests "
               "on insertion and on the gap between the curves, never on deletion alone.</p>")
    for e, label in zip(items, labels):
        f = faith[e.method]
        sc = sanity.get(e.method)
        ov = overlay(image, e.heatmap, handle, colormap=colormap, opacity=opacity)
        what = _what(e, handle)
        badges = _badge(f.verdict) + _badge(sc.status if sc is not None else "not run", "sanity check ")
        nums = (f'<table><tr><th class="l"></th><th>this map</th><th>random maps</th></tr>'
                f'<tr><td class="l">deletion area (lower is better)</td><td>{f.deletion_auc:.3f}</td>'
                f'<td>{f.random_deletion_auc:.3f} &plusmn; {f.random_deletion_auc_std:.3f}</td></tr>'
                f'<tr><td class="l">insertion area (higher is better)</td><td>{f.insertion_auc:.3f}</td>'
                f'<td>{f.random_insertion_auc:.3f} &plusmn; {f.random_insertion_auc_std:.3f}</td></tr>'
                f'<tr><td class="l">insertion &minus; deletion</td><td>{f.gap:.3f}</td><td>{f.random_gap:.3f}</td></tr>'
                "</table>")
        extra = ""
        if f.road is not None:
            extra += (f'<p class="muted">ROAD (Rong et al. 2022): most relevant removed first '
                      f"{f.road.morf_mean:.1%}, least relevant first {f.road.lerf_mean:.1%} "
                      f"(gap {f.road.gap:+.3f}).</p>")
        if sc is not None:
            extra += (f'<p>{_e(sc.sentence)} <span class="muted">(Spearman after the full cascade '
                      f"{sc.correlation:.2f}, SSIM {sc.final_ssim:.2f}; {len(sc.steps)} blocks randomised, "
                      f"seed {sc.seed})</span></p>")
        extra += _box_card(handle, image, e, baseline)
        if box is not None:
            loc = _localization(e.heatmap, box)
            extra += (f"<p>In the marked region: the map's hottest point is "
                      f"<b>{'inside' if loc.hit else 'outside'}</b> it (pointing game), and "
                      f"<b>{loc.mass:.0%}</b> of the map's total lies in it (relevance mass; the region "
                      f"is {loc.area:.0%} of the photo).</p>")
        params = ", ".join(f"{k}={v}" for k, v in e.params.items()) or "none"
        out.append(
            f'<div class="card" data-method="{_e(e.method)}"><h3>{_e(label)}: {_e(what)}</h3>'
            f"<div>{badges}</div><div class='row'>"
            f'<div><img class="photo" alt="{_e(label)} over the photo" src="{_data_uri(ov)}">'
            f"{_legend(colormap)}</div>"
            f"<div>{_svg_curves(f)}</div></div>"
            f'<div class="sentence">{words.html(f.sentence_for())}</div>{nums}{extra}'
            f'<p class="muted">layer {_e(e.layer or "-")} &middot; parameters {_e(params)} &middot; '
            f"{f.steps} steps, {_e(f.baseline)} baseline, {f.seeds} random maps on a "
            f"{f.grid[0]}x{f.grid[1]} grid</p></div>")
    if len(items) >= 2:
        targets = {(e.target, e.contrast) for e in items}
        if len(targets) == 1:
            # the methods' names, not their ids
            agr = _agreement(dict(zip(_unique(labels), items)))
            out.append("<h2>Do the methods agree?</h2>")
            out.append("<p class='muted'>Spearman's rank correlation between the maps (1: the same "
                       "order of pixels, 0: unrelated).</p>" + _matrix_table(agr))
    if concepts is not None:
        out.append(_concepts_section(handle, image, concepts))
    # settings, measures, versions
    out.append("<h2>Settings and measures</h2><table>")
    out.append(f'<tr><th class="l">colours</th><td class="l">{_e(colormap)}, opacity {opacity}</td></tr>')
    if box is not None:
        out.append(f'<tr><th class="l">marked region</th><td class="l">{_e(tuple(round(v, 1) for v in box))} '
                   "(x0, y0, x1, y1 in model-input pixels)</td></tr>")
    for m in _measures():
        if m.name == "box_context" and handle.task != "detection":
            continue  # a detector's measure
        out.append(f'<tr><th class="l">{_e(m.label)}</th><td class="l">{_e(m.measures)} '
                   f'<span class="muted">{_e(m.citation)}, {_e(m.paper)}</span></td></tr>')
    out.append("</table><h2>Versions</h2><table>")
    for k, v in package_versions().items():
        out.append(f'<tr><th class="l">{_e(k)}</th><td class="l">{_e(v)}</td></tr>')
    out.append(f'</table><p class="muted">Generated {now.isoformat()}.</p></main></body></html>')
    return "".join(out)


def _box_card(handle, image, e, baseline: str) -> str:
    """For a map of one detection (issue 20): the pointing game and the map's mass in
    the detected box (no annotation needed), how much the detection relies on context
    outside its box (:func:`interpret.box_context`, three forwards, the deletion
    curve's reference) and, for "this box rather than that label", both scores; "" for
    any other map."""
    t = getattr(e, "explained", None)
    if t is None or getattr(t, "kind", None) != "box" or t.pixels is None:
        return ""
    from .trust import box_context, localization

    loc = localization(e.heatmap, t.pixels)
    out = f"<p>{words.html(words.box_localisation(loc.hit, loc.mass, loc.area))}</p>"
    c = box_context(handle, image, e, baseline=baseline)
    out += f"<p>{words.html(words.box_context(c.score, c.box_only, c.context_only, c.baseline))}</p>"
    if t.contrast is not None:
        out += "<p>" + words.html(words.box_contrast(
            handle.label(t.index), handle.label(t.contrast), t.box_score or 0.0, t.contrast_score or 0.0,
            bool(t.contrast_found), t.detector_threshold, t.iou_threshold)) + "</p>"
    return out


def _concepts_section(handle, image, cs) -> str:
    """The concepts a decision rests on (Concept Relevance Propagation): the sentence
    for a stakeholder, each concept's heatmap over the photo with its share; a concept
    by the name the team gave it, else by its channel (names escaped)."""
    from .concepts import concept_label, concept_sentence
    from .overlay import overlay

    shares = [(concept_label(c.channel, c.name, c.where), c.relevance) for c in cs]
    parts = [f"<h2>What the decision rests on</h2><p class='sentence'>"
             f"{_e(concept_sentence(cs.target_label, shares))}</p>",
             f"<p class='muted'>The {len(cs)} channels of layer {_e(cs.layer)} with the most relevance for "
             f"{_e(cs.target_label)} ({'AttnLRP; Achtibat et al. 2024' if cs.composite == 'attnlrp' else f'LRP {_e(cs.composite)}; Achtibat et al. 2023'}). A share is the channel's "
             "relevance over the sum of the absolute relevances of all the layer's channels; each picture "
             "shows where that concept's own relevance lies on the photo.</p><div class='row'>"]
    for c in cs:
        pos = np.clip(np.asarray(c.heatmap, dtype=np.float32), 0, None)
        top = float(np.percentile(pos[pos > 0], 99.5)) if pos.any() else 0.0
        ov = overlay(image, np.clip(pos / top, 0, 1) if top > 0 else pos, handle, colormap="inferno", opacity=0.7)
        parts.append(f'<div><img class="photo" alt="channel {c.channel} over the photo" src="{_data_uri(ov)}">'
                     f'<div class="muted">{_e(concept_label(c.channel, c.name, c.where))}: {c.relevance:.0%} of the '
                     "layer's relevance</div></div>")
    parts.append("</div>")
    return "".join(parts)


def _concept_overlay(handle, image, heatmap):
    """One concept's positive relevance over the photo (scaled to its 99.5th percentile)."""
    from .overlay import overlay

    pos = np.clip(np.asarray(heatmap, dtype=np.float32), 0, None)
    top = float(np.percentile(pos[pos > 0], 99.5)) if pos.any() else 0.0
    return overlay(image, np.clip(pos / top, 0, 1) if top > 0 else pos, handle, colormap="inferno", opacity=0.7)


def _plain_concepts_section(handle, image, cs) -> str:
    """The concepts section in plain words (presentation mode): the stakeholder sentence
    and each concept's picture with its caption, both from
    :mod:`interpret.concepts.words`; the label and the names the team gave the concepts
    escaped (:func:`interpret.words.text`)."""
    from .concepts import concept_caption, concept_label, concept_sentence

    label = words.text(cs.target_label)
    names = [words.text(concept_label(c.channel, c.name, c.where)) for c in cs]
    parts = [f"<h2>What the decision rests on</h2><p class='sentence'>"
             f"{words.html(concept_sentence(f'*{label}*', [(n, c.relevance) for n, c in zip(names, cs)]))}</p>",
             "<p>The model builds its answer from patterns it learnt (concepts); each picture shows where one "
             "of them lies on the photo.</p><div class='row'>"]
    for n, c in zip(names, cs):
        parts.append(f'<div style="max-width:260px"><img class="photo" alt="channel {c.channel} over the photo" '
                     f'src="{_data_uri(_concept_overlay(handle, image, c.heatmap))}">'
                     f"<p>{words.html(concept_caption(n, c.relevance, f'*{label}*'))}</p></div>")
    parts.append("</div>")
    return "".join(parts)


def _plain_report(handle, image, view, items, labels, faith, sanity, preds, colormap: str,
                  opacity: float, title: str, now, concepts=None) -> str:
    """The presentation-mode report: the same sentences as the page in presentation mode
    (interpret.words), each map with its colour legend and its verdict in words, and no
    technical number (no curve, area, correlation or setting)."""
    from . import __version__
    from .overlay import overlay

    probs = {p.index: p.probability for p in preds} if isinstance(preds, list) else {}
    top = preds[0] if isinstance(preds, list) and preds else None
    hot = {"jet": "red", "turbo": "red", "inferno": "bright yellow", "viridis": "yellow",
           "magma": "pale yellow", "plasma": "yellow", "hot": "white-hot", "greys": "white",
           "rdbu": "red"}.get(colormap, "brightest")
    out: List[str] = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                      '<meta name="viewport" content="width=device-width, initial-scale=1">',
                      f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
                      f"<h1>{_e(title)}</h1>", "<div class='row'>",
                      f'<div><img class="photo" alt="the photo as the model sees it" src="{_data_uri(view)}"></div>']
    if top is not None and top.probability is not None:
        others = [(p.label, p.probability) for p in preds[1:3] if p.probability is not None]
        out.append(f'<div><p class="sentence">{words.html(words.prediction_plain(top.label, top.probability, others))}</p></div>')
    out.append("</div>")
    for e, label in zip(items, labels):
        f = faith[e.method]
        sc = sanity.get(e.method)
        ov = overlay(image, e.heatmap, handle, colormap=colormap, opacity=opacity)
        spec_contrastive = e.method not in ("eigencam", "activation", "attention_rollout")
        try:
            from .methods.registry import get_method

            spec_contrastive = get_method(e.method).contrastive
        except InputError:
            pass
        caption = ""
        t = getattr(e, "explained", None)
        if t is not None and getattr(t, "kind", "class") != "class":  # a label, an output, a segment
            caption = words.target_caption(t.sentence(handle.labels), hot, spec_contrastive)
        elif top is not None and top.probability is not None:
            caption = words.map_caption(
                e.target_label, hot, top_label=top.label, probability=probs.get(e.target, float("nan")),
                top_probability=top.probability, predicted=top.index == e.target,
                contrast_label=e.contrast_label,
                contrast_probability=probs.get(e.contrast) if e.contrast is not None else None,
                class_specific=spec_contrastive, verdict=f.verdict)
        badges = _badge(f.verdict) + (_badge(sc.status, "sanity check ") if sc is not None else "")
        out.append(
            f'<div class="card" data-method="{_e(e.method)}"><h3>{_e(label)}</h3><div>{badges}</div>'
            f"<div class='row'><div><img class=\"photo\" alt=\"{_e(label)} over the photo\" "
            f'src="{_data_uri(ov)}">{_legend(colormap)}</div>'
            f'<div style="max-width:560px"><p class="sentence">{words.html(caption)}</p>'
            f"<p>{words.html(words.trust_plain(f.verdict, hot))}</p>"
            + (f"<p>{words.html(words.sanity_plain(sc.passed))}</p>" if sc is not None else "")
            + "</div></div></div>")
    if len(items) >= 2 and len({(e.target, e.contrast) for e in items}) == 1:
        from .trust import agreement as _agreement

        agr = _agreement(dict(zip(_unique(labels), items)))
        m = np.asarray(agr.matrix, float)
        pairs = m[np.triu_indices(len(m), k=1)]
        pairs = pairs[~np.isnan(pairs)]
        if pairs.size:
            out.append(f"<h2>Do the methods agree?</h2><p>{words.html(words.agreement_plain(float(pairs.mean()), len(items)))}</p>")
    if concepts is not None:
        out.append(_plain_concepts_section(handle, image, concepts))
    out.append(f'<p class="muted">Made {now.isoformat()} with interpret-dashboard {_e(__version__)}; '
               "every figure is inside this file.</p></main></body></html>")
    return "".join(out)


def report(model, image, explanations, path, *, pdf: Optional[bool] = None, **kwargs) -> Path:
    """Write a trust report for ``explanations`` (a list of
    :class:`~interpret.Explanation` of ``image``, or one) to ``path``: HTML, or PDF
    when ``path`` ends in ``.pdf`` (or ``pdf=True``: both, the PDF next to the HTML).

    Faithfulness is computed for each map unless given (``faithfulness={method:
    Faithfulness}``); ``sanity={method: SanityCheck}`` adds sanity checks (else "not
    run"); ``box=(x0, y0, x1, y1)`` adds the pointing game and relevance mass for that
    region; ``steps``, ``baseline``, ``colormap``, ``opacity``, ``title`` as named;
    ``plain=True``: the presentation-mode variant, in the plain words of
    :mod:`interpret.words` (the verdicts in words, no curve, area or correlation).
    Returns the path written (the PDF's when one was asked for)."""
    path = Path(path)
    text = report_html(model, image, explanations, **kwargs)
    if path.suffix.lower() == ".pdf":
        html_to_pdf(text, path)
        return path
    path.write_text(text, encoding="utf-8")
    if pdf:
        out = path.with_suffix(".pdf")
        html_to_pdf(text, out)
        return out
    return path

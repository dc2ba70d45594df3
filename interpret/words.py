"""Every sentence a person reads, made from the numbers it rests on.

Small pure functions: numbers (and labels) in, one sentence out.  A sentence that could
be false for some inputs is a bug, so each function decides its words from the same
quantities, and by the same rule, as the thing it describes (the faithfulness verdict,
the prediction, the box), and tests/test_words.py checks them as tables of cases.

**The one escaping rule.**  Every function here takes visitor-supplied text (class
labels, photo titles, file names, model and layer names) *raw*, exactly as it came,
and returns **markup**: Markdown whose only formatting is ``**bold**`` and ``*italic*``
written by this module, in which every visitor-supplied part went through
:func:`text`.  The result is safe as it is in ``st.markdown`` (with or without
``unsafe_allow_html``), ``st.caption``, ``st.info`` / ``st.warning``, widget labels and
image captions, and, through :func:`html`, in an HTML page (the report).  Callers
never escape a result of this module again, and never put a visitor's text into
Markdown or HTML without :func:`text`.  Plain-text sentences of the backend's results
(``Faithfulness.sentence``, a shortcut flag's sentence, for the CLI and JSON) reach a
page through :func:`text` too.

Where Streamlit shows a string as plain text (``st.selectbox`` / ``st.multiselect``
options, ``st.metric`` values, Plotly figures use :func:`plotly_text`), the raw text is
right: entities would show as such.
"""

from __future__ import annotations

import math
import re
from typing import Optional, Sequence, Tuple

__all__ = ["text", "html", "plain", "plotly_text", "percent", "percents", "values", "segment_localization", "target_caption", "map_caption", "trust_sentence",
           "trust_plain", "trust_evidence", "sanity_plain", "region", "prediction_plain", "home_plain",
           "link_note", "agreement_plain", "REGION_WHOLE", "Evidence", "box_target", "box_contrast",
           "box_localisation", "box_context"]

# -- escaping ------------------------------------------------------------------------

# Every character that starts something in HTML (tags, entities), in Markdown (links,
# images, code, emphasis with *, tables, strikethrough, autolinks "a@b") or in
# Streamlit's Markdown ("$...$" LaTeX) becomes a numeric character reference, which
# HTML and CommonMark alike show as that character and never read as syntax.  A colon
# is escaped where it touches the next character (":material/x:" icons, ":red[...]"
# colours, "http://" and "mailto:" autolinks), a "#" where it would start a heading, and
# the dot of "www." (an autolink).  "_" stays: it only ever emphasises (no link, image
# or tag), never inside a word (CommonMark), so file names such as my_model.pth stay
# readable; quotes stay too: no visitor text is ever put inside an HTML attribute here.
_SPECIAL = {c: f"&#{ord(c)};" for c in "&<>\\`*[]|~$@"}
_WWW = re.compile(r"(w)(ww)\.", re.IGNORECASE)  # "www.x.com" would be an autolink
_COLON = re.compile(r":(?=\S)")


def text(value) -> str:
    """``value`` as text that HTML and Markdown show literally (see the module's rule):
    ``text("<img src=x>")`` is ``"&#60;img src=x&#62;"``."""
    s = str(value)
    s = re.sub(r"[\r\n\t\f\v]+", " ", s)   # a newline would start a new Markdown block
    s = "".join(_SPECIAL.get(c, c) for c in s)
    s = _COLON.sub("&#58;", s)
    s = re.sub(r"^(\s*)#", r"\1&#35;", s)
    return _WWW.sub(lambda m: m.group(1) + m.group(2) + "&#46;", s)


def html(markup: str) -> str:
    """A result of this module as HTML (for the report): ``**x**`` -> ``<b>x</b>``,
    ``*x*`` -> ``<i>x</i>``.  Every visitor-supplied ``*`` was escaped by :func:`text`,
    so the only asterisks left are this module's own."""
    out = re.sub(r"\*\*\*(.+?)\*\*\*", r"<b><i>\1</i></b>", markup)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    return re.sub(r"\*(.+?)\*", r"<i>\1</i>", out)


def plain(markup: str) -> str:
    """A result of this module as plain text (the CLI, JSON): the emphasis marks
    dropped and the escapes read back."""
    import html as _html

    return _html.unescape(markup.replace("**", "").replace("*", ""))


def plotly_text(value) -> str:
    """Visitor text for a Plotly figure (titles, tick labels, hover): Plotly reads a
    few HTML tags there (``<a href>``, ``<b>``, ``<br>``), so ``<``, ``>`` and ``&`` are
    escaped."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -- numbers -------------------------------------------------------------------------


def percent(p: float) -> str:
    """A probability for people, with enough digits to tell small ones apart:
    "41%", "1.4%", "0.12%", "0.0034%"; "0%" for zero, "100%" for one."""
    if p is None:
        return "?"
    p = float(p)
    if p != p:
        return "?"
    if p <= 0:
        return "0%"
    if p >= 1:
        return "100%"
    v = 100.0 * p
    if v >= 9.95:
        out = f"{v:.0f}%"
    elif v >= 0.995:
        out = f"{v:.1f}%"
    else:
        digits = max(2, 1 - int(math.floor(math.log10(v))))
        out = f"{v:.{digits}f}%"
    # never round to "100%" or "0%" something that is not
    return "99.9%" if out == "100%" else out


def percents(a: float, b: float, max_digits: int = 4) -> Tuple[str, str]:
    """``a`` and ``b`` as percentages, with as many decimals as it takes (up to
    ``max_digits``) for two different numbers not to read the same, and for the larger
    to read larger."""
    pa, pb = percent(a), percent(b)
    if a == b or (pa != pb and (a > b) == (_num(pa) > _num(pb))):
        return pa, pb
    for d in range(1, max_digits + 1):
        pa, pb = f"{100 * a:.{d}f}%", f"{100 * b:.{d}f}%"
        if pa != pb:
            break
    return pa, pb


def _num(s: str) -> float:
    try:
        return float(s.rstrip("%"))
    except ValueError:
        return float("nan")


def _points(v: float) -> str:
    """A difference of probabilities in percentage points, signed when negative."""
    return f"{100 * v:.1f}".rstrip("0").rstrip(".") if abs(v) < 0.095 else f"{100 * v:.0f}"


def _unit(points: str) -> str:
    return f"{points} point" + ("" if points in ("1", "-1") else "s")


# -- the sentence under a map ----------------------------------------------------------

FAITHFUL, WEAK, RANDOM = "faithful", "weak", "no better than random"


def map_caption(target_label: str, hot: str, *, top_label: str, probability: float,
                top_probability: float, predicted: bool, contrast_label: Optional[str] = None,
                contrast_probability: Optional[float] = None, class_specific: bool = True,
                verdict: Optional[str] = None) -> str:
    """The sentence under a heatmap.

    "What made the model say X" only when X is the model's prediction (``predicted``)
    and the trust check did not find the map no better than random.  For another class:
    the map shows what speaks *for* X, which the model gives ``probability``.  With a
    contrast class: "for X rather than Y".  A map that does not depend on the class
    (``class_specific=False``, e.g. Eigen-CAM) says so.  ``verdict``: the
    faithfulness verdict, or None when it was not checked."""
    x, hot_m = f"***{text(target_label)}***", f"**{text(hot)}**"
    if not class_specific:
        why = (f"not why it says {x}" if predicted
               else f"and so nothing about {x} in particular")
        return (f"The {hot_m} areas are where this layer of the network reacts most strongly. This "
                f"map does not depend on the class: it shows what the network looks at, {why}.")
    rather = (f" rather than *{text(contrast_label)}*" if contrast_label else "")
    if verdict == RANDOM:
        return (f"The {hot_m} areas are what this method marks as evidence for {x}{rather}, but "
                "the check found the map no better than random maps: it does not show what the "
                "model relies on.")
    if predicted:
        claim = f"The {hot_m} areas are what made the model say {x}{rather}"
        if verdict == FAITHFUL:
            return claim + "."
        if verdict == WEAK:
            return claim + ", according to this map; the check found it only partly faithful, so treat it with care."
        return claim + ", according to this map (how far to trust it is checked beside it)."
    given = f"which the model gives {percent(probability)}"
    says = f"it says *{text(top_label)}* ({percent(top_probability)})"
    if contrast_label:
        cp = "" if contrast_probability is None else f" and *{text(contrast_label)}* {percent(contrast_probability)}"
        said = "" if contrast_label == top_label else f"; {says}"
        return (f"The {hot_m} areas are what speaks for {x}{rather}. The model did not say "
                f"{x}: it gives it {percent(probability)}{cp}{said}.")
    tail = "" if verdict == FAITHFUL else (
        " The check found the map only partly faithful: treat it with care." if verdict == WEAK else "")
    return (f"The {hot_m} areas are what speaks for {x}, {given}: {says}.{tail}")


# -- the trust sentence ----------------------------------------------------------------

#: how far a piece of evidence goes (:func:`interpret.trust.faithfulness.evidence`)
COUNTS, SLIGHT, NIL = "counts", "slight", "nil"


class Evidence(tuple):
    """One piece of the faithfulness verdict: (name, the map's value, the random maps'
    value, level).  ``level``: "counts" (clearly better than random maps), "slight"
    (better, not by enough to count) or "nil" (no better than random maps reach by
    chance).  For "insertion" the values are the curves' areas, for "gap" the areas'
    differences (insertion - deletion), for "road" ROAD's LeRF and MoRF means."""

    __slots__ = ()

    def __new__(cls, name: str, value: float, random: float, level: str):
        return super().__new__(cls, (name, float(value), float(random), level))

    name = property(lambda self: self[0])
    value = property(lambda self: self[1])
    random = property(lambda self: self[2])
    level = property(lambda self: self[3])


_LEVEL = {COUNTS: "clearly more than random maps", SLIGHT: "more than random maps, but not by enough to count",
          NIL: "no more than a random map reaches by chance"}


def values(a: float, b: float, max_digits: int = 8) -> Tuple[str, str]:
    """Two values of a regressor's output (no unit of their own, never a percentage),
    with as many significant digits as it takes to tell them apart (3 at least):
    ``values(2.5, 2.4999)`` is ("2.5", "2.4999")."""
    for d in range(3, max_digits + 1):
        va, vb = f"{float(a):.{d}g}", f"{float(b):.{d}g}"
        if va != vb or float(a) == float(b):
            break
    return va, vb


def _quote(target_label: str, contrast_label: Optional[str], unit: str = "probability",
           sign: int = 1) -> str:
    if unit == "value" and contrast_label:  # a box rather than another label: a difference of scores
        return (f"the score of \u201c*{text(target_label)}*\u201d minus that of "
                f"\u201c*{text(contrast_label)}*\u201d")
    if unit == "value":
        return f"{'minus ' if sign < 0 else ''}the value of \u201c*{text(target_label)}*\u201d"
    if contrast_label:
        return f"the chance of \u201c*{text(target_label)}*\u201d over \u201c*{text(contrast_label)}*\u201d"
    return f"\u201c*{text(target_label)}*\u201d"


def trust_evidence(e: Evidence, target_label: str, contrast_label: Optional[str] = None,
                   unit: str = "probability", sign: int = 1) -> str:
    """One clause per piece of evidence, quoting its two numbers and its level.
    ``unit`` "value": a regressor's output (times ``sign``), quoted as numbers in its
    own unit, never as percentages or percentage points."""
    q = _quote(target_label, contrast_label, unit, sign)
    if unit == "value":
        a, b = values(e.value, e.random)
        if e.name == "insertion":
            return (f"Showing the photo back in the map's order, most important pixels first, gives "
                    f"{q} {a} on average along the way; random maps of the same coarseness give {b}: "
                    f"{_LEVEL[e.level]}.")
        if e.name == "gap":
            return (f"Showing first minus hiding first (the areas of the two curves, in the value's "
                    f"unit): {a} for the map, {b} for random maps: {_LEVEL[e.level]}.")
        if e.name == "road":
            return (f"With the hidden pixels filled in from their neighbours (ROAD), removing the "
                    f"least important pixels first keeps {q} {a} higher on average than removing "
                    f"the most important first; a random order keeps it no higher: {_LEVEL[e.level]}.")
        raise ValueError(f"unknown evidence {e.name!r}")
    if e.name == "insertion":
        a, b = percents(e.value, e.random)
        return (f"Showing the photo back in the map's order, most important pixels first, gives "
                f"{q} {a} on average along the way; random maps of the same coarseness give {b}: "
                f"{_LEVEL[e.level]}.")
    if e.name == "gap":
        a, b = _points(e.value), _points(e.random)
        if a == b and e.value != e.random:
            a, b = f"{100 * e.value:.2f}", f"{100 * e.random:.2f}"
        return (f"Showing first minus hiding first (the areas of the two curves): {_unit(a)} for "
                f"the map, {_unit(b)} for random maps: {_LEVEL[e.level]}.")
    if e.name == "road":
        a = _points(e.value)
        return (f"With the hidden pixels filled in from their neighbours (ROAD), removing the "
                f"least important pixels first keeps {_unit(a)} more of {q} than removing the "
                f"most important first; a random order keeps none more: {_LEVEL[e.level]}.")
    raise ValueError(f"unknown evidence {e.name!r}")


_CONCLUSION = {
    FAITHFUL: "Every measure is clearly better than random maps: the map is faithful to the model.",
    RANDOM: "No measure is more than a random map reaches by chance: the map is no better than random.",
}


def trust_sentence(verdict: str, evidence: Sequence[Evidence], target_label: str,
                   contrast_label: Optional[str] = None, *, unit: str = "probability",
                   sign: int = 1, target_sentence: Optional[str] = None) -> str:
    """The trust sentence: the quantities the verdict is computed from (the insertion
    area and the insertion - deletion gap against the random maps', and ROAD when it
    was run), each with how far it goes, then the verdict in words.  Never a number the
    verdict does not use.  ``unit`` "value" (a regressor): numbers in the value's own
    unit, no percentage.  ``target_sentence``: what is explained in words, as markup
    with its labels already escaped (:meth:`interpret.targets.Target.sentence`), said
    first ("Explained: the pixels the model calls *road*.")."""
    parts = [trust_evidence(e, target_label, contrast_label, unit, sign) for e in evidence]
    if target_sentence:
        parts.insert(0, f"Explained: {target_sentence}.")
    if verdict in _CONCLUSION:
        end = _CONCLUSION[verdict]
    else:
        good = [e for e in evidence if e.level == COUNTS]
        end = ("Only part of the evidence is clearly better than random maps: the map is weak, "
               "treat it with care." if good else
               "Nothing is clearly better than random maps, though not everything is at chance "
               "level: the map is weak, treat it with care.")
    return " ".join(parts + [end])


_PLAIN = {
    FAITHFUL: "Checked: showing the model the parts this map marks brings its answer back much "
              "faster than showing random parts. The map can be trusted.",
    WEAK: "Checked: the parts this map marks matter to the model only somewhat more than random "
          "parts. Treat the map with care.",
    RANDOM: "Checked: the parts this map marks matter to the model no more than random parts. "
            "Do not rely on this map.",
}


def trust_plain(verdict: Optional[str], hot: Optional[str] = None) -> str:
    """Presentation mode's trust sentence: the verdict in words, no number."""
    if verdict is None:
        return "How far to trust this map has not been checked yet."
    out = _PLAIN[verdict]
    if hot:
        out = out.replace("the parts this map marks", f"the **{text(hot)}** parts").replace(
            "showing the model the parts this map marks", f"showing the model the **{text(hot)}** parts")
    return out


def sanity_plain(passed: bool) -> str:
    """The sanity check in words, no number."""
    if passed:
        return ("Sanity check passed: with the model's learned weights replaced by random ones, "
                "the map changes, so it shows what the model learned.")
    return ("Sanity check failed: with the model's learned weights replaced by random ones, the "
            "map stays much the same, so it shows the photo more than what the model learned.")


def target_caption(sentence: str, hot: str, class_specific: bool = True) -> str:
    """The sentence under a map of a target that is not a plain class (a label, an
    output, a segment), for the report (the page's own is ``ui.tasks.map_caption``):
    ``sentence`` is the target's own, markup with its labels escaped
    (:meth:`interpret.targets.Target.sentence`)."""
    h = f"**{text(hot)}**"
    if not class_specific:
        return (f"The {h} areas are where this layer of the network reacts most strongly; this "
                f"map does not depend on what is explained ({sentence}).")
    return f"The {h} areas are what this method marks as driving the score explained: {sentence}."


def segment_localization(hit: bool, mass: float, area: float, target_sentence: str) -> str:
    """Where the map of a segment lies against the segment itself (no box to draw):
    the pointing game, the relevance mass on the segment and its complement, the share
    of the map on context outside the segment, against the segment's own share of the
    photo (what a uniform map would put on it).  ``target_sentence``: the segment in
    words, markup with its labels escaped (:meth:`interpret.targets.Target.sentence`)."""
    m, a = float(mass), float(area)
    inside, outside = percents(m, 1.0 - m)
    if m > a:
        how = "more than"
    elif m < a:
        how = "less than"
    else:
        how = "as much as"
    return (f"On the segment explained ({target_sentence}): the map's hottest point is "
            f"**{'inside' if hit else 'outside'}** it, and **{inside}** of the map lies on it, "
            f"{how} a uniform map would put there (the segment is {percent(a)} of the photo). "
            f"The other **{outside}** lies on context outside the segment: that is how much the "
            f"explanation says the model relies on what surrounds it.")


# -- a detector's box (issue 20) ---------------------------------------------------------

def box_target(name: str, box: Sequence[float], contrast_name: Optional[str] = None,
               contrast_found: Optional[bool] = None) -> str:
    """A box target in words (:meth:`interpret.detection.BoxTarget.sentence`): the
    detection of ``name`` in the box, "rather than ``contrast_name``" when it has a
    contrast, and, when the photo has no detection of that label in the box
    (``contrast_found`` False), that its score counts as 0.  The names come as the
    caller wants them (escaped for a page, raw for a terminal: the target's
    ``sentence`` / ``describe``); nothing here escapes them again."""
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    s = f"the detection of {name} in the box ({x0}, {y0})-({x1}, {y1})"
    if contrast_name is None:
        return s
    if contrast_found is False:
        return (s + f" rather than {contrast_name} (the model has no detection of {contrast_name} "
                "in this box, so its score counts as 0)")
    return s + f" rather than {contrast_name} in the same box"


def box_contrast(label: str, contrast_label: str, score: float, contrast_score: float, found: bool,
                 threshold: Optional[float] = None, iou_threshold: float = 0.5) -> str:
    """"This box rather than that label", in numbers: the box's score for ``label`` and
    for ``contrast_label`` in the same box (``found``: the detector keeps a detection
    of it there, matched by IoU above ``iou_threshold``), and what the map then
    explains.  When it keeps none, the sentence says that its score counts as 0 (and
    the detector's own score ``threshold`` under which it drops a detection, when
    known): never silently."""
    a, b = f"***{text(label)}***", f"***{text(contrast_label)}***"
    if not found:
        thr = f" with a score above its own threshold of {percent(threshold)}" if threshold is not None else ""
        return (f"The model keeps no detection of {b} in this box (none overlapping it by more than "
                f"IoU {iou_threshold:.2f}{thr}), so the score of {b} counts as 0 and the map explains "
                f"the score of {a} alone ({percent(score)}).")
    pa, pb = percents(score, contrast_score)
    d = float(score) - float(contrast_score)
    v = 100.0 * d
    if v == 0 or abs(v) >= 9.5:
        pts = f"{v:.0f}"
    elif abs(v) >= 0.95:
        pts = f"{v:.1f}".rstrip("0").rstrip(".")
    else:  # never "0 points" for a difference that is not 0
        pts = f"{v:.2g}"
    pts = _unit(pts)
    tail = "" if d >= 0 else f"; {b} scores higher here"
    return (f"In this box the model gives {a} {pa} and {b} {pb}: the map explains the difference, "
            f"{pts}{tail}.")


def box_localisation(hit: bool, mass: float, area: float) -> str:
    """Where a box's map lies, from the pointing game (``hit``: its strongest point is
    inside the box), the map's share inside the box (``mass``) and the box's share of
    what the model sees (``area``: a uniform map's mass)."""
    peak = "inside" if hit else "outside"
    times = f", {mass / area:.1f} times what a uniform map would put there" if area > 0 else ""
    return (f"The map's strongest point is {peak} the box; {mass:.0%} of the map lies inside the box, "
            f"which covers {area:.0%} of what the model sees{times}.")


#: a detection that loses at least this share of its score without its surroundings
#: "relies strongly" on them; at least :data:`CONTEXT_SOME`, "in part"; a change of less
#: than that either way is "hardly" (interpret.trust.context)
CONTEXT_STRONG = 0.5
CONTEXT_SOME = 0.1

_REMOVED = {"blur": "blurred", "mean": "replaced by the mean colour", "constant": "replaced by a flat colour"}


def box_context(score: float, box_only: float, context_only: float, baseline: str = "blur") -> str:
    """How much a detection relies on what lies outside its box
    (:func:`interpret.trust.box_context`): its score on the photo (``score``), with
    everything outside the box removed (``box_only``) and with the box itself removed
    (``context_only``), removed meaning replaced as the deletion curve replaces pixels
    (``baseline``).  A score of 0 is a detection that is gone, and is said so.  The
    level is the share of the score lost without the surroundings, ``(score -
    box_only) / score``: at least :data:`CONTEXT_STRONG` "relies strongly", at least
    :data:`CONTEXT_SOME` "in part", within that either way "hardly", a rise of more
    than that "holds it back"."""
    what = _REMOVED.get(baseline, "replaced")
    score, box_only, context_only = float(score), float(box_only), float(context_only)
    if not score > 0:
        return ("The detection has no score on the photo itself, so how much it relies on its "
                "surroundings cannot be measured.")
    ps, pb = percents(score, box_only)
    if box_only <= 0:
        head = (f"With everything outside the box {what}, the detection is gone (its score counts as 0, "
                f"against {ps} on the photo)")
    else:
        head = f"With everything outside the box {what}, the detection scores {pb}, against {ps} on the photo"
    lost = (score - box_only) / score
    if lost >= CONTEXT_STRONG:
        level = f": it loses {percent(lost)} of its score, so it **relies strongly** on context outside its box."
    elif lost >= CONTEXT_SOME:
        level = f": it loses {percent(lost)} of its score, so it **relies in part** on context outside its box."
    elif lost > -CONTEXT_SOME:
        level = (": its score changes by less than a tenth, so it **hardly relies** on context outside "
                 "its box.")
    else:
        level = (": its score rises without its surroundings, so the context outside its box **holds it back**.")
    if context_only <= 0:
        tail = f" With the box itself {what} and its surroundings kept, the detection is gone (counted as 0)."
    else:
        half = ": the surroundings alone keep at least half of its score" if context_only >= score / 2 else ""
        tail = (f" With the box itself {what} and its surroundings kept, it scores "
                f"{percents(context_only, score)[0]}{half}.")
    return head + level + tail


# -- regions -------------------------------------------------------------------------

#: a box at least this share of the photo is "almost the whole photo"
REGION_WHOLE = 0.75
#: ... at least this share, "most of the photo"
REGION_MOST = 0.45


def where(box: Tuple[float, float, float, float]) -> str:
    """Which third of the photo a box's centre falls in: "top-right corner", "left
    edge", "centre"."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    col = "left" if cx < 1 / 3 else ("right" if cx > 2 / 3 else "")
    row = "top" if cy < 1 / 3 else ("bottom" if cy > 2 / 3 else "")
    if row and col:
        return f"{row}-{col} corner"
    if row or col:
        return f"{row or col} edge"
    return "centre"


def region(box: Tuple[float, float, float, float], coordinates: bool = True) -> str:
    """Where a box (x0, y0, x1, y1 as fractions of the photo) sits, in words that are
    true of its size: "almost the whole photo" (at least 75% of it), "most of the photo,
    centred on the top edge" (45-75%), else "the top-right corner" (the third of the
    photo its centre falls in), each with its share of the photo and, with
    ``coordinates``, the box: "the centre (12% of the photo; box 0.30, 0.30, 0.70,
    0.60)".  Plain text (no visitor text in it)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    area = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    share = f"{area:.0%} of the photo"
    if coordinates:
        share += "; box " + ", ".join(f"{v:.2f}" for v in (x0, y0, x1, y1))
    if area >= REGION_WHOLE:
        return f"almost the whole photo ({share})"
    at = where((x0, y0, x1, y1))
    if area >= REGION_MOST:
        towards = "its middle" if at == "centre" else f"the {at}"
        return f"most of the photo, centred on {towards} ({share})"
    return f"the {at} ({share})"


# -- predictions and pages -------------------------------------------------------------


def prediction_plain(top_label: str, top_probability: float,
                     others: Sequence[Tuple[str, float]] = ()) -> str:
    """What the model says, for presentation mode (Outputs)."""
    out = f"The model is **{percent(top_probability)}** sure this photo shows ***{text(top_label)}***."
    nxt = [f"*{text(l)}* ({percent(p)})" for l, p in others]
    if len(nxt) == 1:
        out += f" Its next guess is {nxt[0]}."
    elif nxt:
        out += f" Its next guesses are {', '.join(nxt[:-1])} and {nxt[-1]}."
    return out


def home_plain(top_label: str) -> str:
    return (f"Open **Attributions** to see which parts of the photo made the model say "
            f"*{text(top_label)}*.")


def link_note(key: str, value: str, why: str) -> str:
    """A link's value that could not be used: key and value are the visitor's."""
    return f"The link's setting {text(key)}={text(value)} was ignored: {text(why)}"


def agreement_plain(mean_correlation: float, n: int) -> str:
    """Presentation mode's line under the agreement of ``n`` maps (no number): from the
    mean rank correlation of the pairs."""
    if n < 2 or mean_correlation != mean_correlation:
        return ""
    if mean_correlation >= 0.6:
        return "The methods largely agree on which parts of the photo matter."
    if mean_correlation >= 0.2:
        return "The methods agree only in part on which parts of the photo matter."
    return "The methods disagree on which parts of the photo matter: they cannot all be right."


_TASK_NOUNS = {"classification": "classifier", "multilabel": "multi-label model",
               "binary": "binary classifier", "regression": "regression model",
               "segmentation": "segmentation model", "detection": "object detector",
               "image-text": "image-text model", "embedding": "embedding model"}


def a_task(task: str) -> str:
    """``"an image-text model"``, ``"a classifier"``: a model of ``task`` with its
    article, for sentences that say what kind of model this is."""
    noun = _TASK_NOUNS.get(task, f"{task} model")
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def embedding_point(name: str, predicted: str, probability: float) -> str:
    """The caption of one photo of an embedding plot: its name, and what the model says
    of it with its probability, when the model says something with one (a regressor's
    value has none; an embedding model says nothing)."""
    head = f"**{text(name)}**"
    if not predicted:
        return head
    if probability != probability:  # NaN: a value, no probability
        return f"{head}  \nthe model says *{text(predicted)}*"
    return f"{head}  \npredicted *{text(predicted)}* ({percent(probability)})"

"""interpret.words: every sentence a person reads, as tables of cases (numbers in,
sentence out), true of its numbers; and the one escaping rule (visitor text is text).

Markup is rendered with a real CommonMark renderer (markdown-it-py, with HTML on, as
Streamlit's ``unsafe_allow_html`` would) to check that a hostile label never becomes a
tag, a link or an image."""

from __future__ import annotations

import importlib
import itertools
import re

import pytest
from markdown_it import MarkdownIt

from interpret import words
from interpret.words import COUNTS, NIL, SLIGHT, Evidence

F = importlib.import_module("interpret.trust.faithfulness")

HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "![](http://evil/b)",
    "[Sign in](http://evil)",
    "x` [Sign in](http://evil) ![](http://evil/b) `",
    "<div style='position:fixed;inset:0'>Session expired</div>",
    ":material/lock: :red[Sign in]",
    "www.evil.example",
    "mail me: a@evil.example",
    "$\\frac{1}{2}$",
    "# Heading\n\n[link](http://evil)",
    "&lt;script&gt;",
]

_MD = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def rendered(markup: str) -> str:
    return _MD.render(markup)


def assert_inert(markup: str, raw: str) -> None:
    """No tag, link or image from ``raw`` in the rendered markup, and the text reads as
    ``raw`` (entities decoded)."""
    out = rendered(markup)
    assert "<img" not in out and "<a " not in out and "<div" not in out and "<script" not in out, out
    assert "<h1" not in out and "<code" not in out, out
    import html

    flat = html.unescape(re.sub(r"<[^>]+>", "", out))
    assert " ".join(raw.split()) in " ".join(flat.split()), (raw, flat)


# ----------------------------------------------------------------------------------
# escaping


@pytest.mark.parametrize("raw", HOSTILE)
def test_text_makes_a_hostile_label_inert_in_markdown_and_html(raw):
    assert_inert(words.text(raw), raw)
    # and inside the module's own sentences
    cap = words.map_caption(raw, "red", top_label=raw, probability=0.4, top_probability=0.4,
                            predicted=True)
    out = rendered(cap)
    assert "<img" not in out and "<a " not in out and "<div" not in out


@pytest.mark.parametrize("raw", HOSTILE)
def test_every_sentence_with_a_label_escapes_it(raw):
    ev = (Evidence("insertion", 0.5, 0.2, COUNTS), Evidence("gap", 0.4, 0.1, COUNTS))
    for markup in (
        words.map_caption(raw, "red", top_label=raw, probability=0.01, top_probability=0.9,
                          predicted=False, contrast_label=raw, contrast_probability=0.05),
        words.map_caption(raw, "red", top_label="x", probability=0.9, top_probability=0.9,
                          predicted=True, class_specific=False),
        words.trust_sentence("faithful", ev, raw, raw),
        words.prediction_plain(raw, 0.5, [(raw, 0.2), (raw, 0.1)]),
        words.home_plain(raw),
        words.link_note(raw, raw, raw),
        words.html(words.trust_sentence("faithful", ev, raw)),
    ):
        out = rendered(markup)
        assert "<img" not in out and "<a " not in out and "<div" not in out, out


def test_plain_text_reads_back_the_label():
    raw = "<b>cat</b> [x](y) *z*"
    assert words.plain(words.text(raw)) == raw


def test_underscores_and_ordinary_punctuation_stay_readable():
    assert words.text("my_lite0: model's (v2)") == "my_lite0: model's (v2)"


def test_plotly_text_escapes_the_tags_plotly_reads():
    assert words.plotly_text('<a href="http://evil">x</a> & y') == \
        '&lt;a href="http://evil"&gt;x&lt;/a&gt; &amp; y'


def test_html_turns_the_modules_emphasis_into_tags_and_nothing_else():
    m = words.map_caption("a*b*c", "red", top_label="a*b*c", probability=0.5, top_probability=0.5,
                          predicted=True, verdict="faithful")
    assert words.html(m) == ("The <b>red</b> areas are what made the model say "
                             "<b><i>a&#42;b&#42;c</i></b>.")


# ----------------------------------------------------------------------------------
# numbers


@pytest.mark.parametrize("p, expected", [
    (0.0, "0%"), (1.0, "100%"), (0.9996, "99.9%"), (0.41, "41%"), (0.014, "1.4%"),
    (0.0069, "0.69%"), (0.000034, "0.0034%"), (0.5, "50%"), (0.095, "9.5%"), (None, "?"),
])
def test_percent(p, expected):
    assert words.percent(p) == expected


@pytest.mark.parametrize("a, b", [(0.1801, 0.1799), (0.5, 0.4999), (0.0031, 0.0030), (0.3, 0.3)])
def test_two_different_numbers_never_read_the_same_and_keep_their_order(a, b):
    pa, pb = words.percents(a, b)
    if a == b:
        assert pa == pb
    else:
        assert pa != pb and (float(pa[:-1]) > float(pb[:-1])) == (a > b)


# ----------------------------------------------------------------------------------
# the sentence under a map

CAPTIONS = [
    # (kwargs, must contain, must not contain)
    (dict(target_label="espresso", top_label="espresso", probability=0.96, top_probability=0.96,
          predicted=True, verdict="faithful"),
     ["what made the model say ***espresso***."], ["speaks for"]),
    (dict(target_label="espresso", top_label="cup", probability=0.014, top_probability=0.6,
          predicted=False),
     ["what speaks for ***espresso***", "which the model gives 1.4%", "it says *cup* (60%)"],
     ["made the model say"]),
    (dict(target_label="espresso", top_label="cup", probability=0.014, top_probability=0.6,
          predicted=False, verdict="faithful"),
     ["what speaks for ***espresso***", "1.4%"], ["made the model say"]),
    (dict(target_label="tabby", top_label="tabby", probability=0.5, top_probability=0.5,
          predicted=True, contrast_label="tiger cat", contrast_probability=0.2, verdict="faithful"),
     ["what made the model say ***tabby*** rather than *tiger cat*."], ["speaks for"]),
    (dict(target_label="tiger cat", top_label="tabby", probability=0.2, top_probability=0.5,
          predicted=False, contrast_label="tabby", contrast_probability=0.5),
     ["what speaks for ***tiger cat*** rather than *tabby*", "did not say", "20%", "50%"],
     ["made the model say"]),
    (dict(target_label="espresso", top_label="espresso", probability=0.96, top_probability=0.96,
          predicted=True, verdict="no better than random"),
     ["no better than random", "does not show what the model relies on"],
     ["made the model say"]),
    (dict(target_label="espresso", top_label="cup", probability=0.01, top_probability=0.6,
          predicted=False, verdict="no better than random"),
     ["no better than random"], ["made the model say", "speaks for"]),
    (dict(target_label="espresso", top_label="espresso", probability=0.96, top_probability=0.96,
          predicted=True, verdict="weak"),
     ["what made the model say ***espresso***", "only partly faithful"], []),
    (dict(target_label="espresso", top_label="espresso", probability=0.96, top_probability=0.96,
          predicted=True, verdict=None),
     ["what made the model say ***espresso***, according to this map"], []),
    (dict(target_label="espresso", top_label="espresso", probability=0.96, top_probability=0.96,
          predicted=True, class_specific=False),
     ["does not depend on the class", "not why it says ***espresso***"], ["made the model say"]),
    (dict(target_label="espresso", top_label="cup", probability=0.01, top_probability=0.6,
          predicted=False, class_specific=False),
     ["does not depend on the class", "nothing about ***espresso***"], ["made the model say", "why it says"]),
]


@pytest.mark.parametrize("kwargs, has, hasnt", CAPTIONS)
def test_the_sentence_under_a_map_says_made_the_model_say_only_for_its_prediction(kwargs, has, hasnt):
    s = words.map_caption(hot="red", **kwargs)
    for h in has:
        assert h in s, (h, s)
    for h in hasnt:
        assert h not in s, (h, s)


def test_made_the_model_say_never_for_a_class_it_did_not_predict():
    for verdict, contrast, specific in itertools.product(
            (None, "faithful", "weak", "no better than random"), (None, "tabby"), (True, False)):
        s = words.map_caption("espresso", "red", top_label="tabby", probability=0.014,
                              top_probability=0.6, predicted=False, contrast_label=contrast,
                              contrast_probability=0.6 if contrast else None,
                              class_specific=specific, verdict=verdict)
        assert "made the model say" not in s and "why it says" not in s, s


# ----------------------------------------------------------------------------------
# the trust sentence against its verdict

P = 0.5  # the photo's probability: a gain counts above 10% of it (0.05), is nil at 5% (0.025)
GAIN = {COUNTS: 0.2, SLIGHT: 0.04, NIL: -0.03}


def _numbers(ins_level, gap_level, road_level):
    r_ins, r_del = 0.40, 0.35
    ins = r_ins + GAIN[ins_level]
    dele = ins - (r_ins - r_del) - GAIN[gap_level]
    road = None if road_level is None else GAIN[road_level]
    return dict(insertion_auc=ins, deletion_auc=dele, random_insertion_auc=r_ins,
                random_deletion_auc=r_del, probability=P, road_gap=road)


COMBOS = list(itertools.product((COUNTS, SLIGHT, NIL), (COUNTS, SLIGHT, NIL), (None, COUNTS, SLIGHT, NIL)))
_PHRASE = {COUNTS: "clearly more than random maps",
           SLIGHT: "more than random maps, but not by enough to count",
           NIL: "no more than a random map reaches by chance"}


def _clause_numbers(clause: str):
    return [float(x) for x in re.findall(r"(-?\d+(?:\.\d+)?)(?:%| point)", clause)]


@pytest.mark.parametrize("levels", COMBOS, ids=lambda c: "-".join(str(x) for x in c))
def test_the_trust_sentence_quotes_the_verdicts_numbers_and_never_contradicts_it(levels):
    n = _numbers(*levels)
    verdict, _ = F.verdict(**n)
    ev = F.evidence(**n)
    assert [e.level for e in ev] == [x for x in levels if x is not None]
    assert F.verdict_of(ev) == verdict
    s = words.trust_sentence(verdict, ev, "espresso")
    clauses = s.split(". ")
    # one clause per piece of evidence, with its own level and numbers in the right order
    for e, clause in zip(ev, clauses):
        assert _PHRASE[e.level] in clause, (e, clause)
        nums = _clause_numbers(clause)
        if e.name in ("insertion", "gap"):
            mine, rnd = nums[0], nums[1]
            assert abs(mine / 100 - e.value) < 0.006 and abs(rnd / 100 - e.random) < 0.006, (nums, e)
            if e.level in (COUNTS, SLIGHT):
                assert mine > rnd, clause
        else:
            assert abs(nums[0] / 100 - e.value) < 0.006
    # the conclusion is the verdict
    expected_end = {"faithful": "the map is faithful to the model.",
                    "weak": "the map is weak, treat it with care.",
                    "no better than random": "the map is no better than random."}[verdict]
    assert s.endswith(expected_end), s
    # never the old hiding/showing 10% numbers, which the verdict does not use
    assert "10%" not in s and "Hiding the" not in s


def test_every_verdict_the_rule_can_give_is_covered_by_the_combinations():
    got = {F.verdict(**_numbers(*c))[0] for c in COMBOS}
    assert got == set(F.VERDICTS)


@pytest.mark.parametrize("verdict", ["faithful", "weak", "no better than random", None])
def test_presentation_trust_sentence_is_the_verdict_in_words_with_at_most_one_number(verdict):
    s = words.trust_plain(verdict, "red")
    assert len(re.findall(r"\d+(?:\.\d+)?", s)) <= 1
    word = {"faithful": "can be trusted", "weak": "with care", "no better than random":
            "Do not rely", None: "not been checked"}[verdict]
    assert word in s


def test_faithfulness_sentence_is_the_words_sentence_as_plain_text(lite0, coffee):
    import interpret

    e = interpret.explain(lite0, coffee, "gradcam")
    f = interpret.faithfulness(lite0, coffee, e, steps=4)
    assert f.sentence == words.plain(f.sentence_for())
    assert f.sentence.endswith({"faithful": "faithful to the model.", "weak": "treat it with care.",
                                "no better than random": "no better than random."}[f.verdict])


# ----------------------------------------------------------------------------------
# regions

REGIONS = [
    ((0.00, 0.08, 1.00, 1.00), "almost the whole photo (92% of the photo"),
    ((0.0, 0.0, 1.0, 1.0), "almost the whole photo (100% of the photo"),
    ((0.05, 0.05, 0.95, 0.9), "almost the whole photo"),
    ((0.0, 0.0, 1.0, 0.6), "most of the photo, centred on the top edge (60% of the photo"),
    ((0.1, 0.1, 0.9, 0.8), "most of the photo, centred on its middle"),
    ((0.3, 0.3, 0.7, 0.7), "the centre (16% of the photo"),
    ((0.7, 0.7, 1.0, 1.0), "the bottom-right corner (9% of the photo"),
    ((0.0, 0.4, 0.2, 0.6), "the left edge (4% of the photo"),
]


@pytest.mark.parametrize("box, expected", REGIONS)
def test_region_words_are_true_of_the_boxs_size(box, expected):
    s = words.region(box)
    assert s.startswith(expected), s
    assert s.endswith("box " + ", ".join(f"{v:.2f}" for v in box) + ")")


def test_a_box_of_almost_the_whole_photo_is_never_called_the_centre():
    for x0, y0, x1, y1 in itertools.product((0.0, 0.05), (0.0, 0.08), (0.95, 1.0), (0.95, 1.0)):
        s = words.region((x0, y0, x1, y1))
        assert (x1 - x0) * (y1 - y0) >= words.REGION_WHOLE
        assert s.startswith("almost the whole photo") and "the centre" not in s


def test_shortcut_flag_sentence_uses_the_region_words():
    from interpret.dataset import summary

    assert "almost the whole photo" in summary.region((0.0, 0.08, 1.0, 1.0))


# ----------------------------------------------------------------------------------
# other sentences


def test_prediction_plain():
    assert words.prediction_plain("tabby", 0.41, [("tiger cat", 0.2), ("Egyptian cat", 0.1)]) == (
        "The model is **41%** sure this photo shows ***tabby***. Its next guesses are "
        "*tiger cat* (20%) and *Egyptian cat* (10%).")
    assert words.prediction_plain("tabby", 0.41, [("tiger cat", 0.2)]).endswith(
        "Its next guess is *tiger cat* (20%).")


@pytest.mark.parametrize("rho, expected", [(0.9, "largely agree"), (0.4, "only in part"),
                                            (-0.9, "disagree"), (float("nan"), "")])
def test_agreement_plain_has_no_number(rho, expected):
    s = words.agreement_plain(rho, 3)
    assert expected in s and not re.search(r"\d", s)


def test_link_note_escapes_key_and_value():
    s = words.link_note("cmap", "x` [Sign in](http://evil) ![](http://evil/b) `", "expected one of jet")
    assert_inert(s, "x` [Sign in](http://evil) ![](http://evil/b) `")


@pytest.mark.parametrize("task, said", [
    ("classification", "a classifier"), ("multilabel", "a multi-label model"),
    ("binary", "a binary classifier"), ("regression", "a regression model"),
    ("segmentation", "a segmentation model"), ("detection", "an object detector"),
    ("image-text", "an image-text model"), ("embedding", "an embedding model"),
    ("other", "an other model"),
])
def test_a_model_of_each_task_is_named_with_its_article(task, said):
    """"is a embedding model" was seen on the Dataset page."""
    assert words.a_task(task) == said


@pytest.mark.parametrize("name, predicted, probability, said", [
    ("cat.jpg", "tabby", 0.41, "**cat.jpg**  \npredicted *tabby* (41%)"),
    ("a.png", "not defect", 0.93, "**a.png**  \npredicted *not defect* (93%)"),
    ("b.png", "3.25", float("nan"), "**b.png**  \nthe model says *3.25*"),
    ("c.png", "", float("nan"), "**c.png**"),
])
def test_an_embedding_points_caption_says_a_probability_only_where_there_is_one(name, predicted, probability, said):
    assert words.embedding_point(name, predicted, probability) == said


def test_an_embedding_points_caption_escapes_the_name_and_the_label():
    md = words.embedding_point("![](http://evil/x).png", "<b>x</b>", 0.5)
    assert "![" not in md and "<b>" not in md

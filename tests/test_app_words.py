"""Issue 17, the words on the pages (AppTest): each test is named after the defect it
guards against and failed on the code before interpret/words.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402

import interpret  # noqa: E402
from interpret import words  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TRUST_PAGE = ROOT / "tests" / "apps" / "trust_page.py"
FAST = {"steps": "4", "seeds": "1", "sanity_layers": "2", "auto_seconds": "100000"}
ESPRESSO, TABBY, TIGER_CAT = 967, 281, 282


def page(path: str, query: dict) -> AppTest:
    at = AppTest.from_file(str(path), default_timeout=300)
    at.query_params.update(query)
    return at


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def texts(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption])


def charts(at: AppTest) -> dict:
    return {c.key: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def test_map_sentence_does_not_say_the_model_said_a_class_it_gives_one_percent():
    """/Attributions?img=cat_and_cup&target=967&present=1 read "The red areas are what
    made the model say espresso" while the model gives espresso 1.4%."""
    at = page(ROOT / "pages" / "4_Attributions.py",
              {"img": "cat_and_cup", "target": str(ESPRESSO), "present": "1"}).run()
    no_errors(at)
    handle = interpret.load_model()
    img = interpret.load_image(ROOT / "assets" / "samples" / "cat_and_cup.jpg")
    preds = interpret.predict(handle, img, top_k=None)
    assert preds[0].index != ESPRESSO
    p = next(x.probability for x in preds if x.index == ESPRESSO)
    t = texts(at)
    assert "made the model say ***espresso***" not in t and "made the model say" not in t, t
    assert "speaks for ***espresso***" in t and f"gives {words.percent(p)}" in t, t
    assert f"it says *{preds[0].label}*" in t


def test_trust_sentence_quotes_the_numbers_its_verdict_rests_on_not_numbers_against_it():
    """The sentence read "Showing only that 10% gives 3%; a random 10% gives 7% ... the
    map beats random maps: it is faithful": numbers the verdict does not use, saying
    the opposite of it."""
    at = page(TRUST_PAGE, {**FAST, "methods": "gradcam", "img": "espresso"}).run()
    no_errors(at)
    handle = interpret.load_model()
    img = interpret.load_image(ROOT / "assets" / "samples" / "espresso.jpg")
    e = interpret.explain(handle, img, "gradcam")
    f = interpret.faithfulness(handle, img, e, steps=4, seeds=1)  # seeded: the page's numbers
    t = texts(at)
    sentence = f.sentence_for()
    assert sentence in t, t
    assert "Hiding the 10%" not in t and "a random 10%" not in t
    ins = f.evidence[0]
    a, b = words.percents(ins.value, ins.random)
    assert f"{a} on average" in sentence and f"give {b}" in sentence
    badge = {"faithful": ":green-badge", "weak": ":orange-badge",
             "no better than random": ":red-badge"}[f.verdict]
    assert any(m.value.startswith(badge) and f.verdict in m.value for m in at.markdown)
    end = {"faithful": "faithful to the model.", "weak": "treat it with care.",
           "no better than random": "no better than random."}[f.verdict]
    assert sentence.endswith(end)


def test_presentation_mode_shows_no_correlation_values_or_entropy():
    """Presentation mode showed "Entropy 0.58 bits" and an agreement matrix with values
    like -0.92."""
    at = page(ROOT / "pages" / "1_Outputs.py", {"present": "1"}).run()
    no_errors(at)
    t = texts(at)
    assert not any(m.label == "Entropy" for m in at.metric)
    assert "bits" not in t and "Entropy" not in t and "ntropy" not in t
    at = page(TRUST_PAGE, {**FAST, "methods": "gradcam,layercam,eigencam", "present": "1"}).run()
    no_errors(at)
    t = texts(at)
    assert "trust_agreement" not in charts(at)
    assert not re.search(r"(?<![\d.])-?[01]\.\d\d(?!\d)", t), t  # no correlation value
    assert "Spearman" not in t and "rank correlation" not in t
    assert any(s in t for s in ("largely agree", "agree only in part", "disagree"))


def test_presentation_mode_keeps_the_contrast_class_of_a_link():
    """/Attributions?target=281&contrast=282&present=1 explained "tabby" alone and said
    nothing about the contrast."""
    at = page(ROOT / "pages" / "4_Attributions.py",
              {"target": str(TABBY), "contrast": str(TIGER_CAT), "present": "1"}).run()
    no_errors(at)
    t = texts(at)
    assert "***tabby*** rather than *tiger cat*" in t, t
    title = charts(at)["overlay"]["layout"]["title"]["text"]
    assert "tabby rather than tiger cat" in title
    assert at.query_params.get("contrast") == str(TIGER_CAT)
    # no controls in presentation mode, the contrast kept without its picker
    keys = {s.key for s in at.selectbox}
    assert "w_contrast" not in keys and "w_cmap" not in keys
    assert not any(s.key == "w_opacity" for s in at.slider)

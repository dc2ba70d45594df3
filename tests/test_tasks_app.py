"""The Outputs and Attributions pages for models that are not single-label
classifiers (issue 19), with Streamlit's AppTest: a segmentation model's mask with
each class's share of the pixels, a multi-label model's independent probabilities,
and the sentence under a segment's map; plus the words those pages use, as tables."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("streamlit.testing.v1")

import interpret  # noqa: E402
from test_app import charts, no_errors, page  # noqa: E402
from ui import tasks  # noqa: E402


def test_segmentation_outputs_page_shows_the_mask_with_each_classes_share(monkeypatch):
    from ui import compute

    monkeypatch.setattr(compute, "pretrained_available", lambda arch: False)
    at = page("app.py", {"model": "torchvision:lraspp_mobilenet_v3_large"}).run()
    at.switch_page("pages/1_Outputs.py").run()
    no_errors(at)
    spec = charts(at)["seg_mask"]
    legend = [t["name"] for t in spec["data"] if t.get("type") == "scatter" and t.get("showlegend") is not False]
    shares = [float(n.rsplit("(", 1)[1].rstrip("%)")) for n in legend]
    assert legend and sum(shares) == pytest.approx(100.0, abs=0.1 * len(shares))
    assert any("a segmentation model" in c.value for c in at.caption)
    assert any("classes in this photo" in m.value or "class in this photo" in m.value for m in at.markdown)
    # the segment's map on the Attributions page says what is explained, in words
    at.switch_page("pages/4_Attributions.py").run()
    no_errors(at)
    assert any("the pixels the model calls" in m.value for m in at.markdown)


def test_multilabel_outputs_page_shows_every_labels_own_sigmoid(tmp_path, monkeypatch):
    from torchvision.models import resnet18

    torch.manual_seed(0)
    net = resnet18(num_classes=4).eval()
    torch.save(net.state_dict(), tmp_path / "tags.pth")
    (tmp_path / "tags.txt").write_text("cat\ndog\ncup\n<b>table</b>\n")
    (tmp_path / "models.toml").write_text(
        '[[model]]\nname = "Tags"\nfile = "tags.pth"\narch = "resnet18"\nlabels = "tags.txt"\n'
        'task = "multilabel"\n')
    monkeypatch.setenv("INTERPRET_MODEL_FOLDER", str(tmp_path))
    at = page("app.py", {"model": "team:Tags", "img": "cat"}).run()
    at.switch_page("pages/1_Outputs.py").run()
    no_errors(at)
    bars = charts(at)["labels_bars"]["data"][0]
    h = interpret.load_model(tmp_path / "tags.pth", arch="resnet18", labels=str(tmp_path / "tags.txt"),
                             task="multilabel")
    from ui.samples import sample

    preds = interpret.predict(h, interpret.load_image(sample("cat").path), top_k=None)
    got = [float(v) for v in (bars["x"] if isinstance(bars["x"], list) else [])] or None
    from test_app import values

    got = values(bars["x"]).astype(float) if got is None else np.asarray(got)
    want = np.array([p.probability for p in preds])
    np.testing.assert_allclose(got, want, atol=1e-6)  # the labels' own sigmoids, most likely first
    logits = np.array([p.logit for p in preds])
    np.testing.assert_allclose(want, 1 / (1 + np.exp(-logits)), atol=1e-6)
    assert abs(want.sum() - 1.0) > 1e-3  # not a softmax
    assert "&lt;b&gt;table&lt;/b&gt;" in json.dumps(bars["y"]) and "<b>table</b>" not in json.dumps(bars["y"])
    assert any("multi-label" in c.value for c in at.caption)


@pytest.mark.parametrize("names,threshold,want", [
    ([("cat", 0.9), ("dog", 0.6), ("cup", 0.1)], 0.5,
     "2 labels at or above 50%: ***cat*** (90%), ***dog*** (60%)."),
    ([("cat", 0.3), ("dog", 0.2)], 0.5, "No label reaches 50%; the most likely is ***cat*** at 30%."),
    ([("a*b", 0.7)], 0.7, "1 label at or above 70%: ***a&#42;b*** (70%)."),
])
def test_labels_sentence(names, threshold, want):
    got = tasks.labels_sentence(names, threshold)
    assert got == want.replace("a&#42;b", interpret.words.text("a*b"))


@pytest.mark.parametrize("p,word", [(0.93, "a yes"), (0.5, "a yes"), (0.12, "a no")])
def test_binary_sentence_says_which_side_of_one_half(p, word):
    s = tasks.binary_sentence("tumour", p)
    assert word in s and interpret.words.percent(p) in s and "tumour" in s


def test_segmentation_sentence_lists_the_largest_classes_with_their_shares():
    s = tasks.segmentation_sentence([("road", 0.5), ("sky", 0.3), ("car", 0.1), ("tree", 0.06), ("dog", 0.04)])
    assert s.startswith("The model finds 5 classes in this photo: ***road*** (50%), ***sky*** (30%)")
    assert "and 1 more" in s
    assert tasks.segmentation_sentence([]) == "The model assigns no class to any pixel it sees."


def test_map_caption_of_a_target_quotes_its_sentence():
    t = interpret.targets.region(2)
    s = tasks.map_caption(t.sentence(["a", "b", "<i>c</i>"]), "red")
    assert s == ("The **red** areas are what this method marks as driving the score explained: "
                 "the pixels the model calls " + interpret.words.text("<i>c</i>") + ".")


def test_a_clicked_segment_is_explained_over_its_own_region(monkeypatch):
    """The Attributions page's segment picker: a click on the mask (Plotly's selection
    event, as Streamlit hands it to the page) becomes a region target; the map and the
    sentence are that segment's."""
    from ui import compute

    monkeypatch.setattr(compute, "pretrained_available", lambda arch: False)
    at = page("app.py", {"model": "torchvision:lraspp_mobilenet_v3_large", "method": "gradcam"}).run()
    at.switch_page("pages/4_Attributions.py").run()
    no_errors(at)
    at.radio(key="w_region_kind").set_value("a segment I click").run()
    no_errors(at)
    spec = charts(at)["w_seg_click"]
    grid = spec["data"][-1]
    from test_app import values

    cd = values(grid["customdata"]).reshape(-1, 3) if isinstance(grid["customdata"], dict) else np.asarray(grid["customdata"])
    x, y, c = (float(v) for v in cd[len(cd) // 2])
    at.session_state["w_seg_click"] = {"selection": {"points": [{"customdata": [x, y, c]}],
                                                     "point_indices": [len(cd) // 2], "box": [], "lasso": []}}
    at.run()
    no_errors(at)
    said = " ".join(c.value for c in at.caption)
    assert "Explaining the class" in said and "over the chosen region" in said
    assert any("the class" in m.value and "over the chosen region" in m.value for m in at.markdown)
    # the trust panel measures the segment itself, no box drawn: mass on it and context outside
    seg = [m.value for m in at.markdown if m.value.startswith("On the segment explained (the class")]
    assert seg and "lies on context outside the segment" in seg[0]


def test_binary_model_asks_what_raises_or_lowers_it(tmp_path, monkeypatch):
    from torchvision.models import resnet18

    torch.manual_seed(0)
    torch.save(resnet18(num_classes=1).eval().state_dict(), tmp_path / "b.pth")
    (tmp_path / "models.toml").write_text('[[model]]\nname = "Tumour"\nfile = "b.pth"\narch = "resnet18"\n')
    monkeypatch.setenv("INTERPRET_MODEL_FOLDER", str(tmp_path))
    at = page("app.py", {"model": "team:Tumour", "method": "gradcam"}).run()
    at.switch_page("pages/1_Outputs.py").run()
    no_errors(at)
    metric = at.metric[0]
    assert metric.label.startswith("Probability of") and metric.value != "100.0%"
    at.switch_page("pages/4_Attributions.py").run()
    no_errors(at)
    at.radio(key="w_sign").set_value("what lowers it").run()
    no_errors(at)
    assert any("what lowers the probability of" in m.value for m in at.markdown)


def test_regressors_trust_panel_draws_its_value_not_a_percentage(tmp_path, monkeypatch):
    """Issue 19: the trust curves of a regressor follow its value (they were refused):
    the Attributions page's check gives a sentence that names what is explained and
    quotes values, no percentage, and curves whose axis is the value."""
    from torchvision.models import resnet18

    torch.manual_seed(0)
    torch.save(resnet18(num_classes=1).eval().state_dict(), tmp_path / "r.pth")
    (tmp_path / "models.toml").write_text('[[model]]\nname = "Age"\nfile = "r.pth"\narch = "resnet18"\n'
                                          'task = "regression"\nlabels = "age.txt"\n')
    (tmp_path / "age.txt").write_text("age\n")
    monkeypatch.setenv("INTERPRET_MODEL_FOLDER", str(tmp_path))
    at = page("app.py", {"model": "team:Age", "method": "gradcam"}).run()
    at.switch_page("pages/4_Attributions.py").run(timeout=120)
    no_errors(at)
    check = [b for b in at.button if b.key == "trust_check_gradcam"]
    if check:
        check[0].click().run(timeout=300)
        no_errors(at)
    said = [m.value for m in at.markdown if "Explained: what raises the value of" in m.value]
    assert said, [m.value for m in at.markdown]
    assert "%" not in said[0] and "the value of \u201c*age*\u201d" in said[0]
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    figs = [c for c in specs if c.get("layout", {}).get("yaxis", {}).get("title", {}).get("text") == "value"]
    assert figs and figs[0]["layout"]["yaxis"].get("ticksuffix", "") == ""


def test_upload_form_task_choice_makes_a_one_output_model_a_regressor():
    """The upload form's Task: a one-output ResNet-18 state dict uploaded as a regressor
    shows its value, with no probability; uploaded as a classifier (softmax over one
    number) it is refused with what the output looks like."""
    import io

    from test_app import by_label
    from torchvision.models import resnet18

    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.save(resnet18(num_classes=1).eval().state_dict(), buf)
    at = page("pages/1_Outputs.py").run()
    at.sidebar.selectbox(key="w_model_kind").select("upload").run()
    at.sidebar.file_uploader(key="w_model_file").upload("age.pth", buf.getvalue())
    at.sidebar.selectbox(key="w_model_arch").select("resnet18")
    at.sidebar.selectbox(key="w_model_task").select("classification")
    by_label(at.sidebar.button, "Load model").click().run()
    said = " ".join(e.value for e in at.sidebar.error) + " ".join(e.value for e in at.error)
    assert "softmax over one class" in said
    at.sidebar.selectbox(key="w_model_task").select("regression")
    by_label(at.sidebar.button, "Load model").click().run()
    no_errors(at)
    assert any("a regressor" in c.value for c in at.caption)
    assert at.metric and "%" not in at.metric[0].value

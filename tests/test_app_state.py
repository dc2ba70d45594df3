"""State that never goes stale or lost (issue 17), with Streamlit's AppTest.

Each test names the defect it guards against and failed on the code before the fix:

* a slow result (occlusion) had to be run again after leaving the page, once the
  shared cache had dropped it (other visitors' work fills it): heavy results now stay
  with the session (ui.compute.keep / lookup);
* the Features page went back to page 1 of its gallery, in its default order, with
  "Generate these 7", and recomputed optimized images already made (counted: calls of
  interpret.visualize_channel, never time);
* a bad photo's error was shown in the sidebar only (below the fold) and the main
  area did not change;
* the Dataset page's counters ("Shortcut flags", "boxes given") did not count a box
  just given, and its Cancel button stayed after the analysis ended;
* Compare offered the slow methods only through the page above, without their cost,
  and its "Select all" offered more methods than the box takes.

The stale badge of the comparison after a check in the trust panel is a fragment
rerun, which AppTest does not make: tests/test_browser_layout.py checks it in Chromium.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402

import interpret  # noqa: E402
from test_app import ROOT, by_label, charts, no_errors, page  # noqa: E402
from test_dataset import planted_set, tiny, tiny_model  # noqa: E402,F401  (fixtures)

APP = str(ROOT / "app.py")


def app(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params.update(query or {})
    return at


def other_visitors_fill_the_shared_cache() -> None:
    """What a busy server does to the shared result cache: other people's results push
    every older entry out of the LRU."""
    from ui import compute

    cache = compute.results()
    for i in range(cache.max_items + 1):
        cache.put(("someone else's result", i), i)


@contextmanager
def counting(module, name: str):
    """Count the calls of ``module.name`` (the page looks it up at call time)."""
    calls = []
    orig = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(args)
        return orig(*args, **kwargs)

    setattr(module, name, wrapper)
    try:
        yield calls
    finally:
        setattr(module, name, orig)


# ----------------------------------------------------------------------------------
# Heavy results stay with the session


def test_an_occlusion_result_is_still_there_after_leaving_the_page_and_coming_back():
    at = app().run()
    at.switch_page("pages/4_Attributions.py").run()
    at.get("button_group")[0].set_value("path").run()
    at.radio(key="w_method").set_value("occlusion").run()
    at.number_input(key="w_p_occlusion_window").set_value(112)
    at.number_input(key="w_p_occlusion_stride").set_value(56)
    by_label(at.button, "Run Occlusion").click().run()
    no_errors(at)
    shown = charts(at)["overlay"]["data"][0]["source"]

    at.switch_page("pages/1_Outputs.py").run()
    no_errors(at)
    other_visitors_fill_the_shared_cache()
    with counting(interpret, "explain") as calls:
        at.switch_page("pages/4_Attributions.py").run()
    no_errors(at)
    assert not [c for c in calls if "occlusion" in c], "occlusion was computed again"
    assert not any("passes" in i.value for i in at.info), "the page asks to run it again"
    assert charts(at)["overlay"]["data"][0]["source"] == shown


def test_features_optimised_images_are_not_recomputed_on_return():
    # 24 channels: 3 gallery pages of 8; small images so that the test takes seconds
    at = app({"layer": "_blocks.1", "fsize": "48", "fsteps": "8", "fseed": "31"}).run()
    at.switch_page("pages/5_Features.py").run()
    no_errors(at)
    order = [g for g in at.get("button_group") if g.key == "w_fv_gorder"][0]
    order.set_value("index").run()  # the gallery in channel order, not the default
    [b for b in at.button if b.label.startswith("Generate these")][0].click().run()
    no_errors(at)
    opened = sorted(b.key for b in at.button if b.key and b.key.startswith("fv_open_"))
    assert opened == sorted(f"fv_open_{c}" for c in range(8))

    at.switch_page("pages/3_Activations.py").run()
    no_errors(at)
    other_visitors_fill_the_shared_cache()
    with counting(interpret, "visualize_channel") as calls:
        at.switch_page("pages/5_Features.py").run()
    no_errors(at)
    assert len(calls) == 0, f"{len(calls)} optimized image(s) computed again"
    assert not [b.label for b in at.button if b.label.startswith("Generate these")]
    assert sorted(b.key for b in at.button if b.key and b.key.startswith("fv_open_")) == opened
    assert [g for g in at.get("button_group") if g.key == "w_fv_gorder"][0].value == "index"


def test_trust_checks_stay_with_the_session():
    """A faithfulness check (seconds of work) comes back from the session's own keep
    when the shared cache has dropped it: the badge does not fall back to "not checked"."""
    from ui import trust

    # steps=5: settings no other test uses, so the shared cache has no check of this map yet
    at = page("tests/apps/trust_page.py", {"steps": "5", "seeds": "1", "auto_seconds": "0",
                                           "methods": "saliency,gradcam"}).run()
    assert trust.NOT_CHECKED in "\n".join(m.value for m in at.markdown)
    at.button(key="trust_check_saliency").click().run()
    no_errors(at)
    head = lambda: "\n".join(m.value for m in at.markdown).split(trust.COMPARE_TITLE)[0]  # noqa: E731
    assert trust.NOT_CHECKED not in head()
    other_visitors_fill_the_shared_cache()
    with counting(interpret, "faithfulness") as calls:
        at.run()
    no_errors(at)
    assert not calls and trust.NOT_CHECKED not in head()


# ----------------------------------------------------------------------------------
# Errors where the person is looking


def test_a_bad_photo_error_is_visible_in_the_main_area():
    at = page("pages/1_Outputs.py").run()
    at.sidebar.file_uploader(key="w_image_file").upload("notes.png", b"this is not a picture", "image/png")
    at.run()
    assert not at.exception
    main = [e.value for e in at.main.error]
    assert any("not an image" in m for m in main), main
    assert any("still the previous one" in m for m in main)
    # next to the uploader too, and the photo kept
    assert any("not an image" in e.value for e in at.sidebar.error)
    assert at.sidebar.selectbox(key="w_image").value == "sample:cat"
    at.run()  # said once where the person looks; the sidebar keeps it by the uploader
    assert not at.main.error and at.sidebar.error


# ----------------------------------------------------------------------------------
# Dataset counters and buttons


@pytest.fixture
def dataset_page(tmp_path_factory, tiny, planted_set, monkeypatch):  # noqa: F811
    root = tmp_path_factory.mktemp("state-runs")
    interpret.analyze_dataset(tiny, planted_set, out=root / "planted", batch_size=16, name="planted watermark")
    monkeypatch.setenv("INTERPRET_DATASET_RUNS", str(root))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    at = AppTest.from_file(str(ROOT / "pages" / "6_Dataset.py"), default_timeout=240).run()
    at.segmented_control(key="w_ds_source").set_value("stored").run()
    at.button(key="ds_open_stored").click().run()
    no_errors(at)
    return at



def _counters(at) -> tuple:
    metrics = {m.label: m.value for m in at.metric}
    boxes = [e.label for e in at.expander if e.label.startswith("Where the objects are")]
    return metrics["Shortcut flags"], boxes[0]


def test_dataset_counters_count_a_box_in_the_same_run(dataset_page):
    at = dataset_page
    assert _counters(at) == ("1", "Where the objects are (boxes given: 0)")  # the watermark
    # the disc's object is not in the top-left corner: a box there raises a flag
    at.selectbox(key="w_ds_box_class").set_value("disc").run()
    at.slider(key="w_ds_bx_disc").set_value((0.0, 0.2))
    at.slider(key="w_ds_by_disc").set_value((0.0, 0.2))
    at.button(key="ds_box_set").click().run()
    no_errors(at)
    assert any(w.value.startswith("'disc'") for w in at.warning)  # the flag the box raised
    assert _counters(at) == ("2", "Where the objects are (boxes given: 1)")
    at.button(key="ds_box_clear").click().run()
    assert _counters(at) == ("1", "Where the objects are (boxes given: 0)")


def test_cancel_goes_when_the_analysis_ends(monkeypatch):
    from ui import dataset as ds

    monkeypatch.setattr(ds, "run", lambda handle, job, bar: None)  # an analysis that ends at once
    at = AppTest.from_file(str(ROOT / "pages" / "6_Dataset.py"), default_timeout=240).run()
    at.button(key="ds_start_btn").click().run()
    no_errors(at)
    assert "Cancel" not in [b.label for b in at.button]


# ----------------------------------------------------------------------------------
# Compare


def test_compare_offers_every_method_with_the_cost_of_the_slow_ones_through_the_gate(monkeypatch):
    import copy

    from interpret.gate import ComputeGate
    from ui import compute, state

    class CountingGate(ComputeGate):
        heavy = 0

        def run(self, work, *args, light=False, **kwargs):
            CountingGate.heavy += not light
            return super().run(work, *args, light=light, **kwargs)

    monkeypatch.setattr(compute, "heavy_gate", lambda: CountingGate(1))
    at = page("pages/4_Attributions.py", {"compare": "gradcam,occlusion", "img": "espresso"}).run()
    view = copy.deepcopy(at.session_state["view"])
    view["params"]["occlusion"] = {"window": 112, "stride": 56}  # 9 passes, seconds
    at.session_state["view"] = view
    at.run()
    no_errors(at)
    handle = interpret.load_model()
    box = at.multiselect(key="w_compare")
    specs = interpret.methods(handle)
    assert len(box.options) == len(specs)  # every method this model can run
    # the heavy ones with their cost (the registry's, for this model, layer and settings)
    layer = interpret.default_layer(handle)
    for name in ("integrated_gradients", "occlusion", "deeplift"):
        spec = interpret.get_method(name)
        params = {**spec.defaults(), **({"window": 112, "stride": 56} if name == "occlusion" else {})}
        cost = spec.estimate(handle, layer if spec.needs_layer else None, params)
        assert f"{spec.label} ({spec.speed})" in box.options  # a label that never changes
        assert f"{spec.label} ~{cost.forwards}" in " ".join(c.value for c in at.caption)
    # "Select all" only while all the options it would add fit under the limit
    assert box.proto.select_all == state.COMPARE_MAX - 2
    # the slow one waits, with its cost, for a click
    cost = interpret.get_method("occlusion").estimate(handle, None, {**interpret.get_method("occlusion").defaults(),
                                                                    "window": 112, "stride": 56})
    assert any(f"Occlusion (about {cost.forwards} passes)" in i.value for i in at.info)
    assert "Occlusion · path and perturbation" not in [i.caption for im in at.get("image") for i in im.proto.imgs]
    before = CountingGate.heavy
    at.button(key="compare_run_btn").click().run()
    no_errors(at)
    assert CountingGate.heavy == before + 1  # through the compute gate's heavy lane
    captions = [i.caption for im in at.get("image") for i in im.proto.imgs]
    assert "Occlusion · path and perturbation" in captions and "Grad-CAM · class activation maps (gradient)" in captions
    assert not any("about" in i.value and "passes" in i.value for i in at.info)


# ----------------------------------------------------------------------------------
# Outputs: a class axis has whole-number ticks


@pytest.mark.parametrize("n", [2, 3, 7, 30])
def test_the_all_classes_chart_puts_whole_number_ticks_on_its_class_axis(n):
    """It put 1, 1.5, 2, 2.5 under a 3-class model: ranks are whole numbers."""
    from interpret.figures import distribution_figure

    fig = distribution_figure([f"class {i}" for i in range(n)], [1 / n] * n)
    ax = fig.layout.xaxis
    assert ax.tick0 is not None and ax.dtick is not None  # not left to Plotly's choice
    assert float(ax.tick0).is_integer() and float(ax.dtick).is_integer() and ax.dtick >= 1
    ticks = [ax.tick0 + k * ax.dtick for k in range(n) if ax.tick0 + k * ax.dtick <= n]
    assert ticks[0] == 1 and len(ticks) <= 11

"""The Dataset page with Streamlit's AppTest (no browser), and the dataset figure
builders, on a stored run of the planted-shortcut model: the team's run list, the
flag with its images and region, a confusion cell's images, opening one image on the
Attributions page.  What is checked is what a person would see: the figures' data."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402

import interpret  # noqa: E402
from interpret.figures import dataset as dfig  # noqa: E402
from test_app import ROOT, values  # noqa: E402
from test_dataset import planted_set, tiny, tiny_model  # noqa: E402,F401  (fixtures)

pytestmark = pytest.mark.usefixtures("single_thread")

PAGE = str(ROOT / "pages" / "6_Dataset.py")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny, planted_set):  # noqa: F811
    root = tmp_path_factory.mktemp("team-runs")
    interpret.analyze_dataset(tiny, planted_set, out=root / "planted", batch_size=16, name="planted watermark",
                              created_by="ada@example.com")
    return root


@pytest.fixture
def app(runs, monkeypatch):
    monkeypatch.setenv("INTERPRET_DATASET_RUNS", str(runs))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    at = AppTest.from_file(PAGE, default_timeout=240)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _charts(at) -> dict:
    return {c.key: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def _open_stored(at):
    at.segmented_control(key="w_ds_source").set_value("stored").run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert list(table["run"]) == ["planted watermark"] and list(table["by"]) == ["ada@example.com"]
    assert list(table["images"]) == ["60 of 60"] and list(table["status"]) == ["complete"]
    at.button(key="ds_open_stored").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_stored_run_shows_its_flag_with_the_region_on_its_images(app, runs):
    at = _open_stored(app)
    warnings = [w.value for w in at.warning]
    assert any("made with **tiny planted-shortcut CNN**" in w for w in warnings)  # not the sidebar's
    flag = [w for w in warnings if w.startswith("'marked':")]
    assert len(flag) == 1 and "bottom-right corner" in flag[0]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Accuracy"] == "100.0%" and metrics["Shortcut flags"] == "1" and metrics["Images"] == "60"
    figs = _charts(at)
    conf = figs["ds_confusion"]
    cells = conf["data"][1]["customdata"]
    assert sum(c[2] for c in cells) == 60 and all(c[2] == (20 if c[0] == c[1] else 0) for c in cells)
    gal = figs["ds_gal_flag_0"]
    paths = [t["customdata"][0][0] for t in gal["data"] if t["type"] == "scatter"]
    assert len(paths) == 20 and all(p.startswith("marked/") for p in paths)
    red = [s for s in gal["layout"]["shapes"] if s["line"]["color"] == dfig.HIGHLIGHT_COLOR]
    assert len(red) == 20
    side = 112  # the stored thumbnails
    assert all(s["x0"] > 0.6 * side and s["y0"] > 0.6 * side and s["x1"] >= 0.94 * side - 1 for s in red)
    where = figs["ds_where"]
    marked = np.asarray(values(where["data"][1]["z"]), dtype=float)
    assert marked.shape == (3, 3) and marked[2, 2] > 0.6 and marked[2, 2] == marked.max()


def test_a_confusion_cell_shows_its_images_and_one_opens_on_attributions(app, runs):
    at = _open_stored(app)
    at.session_state["ds_cell"] = (0, 0)  # what a click on the (disc, disc) cell sets
    at.run()
    gal = _charts(at)["ds_gal_cell"]
    paths = [t["customdata"][0][0] for t in gal["data"] if t["type"] == "scatter"]
    assert len(paths) == 20 and all(p.startswith("disc/") for p in paths)
    assert any("True *disc*, predicted *disc*: 20 image(s)" in m.value for m in at.markdown)
    # a forged click (the selection's data comes from the browser) reads nothing
    at.session_state["ds_open"] = (str(runs / "planted"), "../../../../etc/passwd")
    at.run()
    assert any("not part of this run" in e.value for e in at.error)
    assert "img_upload" not in at.session_state
    at.session_state["ds_open"] = (str(runs / "planted"), "disc/disc_003.png")  # a click on an image
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    up = at.session_state["img_upload"]
    assert up["name"] == "disc_003.png" and up["image"].size == (64, 64)
    assert at.session_state["view"]["image"] == "upload" and at.session_state["view"]["target"] == 0


# ----------------------------------------------------------------------------------
# figure builders


def test_confusion_figure_counts_and_row_shares():
    m = np.zeros((4, 4), int)
    m[0, 0], m[0, 2], m[1, 1], m[3, 1] = 3, 1, 5, 2
    fig = dfig.confusion_figure(m, ["a", "b", "c", "d"], rows=[0, 1, 3], cols=[0, 1, 3, 2], selected=(3, 1))
    heat, pts = fig.data
    z = np.asarray(heat.z)
    assert z.shape == (3, 4)
    np.testing.assert_allclose(z[0], [0.75, 0, 0, 0.25])
    np.testing.assert_allclose(z[2], [0, 1, 0, 0])
    assert heat.text[0][3] == "1" and heat.text[1][1] == "5" and heat.text[0][1] == ""
    cd = [tuple(c) for c in pts.customdata]
    assert len(cd) == 12 and (3, 1, 2) in cd and (0, 2, 1) in cd
    red = [s for s in fig.layout.shapes if s.line.color == dfig.HIGHLIGHT_COLOR]
    assert [(s.x0, s.y0) for s in red] == [(0.5, 1.5)]  # column 1, row 2 of the drawn matrix


def test_map_gallery_overlays_the_map_where_it_is():
    from test_figures import decode_data_uri

    img = np.full((40, 40, 3), 128, np.uint8)
    raw = np.zeros((4, 4), np.float32)
    raw[3, 3] = 1.0  # all the evidence in the bottom-right cell
    fig = dfig.map_gallery_figure([img, img], [raw, None], ["a", "b"], ["k1", "k2"], box=(0.75, 0.75, 1, 1))
    images = [t for t in fig.data if t.type == "image"]
    over = np.asarray(decode_data_uri(images[0].source)).astype(int)
    plain = np.asarray(decode_data_uri(images[1].source)).astype(int)
    assert np.abs(plain - 128).max() <= 3  # no map: the image as it is
    hot, cold = over[34:, 34:].reshape(-1, 3).mean(0), over[:12, :12].reshape(-1, 3).mean(0)
    assert hot[0] > hot[2] + 60  # jet's red where the evidence is
    assert cold[2] > cold[0] + 20  # its blue where there is none
    assert [t.customdata[0][0] for t in fig.data if t.type == "scatter"] == ["k1", "k2"]
    assert len(fig.layout.shapes) == 2 and fig.layout.shapes[0].x0 == pytest.approx(0.75 * 40 - 0.5)


def test_embedding_figure_groups_and_keys():
    coords = np.array([[0, 0], [1, 1], [2, 0]], float)
    fig = dfig.dataset_embedding_figure(coords, ["wrong", "correct", "wrong"], ["p0", "p1", "p2"],
                                        ["h0", "h1", "h2"], "prediction", dfig.CORRECT_COLORS)
    by = {t.name: t for t in fig.data}
    assert [c[0] for c in by["wrong"].customdata] == ["p0", "p2"]
    assert by["correct"].marker.color == dfig.CORRECT_COLORS["correct"]
    with pytest.raises(ValueError):
        dfig.dataset_embedding_figure(coords, ["a"], ["p0"], ["h"])

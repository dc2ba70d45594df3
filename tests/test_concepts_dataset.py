"""Dataset mode for concepts: each class's most relevant concepts across a set, and the
concepts that carry a shortcut flag's region, checked against values computed by hand
on a model whose LRP relevance at the layer is known in closed form."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import interpret
from interpret import InputError, Preprocessing
from interpret.concepts.dataset import Region, box_weights, dataset_concepts, flag_regions
from interpret.dataset import Flag

pytestmark = pytest.mark.usefixtures("single_thread")

#: class c's logit = sum_j W[c, j] * mean(channel j); channel j = colour j (R, G, B)
W = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.5], [0.2, 0.2, 0.2]])


def colour_model() -> nn.Module:
    """conv (1x1, identity: channel j is colour j) -> ReLU -> mean -> linear W, no biases.
    For class c, LRP (EpsilonPlusFlat: epsilon at the linear layer, proportional at the
    average pool) gives channel j at pixel (y, x) of the conv layer the relevance
    W[c, j] * colour_j(y, x) / (h * w): the logit is split exactly by contribution."""
    net = nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(3, 3, 1, bias=False)), ("relu", nn.ReLU()),
        ("gap", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()), ("fc", nn.Linear(3, 3, bias=False)),
    ]))
    with torch.no_grad():
        net.conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        net.fc.weight.copy_(torch.tensor(W, dtype=torch.float32))
    return net.eval()


def handle():
    return interpret.load_model(colour_model(), labels=["red", "green", "blue"],
                                preprocessing=Preprocessing(resize=None, crop=8, mean=(0, 0, 0), std=(1, 1, 1)))


def photo(r=0.0, g=0.0, b=0.0):
    """An 8 x 8 photo from three colour planes (scalars or 8 x 8 arrays in [0, 1])."""
    planes = [np.broadcast_to(np.asarray(v, float), (8, 8)) for v in (r, g, b)]
    return Image.fromarray(np.round(np.stack(planes, -1) * 255).astype(np.uint8))


def quadrant(top: bool, left: bool) -> np.ndarray:
    m = np.zeros((8, 8))
    m[(slice(0, 4) if top else slice(4, 8)), (slice(0, 4) if left else slice(4, 8))] = 1
    return m


def as_seen(img):
    """The colour planes as the model sees them (uint8 / 255)."""
    return np.asarray(img, float).transpose(2, 0, 1) / 255


def test_box_weights_are_each_cells_fraction_inside_the_box():
    np.testing.assert_allclose(box_weights((0.25, 0, 0.75, 0.5), (4, 4)),
                               [[0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    # a box edge through the middle of a cell: half of it
    np.testing.assert_allclose(box_weights((0, 0, 0.75, 1), (1, 2)), [[1, 0.5]])
    np.testing.assert_allclose(box_weights((0, 0, 0.75, 1), (1, 2), inside=False), [[0, 0.5]])
    with pytest.raises(InputError, match="box"):
        box_weights((0.5, 0, 0.2, 1), (2, 2))


def test_each_class_rests_on_the_concepts_computed_by_hand():
    # class "red": red in the top-left quadrant, half green everywhere; class "green":
    # green everywhere, blue in the bottom-right quadrant
    reds = [photo(r=quadrant(True, True), g=0.5), photo(r=quadrant(True, True), g=0.5 * quadrant(True, True))]
    greens = [photo(g=1.0, b=quadrant(False, False))]
    images = reds + greens
    result = dataset_concepts(handle(), images, [0, 0, 1], layer="conv", k=2)
    # by hand: channel j's relevance for class c is W[c, j] * sum(colour_j) / 64
    want = []
    for img, c in zip(images, [0, 0, 1]):
        rel = W[c] * as_seen(img).sum((1, 2)) / 64
        want.append(rel / np.abs(rel).sum())
    want = np.array(want)
    np.testing.assert_allclose(result.table.share, want, atol=1e-5)
    # photo 1: red 16/64 * 1 against green 0.5 * 32/64 -> 0.5 / 0.5; photo 2: 0.25 / 0.0625 -> 0.8 / 0.2
    red_mean = want[:2].mean(0)
    assert red_mean[0] == pytest.approx((0.5 + 0.8) / 2, abs=0.01)
    (c0, n0, top0), (c1, n1, top1) = sorted(result.by_class)
    assert (c0, n0) == (0, 2) and (c1, n1) == (1, 1)
    assert [ch for ch, _ in top0] == [0, 1]
    assert [s for _, s in top0] == pytest.approx(list(red_mean[:2]), abs=1e-5)
    # green: 1 * 64/64 against blue 0.5 * 16/64 = 0.125 -> 8/9 and 1/9
    assert [ch for ch, _ in top1] == [1, 2]
    assert [s for _, s in top1] == pytest.approx([8 / 9, 1 / 9], abs=1e-4)
    # each concept's patches come from its own class's photos, largest share first
    assert [p.index for p in result.table.patches(0, 3, cls=0)] == [1, 0]


def test_a_regions_concepts_are_the_relevance_inside_it_computed_by_hand():
    """The red class's flagged region is the top-left quadrant: red carries it (all of the
    red is there), green only by its part inside; outside the quadrant only green counts."""
    images = [photo(r=quadrant(True, True), g=0.5), photo(r=quadrant(True, True), g=0.25)]
    tl = (0.0, 0.0, 0.5, 0.5)
    regions = [Region("red: the flagged region", (0, 1), tl), Region("red: outside", (0, 1), tl, inside=False)]
    result = dataset_concepts(handle(), images, [0, 0], layer="conv", regions=regions, k=3)
    inside, outside = result.regions
    # in the quadrant, photo 0: red 16/64, green 0.5 * 0.5 * 16/64 -> 0.8, 0.2;
    # photo 1: red 16/64, green 0.5 * 0.25 * 16/64 -> 1/1.125, 0.125/1.125
    want_red = (0.8 + 1 / 1.125) / 2
    assert inside.concepts[0][0] == 0 and inside.concepts[0][1] == pytest.approx(want_red, abs=2e-3)
    assert inside.concepts[1][0] == 1 and inside.concepts[1][1] == pytest.approx(1 - want_red, abs=2e-3)
    assert inside.images == 2
    # how much of the decision sits in the region: (0.25 + 0.0625) / (0.25 + 0.25) and
    # (0.25 + 0.03125) / (0.25 + 0.125)
    assert inside.relevance_share == pytest.approx((0.625 + 0.28125 / 0.375) / 2, abs=2e-3)
    assert outside.concepts[0][0] == 1 and outside.concepts[0][1] == pytest.approx(1.0, abs=1e-4)
    assert outside.concepts[1][1] == pytest.approx(0.0, abs=1e-4)


def test_shortcut_flags_become_regions_of_their_own_photos():
    paths = ["a.png", "b.png", "c.png"]
    conc = Flag(label="red", box=(0.0, 0.0, 0.25, 0.25), sentence="s", kind="concentration",
                paths=("c.png", "a.png", "gone.png"))
    out = Flag(label="green", box=(0.5, 0.5, 1.0, 1.0), sentence="s", kind="outside_box",
               paths=("b.png",), given_box=(0.1, 0.1, 0.6, 0.6))
    per_image = Flag(label="blue", box=(0.5, 0.5, 1.0, 1.0), sentence="s", kind="outside_box", paths=("a.png",))
    none_left = Flag(label="x", box=(0.0, 0.0, 0.2, 0.2), sentence="s", paths=("gone.png",))
    r = flag_regions([conc, out, per_image, none_left], paths)
    assert [(x.images, x.box, x.inside) for x in r] == [
        ((2, 0), (0.0, 0.0, 0.25, 0.25), True), ((1,), (0.1, 0.1, 0.6, 0.6), False),
        ((0,), (0.5, 0.5, 1.0, 1.0), True)]


def test_dataset_concepts_refuse_bad_input_before_running():
    h = handle()
    imgs = [photo(r=1.0)]
    with pytest.raises(InputError, match="one class index per photo"):
        dataset_concepts(h, imgs, [0, 1], layer="conv")
    with pytest.raises(InputError, match="out of range"):
        dataset_concepts(h, imgs, [7], layer="conv")
    with pytest.raises(InputError, match="not in the set"):
        dataset_concepts(h, imgs, [0], layer="conv", regions=[Region("r", (3,), (0, 0, 1, 1))])
    with pytest.raises(InputError, match="at most"):
        dataset_concepts(h, [photo()] * 501, [0] * 501, layer="conv")


def test_dataset_concepts_leave_the_model_unchanged(model_state):
    h = handle()
    before = model_state.snapshot(h.module)
    dataset_concepts(h, [photo(r=1.0), photo(g=1.0)], [0, 1], layer="conv",
                     regions=[Region("r", (0,), (0, 0, 0.5, 0.5))])
    model_state.assert_unchanged(before, h.module)


# ---------------------------------------------------------------------------------------
# on a stored run of the planted-shortcut model (a watermark in one class's corner)

from test_dataset import planted_result, planted_set, tiny, tiny_model  # noqa: E402,F401  (fixtures)


def test_a_runs_flag_is_carried_by_concepts_in_the_watermark_corner(tiny, planted_result):  # noqa: F811
    from ui import concepts as cx

    r = planted_result
    flags = r.find_flags()
    assert [f.label for f in flags] == ["marked"]
    paths, targets = cx.run_photos(r, flags)
    # at most DATASET_PER_CLASS per class in path order, then the flag's strongest
    counts = {t: targets.count(t) for t in set(targets)}
    assert len(counts) == 3 and len(paths) == len(set(paths)) <= cx.DATASET_MAX
    df = r.table().set_index("path")
    assert all(df.loc[p, "target_index"] == t for p, t in zip(paths, targets))
    marked = int(df.loc[flags[0].paths[0], "target_index"])
    assert all(n == cx.DATASET_PER_CLASS for t, n in counts.items() if t != marked)
    images = [interpret.load_image(r.image_bytes(p)) for p in paths]
    regions = flag_regions(flags, paths)
    # the same corner over another class's photos: what the region holds without the shortcut
    other = tuple(i for i, t in enumerate(targets) if t != marked)
    regions.append(Region("the corner in the other classes", other, regions[0].box))
    result = dataset_concepts(tiny, images, targets, layer="conv2", regions=regions, k=3)
    flagged, control = result.regions
    x0, y0, x1, y1 = flagged.region.box
    area = (x1 - x0) * (y1 - y0)
    print(f"relevance in the flagged corner ({area:.0%} of the photo): marked {flagged.relevance_share:.3f}, "
          f"other classes {control.relevance_share:.3f}; concepts {flagged.concepts}")
    assert flagged.images == len([t for t in targets if t == marked])
    # measured: 0.197 of the marked class's relevance at conv2 lies in the corner (the
    # box is 5% of the photo), 0.038 for the other classes. Bars: more than the corner's
    # area (denser than uniform) and over 3x the other classes' (the shortcut's doing).
    # conv2, not the run's conv3: TinyCNN averages conv3 functionally (x.mean), which
    # LRP's module rules cannot see, so conv3's relevance is spread uniformly
    assert flagged.relevance_share > 1.5 * area and flagged.relevance_share > 3 * max(control.relevance_share, 0.0)
    # the table of the page: per class and per flag, with patches of the flagged photos
    by_class, by_flag = cx.dataset_rows(tiny, result)
    assert len(by_class) == 9 and {row["class"] for row in by_class} == set(tiny.labels)
    assert [row["concept"] for row in by_flag[:3]] == [f"channel {c}" for c, _ in flagged.concepts]
    assert by_flag[0]["patch 1"].startswith("data:image/png;base64,")


def test_the_dataset_page_draws_each_classs_concepts_as_the_backend_computes_them(tmp_path, monkeypatch):
    pytest.importorskip("streamlit.testing.v1")
    from streamlit.testing.v1 import AppTest

    from interpret.dataset import synthetic as syn
    from test_app import ROOT
    from ui import concepts as cx

    handle = interpret.load_model()  # the sidebar's model: the run must be made with it
    folder = syn.write_folder(tmp_path / "set", per_class=2, seed=3)
    r = interpret.analyze_dataset(handle, folder, out=tmp_path / "runs" / "small", batch_size=8, name="small",
                                  class_map={"disc": "daisy", "marked": "maze", "square": "mosque"})
    monkeypatch.setenv("INTERPRET_DATASET_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    at = AppTest.from_file(str(ROOT / "pages" / "6_Dataset.py"), default_timeout=240)
    at.run()
    at.segmented_control(key="w_ds_source").set_value("stored").run()
    at.button(key="ds_open_stored").click().run()
    assert not at.exception, [e.value for e in at.exception]
    at.button(key="cx_dataset_btn").click().run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    shown = [d.value for d in at.dataframe if "concept" in d.value.columns][0]
    # the same classes, concepts and shares as the backend on the same photos
    paths, targets = cx.run_photos(r, [])
    images = [interpret.load_image(r.image_bytes(p)) for p in paths]
    want = dataset_concepts(handle, images, targets, layer=r.settings.layer, k=3)
    rows = [(handle.label(c), f"channel {ch}", s) for c, _, top in want.by_class for ch, s in top]
    assert list(zip(shown["class"], shown["concept"])) == [(a, b) for a, b, _ in rows]
    np.testing.assert_allclose(shown["share"].astype(float), [s for _, _, s in rows], rtol=1e-4, atol=1e-6)
    assert shown["patch 1"].notna().sum() >= 1

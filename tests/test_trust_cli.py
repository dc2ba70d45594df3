"""``python -m interpret trust``: the numbers the library gives, as text or JSON, a
report file, and one-line errors."""

from __future__ import annotations

import json

import pytest

import interpret
from interpret.cli import main

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def cup_jpg(tmp_path_factory, coffee):
    path = tmp_path_factory.mktemp("trust-cli") / "cup.jpg"
    coffee.save(path, quality=92)
    return path


def test_json_gives_the_librarys_numbers_and_the_sanity_check(cup_jpg, capsys, lite0):
    code = main(["trust", str(cup_jpg), "--method", "gradcam", "--steps", "4", "--seeds", "2",
                 "--sanity", "--sanity-layers", "2", "--box", "0,0,224,112", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    image = interpret.load_image(cup_jpg)
    e = interpret.explain(lite0, image, "gradcam")
    f = interpret.faithfulness(lite0, image, e, steps=4, seeds=2)
    assert out["target_label"] == "espresso" and out["faithfulness"]["verdict"] == f.verdict
    assert out["faithfulness"]["deletion_auc"] == pytest.approx(f.deletion_auc)
    assert out["faithfulness"]["insertion"] == pytest.approx(f.insertion.tolist())
    assert out["sanity_check"]["steps"] == ["_fc", "_bn1"]
    assert out["sanity_check"]["status"] in ("passed", "failed")
    loc = interpret.localization(e.heatmap, (0, 0, 224, 112))
    assert out["localization"]["mass"] == pytest.approx(loc.mass)


def test_text_output_and_a_report(cup_jpg, capsys, tmp_path):
    report = tmp_path / "trust.html"
    code = main(["trust", str(cup_jpg), "-m", "gradcam", "--steps", "4", "--seeds", "1",
                 "--report", str(report)])
    text = capsys.readouterr().out
    assert code == 0
    assert text.startswith("Grad-CAM for 'espresso' at layer _blocks.15: ")
    assert "Showing the photo back in the map's order" in text and "sanity check not run" in text
    assert report.exists() and "<img" in report.read_text()


def test_bad_input_is_one_line_and_status_2(cup_jpg, capsys):
    assert main(["trust", str(cup_jpg), "--box", "1,2,3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --box takes x0,y0,x1,y1") and len(err.splitlines()) == 1
    assert main(["trust", str(cup_jpg), "--method", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error: Unknown method 'nope'")
    assert main(["trust", str(cup_jpg), "--report", "out.txt"]) == 2

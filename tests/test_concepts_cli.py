"""``python -m interpret concepts ...``: the library's numbers as JSON or text, and
one-line errors."""

from __future__ import annotations

import json

import pytest

import interpret
from interpret.cli import main

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def cup_jpg(tmp_path_factory, coffee):
    path = tmp_path_factory.mktemp("concepts-cli") / "cup.jpg"
    coffee.save(path, quality=92)
    return path


def test_top_json_gives_the_librarys_concepts(cup_jpg, capsys, lite0):
    code = main(["concepts", "top", str(cup_jpg), "--k", "3", "--json"])
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert code == 0
    cs = interpret.concepts(lite0, interpret.load_image(cup_jpg), k=3)
    assert out["target_label"] == "espresso" and out["layer"] == cs.layer
    assert [c["channel"] for c in out["concepts"]] == cs.channels
    assert [c["share"] for c in out["concepts"]] == pytest.approx([c.relevance for c in cs])
    assert "concept heatmaps: 3/3" in captured.err


def test_top_text_and_bad_input(cup_jpg, capsys):
    assert main(["concepts", "top", str(cup_jpg), "--k", "2"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("'espresso' here ") and text.count("of the layer's relevance") == 2
    assert main(["concepts", "top", str(cup_jpg), "--k", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: k must be a whole number") and len(err) == 1

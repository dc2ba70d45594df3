"""``--prompts`` makes an open_clip model an image-text model in the CLI: predict lists
the prompts with the model's own zero-shot probabilities, explain explains any prompt
(rather than another), --reference explains a similarity; an embedding model without
a reference is a one-line error."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from interpret.cli import main

pytestmark = pytest.mark.usefixtures("single_thread")

pytest.importorskip("open_clip")


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    p = tmp_path_factory.mktemp("cli") / "p.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (240, 260, 3), dtype=np.uint8)).save(p)
    return p


MODEL = ["--model", "open_clip:ViT-B-32", "--random-init"]


def test_predict_lists_the_prompts_with_the_models_own_probabilities(photo, capsys):
    assert main(["predict", str(photo), *MODEL, "--json", "--prompts", "a cat", "a dog"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["label"] for r in rows} == {"a cat", "a dog"}
    assert sum(r["probability"] for r in rows) == pytest.approx(1.0, abs=1e-5)
    assert all(r["task"] == "image-text" for r in rows)  # the numbers: tests/test_imagetext.py


def test_explain_takes_any_prompt_rather_than_another(photo, tmp_path, capsys):
    out = tmp_path / "m.png"
    rc = main(["explain", str(photo), *MODEL, "--prompts", "a cat", "a dog", "--target", "a zebra",
               "--contrast", "a cat", "--out", str(out), "--json"])
    assert rc == 0 and out.is_file()
    info = json.loads(capsys.readouterr().out)
    assert info["explained"] == "the prompt “a zebra” rather than “a cat”"


def test_an_embedding_model_needs_a_reference(photo, tmp_path, capsys):
    out = tmp_path / "m.png"
    assert main(["explain", str(photo), *MODEL, "--out", str(out)]) == 2
    assert "--reference" in capsys.readouterr().err
    assert main(["explain", str(photo), *MODEL, "--reference", str(photo), "--out", str(out),
                 "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["score"] == pytest.approx(1.0, abs=1e-4)  # a photo is like itself

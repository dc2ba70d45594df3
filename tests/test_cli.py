"""The command line: real subprocesses, real outputs, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "interpret", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def cat_jpg(tmp_path_factory):
    from skimage import data

    path = tmp_path_factory.mktemp("cli") / "cat.jpg"
    Image.fromarray(data.chelsea()).save(path, quality=92)
    return path


def test_predict_names_a_cat_class_first(cat_jpg):
    r = run("predict", str(cat_jpg), "--top-k", "3", "--json")
    assert r.returncode == 0, r.stderr
    preds = json.loads(r.stdout)
    assert len(preds) == 3
    assert preds[0]["index"] in (281, 282, 283, 284, 285)  # ImageNet cat classes
    assert preds[0]["probability"] >= preds[1]["probability"] >= preds[2]["probability"]
    assert sum(p["probability"] for p in preds) > 0.5  # cat classes hold most of the mass


def test_explain_writes_an_overlay_and_a_truthful_summary(cat_jpg, tmp_path):
    out = tmp_path / "gc.png"
    r = run("explain", str(cat_jpg), "--method", "gradcam", "--target", "tabby", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["target"] == 281 and summary["target_label"] == "tabby"
    assert summary["layer"] == "_blocks.15"
    img = np.asarray(Image.open(out))
    assert img.shape == (224, 224, 3)
    # an overlay differs from the plain model view of the photo
    import interpret

    model = interpret.load_model()
    view = np.asarray(model.preprocessing.model_view(interpret.load_image(cat_jpg)), dtype=float)
    assert np.abs(img.astype(float) - view).mean() > 5


def test_explain_with_param_and_contrast(cat_jpg, tmp_path):
    out = tmp_path / "occ.png"
    r = run("explain", str(cat_jpg), "-m", "occlusion", "-p", "window=112", "-p", "stride=112",
            "--target", "281", "--contrast", "tiger cat", "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["params"]["window"] == 112 and s["contrast"] == 282
    assert s["extras"]["windows"] == 4


@pytest.mark.parametrize(
    "args, needle",
    [
        (["predict", "/nonexistent/cat.jpg"], "does not exist"),
        (["explain", "{cat}", "-m", "nope", "-o", "{tmp}/x.png"], "Unknown method"),
        (["explain", "{cat}", "-m", "gradcam", "--layer", "_blocks.99", "-o", "{tmp}/x.png"], "no layer named"),
        (["explain", "{cat}", "-m", "gradcam", "--target", "1000", "-o", "{tmp}/x.png"], "out of range"),
        (["explain", "{cat}", "-m", "gradcam", "--target", "zebra crossing xyz", "-o", "{tmp}/x.png"], "No class"),
        (["explain", "{cat}", "-m", "occlusion", "-p", "window=9999", "-o", "{tmp}/x.png"], "out of range"),
        (["predict", "{cat}", "--model", "torchvision:not_a_net"], "not a torchvision"),
        (["predict", "{cat}", "--model", "{tmp}/weights.pth"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, needle, cat_jpg, tmp_path, capsys):
    # in-process (same code path as `python -m interpret`, without a torch import per case)
    from interpret.cli import main

    args = [a.format(cat=cat_jpg, tmp=tmp_path) for a in args]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0]
    assert "Traceback" not in err


def test_non_image_file_is_refused_cleanly(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a picture")
    r = run("predict", str(bad))
    assert r.returncode == 2
    assert "not an image" in r.stderr and "Traceback" not in r.stderr


def test_methods_and_layers_list_the_registry_and_the_default(cat_jpg):
    r = run("methods", "--json")
    assert r.returncode == 0
    names = [m["name"] for m in json.loads(r.stdout)]
    import interpret

    assert names == [m.name for m in interpret.methods()]
    r = run("layers", "--spatial", "--json")
    assert r.returncode == 0
    layers = json.loads(r.stdout)
    default = [l for l in layers if l["default"]]
    assert [l["name"] for l in default] == ["_blocks.15"]
    assert default[0]["output_shape"] == [1, 320, 7, 7]

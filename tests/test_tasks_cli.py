"""The command line on a segmentation model and with --task (issue 19): predict lists
the classes with their share of the pixels, explain takes a box in the photo's pixels
(--region) and names what it explained in words; a task that does not fit the output
is a one-line error that describes the output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "assets" / "samples" / "cat.jpg"
SEG = ["--model", "torchvision:lraspp_mobilenet_v3_large", "--random-init"]


def run(*args, timeout=400):
    return subprocess.run([sys.executable, "-m", "interpret", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={"INTERPRET_OFFLINE": "1", "PATH": "/usr/bin:/bin"})


def test_predict_lists_segmentation_classes_with_their_pixel_shares():
    r = run("predict", str(PHOTO), *SEG, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["task"] == "segmentation"
    shares = [c["share"] for c in out["classes"]]
    assert 0 < sum(shares) <= 1.0 + 1e-9 and shares == sorted(shares, reverse=True)


def test_explain_a_box_of_a_class_names_it_in_words(tmp_path):
    r = run("explain", str(PHOTO), *SEG, "--target", "0", "--region", "10,10,200,150",
            "--out", str(tmp_path / "m.png"), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["explained"] == "the class __background__ inside the chosen box"
    assert (tmp_path / "m.png").stat().st_size > 0


def test_a_task_that_does_not_fit_is_one_line_that_describes_the_output():
    r = run("predict", str(PHOTO), *SEG, "--task", "multilabel")
    assert r.returncode == 2
    assert "per pixel" in r.stderr and "(1, 21, 520, 520)" in r.stderr
    assert "Traceback" not in r.stderr

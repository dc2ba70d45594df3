"""The first command brings every model source (issue 17): `make app` installs the
package's default dependencies, and those include timm, Hugging Face transformers, onnx
and its converter; the README says so; and on this install the upload form offers every
source (its caption is computed from what is importable: tests/test_upload_form.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: the import/pip names every model source needs (ui/upload.py's _PACKAGES)
MODEL_SOURCES = {"timm": ["timm"], "hf": ["transformers"], "onnx": ["onnx", "onnx2torch"]}


def _name(requirement: str) -> str:
    """A requirement's distribution name, normalised (PEP 503)."""
    name = re.split(r"[\s\[<>=!~;@(]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _default_dependencies() -> set:
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    return {_name(r) for r in project["dependencies"]}


def test_default_install_includes_every_model_source():
    """Defect: `make app` installed no timm, Hugging Face or ONNX support."""
    deps = _default_dependencies()
    for lib, packages in MODEL_SOURCES.items():
        for p in packages:
            assert p in deps, f"{p} ({lib}) is not in pyproject's default dependencies"
    assert "open-clip-torch" in deps, "open_clip (image-text models by name) is not in the default install"
    from ui import upload

    assert {lib: list(p) for lib, p in upload._PACKAGES.items()} == MODEL_SOURCES


def test_make_app_installs_the_default_dependencies():
    """`make app` runs `pip install -e .` (the default set above), then the app."""
    if shutil.which("make") is None:
        pytest.skip("no make on this machine")
    out = subprocess.run(["make", "-n", "app", "VENV=/nonexistent-venv"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert re.search(r"/nonexistent-venv/bin/pip install -e \.\s*$", out, re.MULTILINE), out
    assert "streamlit run app.py" in out


def test_readme_says_the_first_command_brings_every_model_source():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    assert "make app" in section
    for word in ("timm", "transformers", "onnx2torch", "no other install step"):
        assert word in section, word


def test_this_install_reads_every_model_source():
    """The environment made from pyproject (what the tests run in) has every source, so
    the upload form offers them all and its caption names no missing package."""
    from ui import upload

    assert upload.available_libraries() == list(upload.LIBRARIES)
    caption = upload.upload_caption(upload.available_libraries(), False)
    assert "Not installed" not in caption and "ONNX graphs" in caption and "Hugging Face" in caption

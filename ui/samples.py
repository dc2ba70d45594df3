"""The sample photos shipped in assets/samples/ (made by assets/make_samples.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "samples"

# Titles and one-line stories for the gallery; files not listed here still appear,
# titled after their file name.
_KNOWN = {
    "cat": ("Cat", "A close-up of Chelsea the cat: the model hesitates between three cat breeds."),
    "espresso": ("Espresso", "A cup of espresso on a saucer: an easy, confident prediction."),
    "cat_and_cup": ("Cat and cup", "Two objects in one photo: explain 'cat' and then 'espresso' and watch the map move."),
    "rocket": ("Rocket launch", "A rocket on its launch pad: ImageNet calls it a missile."),
    "motorbike": ("Motorbike", "A motorbike in a garage, in a cluttered scene."),
    "cameraman": ("Cameraman", "A black-and-white photo of a man with a camera on a tripod."),
    "astronaut": ("Astronaut", "A portrait of an astronaut: 'person' is not an ImageNet class, so the model guesses."),
}
_ORDER = list(_KNOWN)


@dataclass(frozen=True)
class Sample:
    key: str  # file stem, used in URLs (?img=cat)
    title: str
    caption: str
    path: Path


def samples() -> List[Sample]:
    """Every sample photo, the known ones first in a fixed order."""
    files: Dict[str, Path] = {}
    if SAMPLES_DIR.is_dir():
        for p in sorted(SAMPLES_DIR.iterdir()):
            if p.suffix.lower() in (".jpg", ".jpeg", ".png") and p.stem not in files:
                files[p.stem] = p
    keys = [k for k in _ORDER if k in files] + sorted(k for k in files if k not in _KNOWN)
    out = []
    for k in keys:
        title, caption = _KNOWN.get(k, (k.replace("_", " ").capitalize(), ""))
        out.append(Sample(k, title, caption, files[k]))
    return out


def sample(key: str) -> Sample | None:
    for s in samples():
        if s.key == key:
            return s
    return None


DEFAULT_SAMPLE = "cat"

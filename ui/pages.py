"""The dashboard's pages, listed once: the sidebar's navigation and the Home page's
"where to go next" links both read :data:`PAGES`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Page:
    path: str        # relative to the app's folder, as st.page_link wants it
    label: str
    icon: str
    summary: str     # one line for the Home page ("" = not listed there)

    @property
    def exists(self) -> bool:
        return (ROOT / self.path).exists()


PAGES = (
    Page("app.py", "Home", ":material/home:", ""),
    Page("pages/1_Outputs.py", "Outputs", ":material/bar_chart:",
         "**Outputs**: all the model's guesses and how sure it is"),
    Page("pages/2_Input.py", "Input", ":material/image:", "**Input**: exactly what the model receives"),
    Page("pages/3_Activations.py", "Activations", ":material/grid_view:",
         "**Activations**: what each layer responds to"),
    Page("pages/4_Attributions.py", "Attributions", ":material/local_fire_department:",
         "**Attributions**: which pixels made it decide"),
    Page("pages/5_Features.py", "Features", ":material/auto_awesome:",
         "**Features**: what a layer's channels look for"),
    Page("pages/6_Dataset.py", "Dataset", ":material/dataset:",
         "**Dataset**: a whole labelled image set, and where the model looks for the wrong reasons"),
    Page("pages/7_Concepts.py", "Concepts", ":material/extension:",
         "**Concepts**: which learnt concepts a decision rests on, and whether the model uses yours"),
)


def pages() -> List[Page]:
    """The pages that exist in this checkout, in menu order."""
    return [p for p in PAGES if p.exists]

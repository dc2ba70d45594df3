"""How far to trust a heatmap: faithfulness, a randomisation sanity check, agreement
between methods and localisation, each a measure in a small registry.

>>> e = interpret.explain(model, image, "gradcam")
>>> f = interpret.faithfulness(model, image, e)          # deletion / insertion vs random maps
>>> f.verdict, f.sentence                                # "faithful" | "weak" | "no better than random"
>>> interpret.sanity_check(model, image, "gradcam").passed   # Adebayo et al. 2018, on a copy
>>> interpret.agreement([e, e2]).matrix                  # Spearman between maps
>>> interpret.localization(e.heatmap, (10, 20, 120, 140)).hit
>>> interpret.trust.measures()                           # what each measures, its paper and cost

Every measure leaves the model exactly as it was (the sanity check randomises a deep
copy); the long ones take ``progress(done, total)`` and stop on
:class:`interpret.Cancelled`.
"""

from .agreement import Agreement, agreement
from .context import BoxContext, box_context
from .faithfulness import (FAITHFUL, RANDOM, VERDICTS, WEAK, DeletionInsertion, Faithfulness,
                           estimate, faithfulness, verdict)
from .localization import Localization, box_mask, localization
from .registry import MeasureSpec, get_measure, measures
from .road import ROAD, Road, road
from .sanity import SANITY_THRESHOLD, ModelRandomisation, SanityCheck, sanity_check
from ._common import BASELINES, spearman, ssim

__all__ = [
    "Agreement", "agreement", "Faithfulness", "DeletionInsertion", "faithfulness", "estimate", "verdict",
    "VERDICTS", "FAITHFUL", "WEAK", "RANDOM", "Localization", "localization", "box_mask",
    "MeasureSpec", "measures", "get_measure", "Road", "ROAD", "road", "SanityCheck",
    "ModelRandomisation", "sanity_check", "SANITY_THRESHOLD", "BASELINES", "spearman", "ssim",
    "BoxContext", "box_context",
]

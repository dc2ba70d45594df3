"""Concepts: which learnt concepts make up a decision, where each one sits in the photo,
and whether the model uses a concept a team names.

* :func:`concepts` -- the top channels of a layer by their relevance to a decision,
  each with its share and its own heatmap (Concept Relevance Propagation);
* :func:`reference_patches` -- where each channel is most relevant across an image set
  (CRP's relevance maximisation);
* :func:`discover_concepts` -- a non-negative factorisation of a layer's activations
  over an image set into k concepts;
* :func:`dataset_concepts` -- dataset mode: each class's most relevant concepts across a
  set, and the concepts that carry a region (a shortcut flag's);
* :func:`name_concept` -- the name a team gives a concept (``.name`` of the results);
* :func:`tcav` -- Testing with Concept Activation Vectors (Captum), with the paper's
  significance test against random concept sets.
"""

from .crp import (Concept, ConceptSet, Reference, ReferenceTable, concepts, conditional_relevance,
                  reference_patches)
from .dataset import DatasetConcepts, Region, RegionConcepts, dataset_concepts, flag_regions
from .discover import DiscoveredConcept, Discovery, discover_concepts
from .tcav import TcavResult, significance_sentence, tcav
from .store import concept_names, name_concept
from .words import concept_caption, concept_label, concept_sentence

__all__ = ["Concept", "ConceptSet", "Reference", "ReferenceTable", "concepts", "conditional_relevance",
           "reference_patches", "DiscoveredConcept", "Discovery", "discover_concepts", "TcavResult",
           "significance_sentence", "tcav", "concept_sentence", "concept_caption", "DatasetConcepts", "Region",
           "RegionConcepts", "dataset_concepts", "flag_regions", "name_concept", "concept_names", "concept_label"]

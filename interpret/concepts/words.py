"""Concepts in words: every sentence a pure function of the numbers it rests on."""

from __future__ import annotations

from typing import Sequence, Tuple


def concept_sentence(target: str, shares: Sequence[Tuple[str, float]]) -> str:
    """One sentence for a stakeholder: ``target`` (a label, plain text: the caller
    escapes it for a page) rests on the concepts ``shares`` ((name, share of the
    layer's relevance) pairs, largest first).  Only positive shares are evidence for
    the decision; the sentence names at most three and says how much of the layer's
    relevance they hold together."""
    pos = [(n, s) for n, s in shares if s > 0]
    if not pos:
        return f"No single concept of this layer speaks for {target}: every concept's relevance is zero or against it."
    named = pos[:3]
    parts = [f"{n} ({round(100 * s)}%)" for n, s in named]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    together = sum(s for _, s in named)
    if together >= 0.5:
        lead = "rests mostly on"
    elif together >= 0.2:
        lead = "rests partly on"
    else:
        lead = "is spread over many concepts; the largest are"
    return f"{target} here {lead} {listed}."

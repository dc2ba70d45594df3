"""Concepts in words: every sentence a pure function of the numbers it rests on."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

__all__ = ["concept_sentence", "concept_caption", "concept_label"]


def concept_sentence(target: str, shares: Sequence[Tuple[str, float]]) -> str:
    """One sentence for a stakeholder: ``target`` (a label, plain text: the caller
    escapes it for a page) rests on the concepts ``shares`` ((name, share of the
    layer's relevance) pairs, largest first).  Only positive shares are evidence for
    the decision; the sentence names at most three and says how much of the layer's
    relevance they hold together.  Where a name has a comma of its own (a described
    concept, :func:`concept_label`), the concepts are listed with semicolons."""
    pos = [(n, s) for n, s in shares if s > 0]
    if not pos:
        return f"No single concept of this layer speaks for {target}: every concept's relevance is zero or against it."
    named = pos[:3]
    parts = [f"{n} ({round(100 * s)}%)" for n, s in named]
    sep = "; " if any("," in n for n, _ in named) else ", "
    last = "; and " if sep == "; " and len(parts) > 2 else " and "
    listed = parts[0] if len(parts) == 1 else sep.join(parts[:-1]) + last + parts[-1]
    together = sum(s for _, s in named)
    if together >= 0.5:
        lead = "rests mostly on"
    elif together >= 0.2:
        lead = "rests partly on"
    else:
        lead = "is spread over many concepts; the largest are"
    return f"{target} here {lead} {listed}."


def _percent(share: float) -> str:
    p = abs(float(share))
    return "less than 1%" if 0 < p < 0.005 else f"{round(100 * p)}%"


def concept_caption(name: str, share: float, target: str) -> str:
    """The caption of one concept's picture in the plain report: ``name`` (plain text),
    its ``share`` of the layer's relevance (signed; the share of the absolute total)
    and the decision ``target`` (plain text; the caller escapes both).  The picture
    shows where the concept's relevance for the target is positive."""
    if share != share:  # NaN: nothing to say
        return f"Where {name} lies on the photo."
    lead = name[:1].upper() + name[1:]
    if share > 0:
        return f"Bright where {name} counts for {target}; it carries {_percent(share)} of what this layer weighs."
    if share < 0:
        return (f"{lead} counts against {target} overall ({_percent(share)} of what this layer weighs); "
                "bright where it still counts for it.")
    return f"{lead} counts neither for nor against {target}."


def concept_label(channel: int, name: Optional[str] = None, where: Sequence[str] = ()) -> str:
    """How a concept is called: the ``name`` the team gave it (plain text; the caller
    escapes it for a page) when it has one; else ``"channel 12"``, followed by where it
    is most relevant in the reference set when that is known: ``where`` holds the
    classes the model gives the photos of the channel's top reference patches (one per
    patch, most relevant first; plain text).  At most two classes are named, the most
    frequent first (ties: the one of the more relevant patch); "or others" says when
    the patches' photos have more classes than named."""
    if name:
        return name
    base = f"channel {int(channel)}"
    if not where:
        return base
    counts = {}
    for i, cls in enumerate(where):
        n, first = counts.get(cls, (0, i))
        counts[cls] = (n + 1, first)
    order = sorted(counts, key=lambda c: (-counts[c][0], counts[c][1]))
    shown = order[:2]
    if len(order) > 2:
        classes = f"{shown[0]}, {shown[1]} or others"
    elif len(order) == 2:
        classes = f"{shown[0]} or {shown[1]}"
    else:
        classes = shown[0]
    return f"{base}, most relevant on photos the model calls {classes}"

"""Tiny image-text and embedding models built in the tests (no downloads)."""

from __future__ import annotations

import torch

open_clip = __import__("pytest").importorskip("open_clip")


def tiny_clip(seed: int = 0, image_size: int = 64, patch: int = 16, width: int = 64, layers: int = 2,
              embed: int = 32):
    """An open_clip ``CLIP`` with a 2-block ViT image tower (64x64 photos, a 4x4 patch
    grid) and a 2-block text tower on open_clip's own tokenizer (it ships with the
    package): the real classes, a small config, random init."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        m = open_clip.CLIP(embed_dim=embed,
                           vision_cfg=dict(image_size=image_size, layers=layers, width=width,
                                           patch_size=patch, head_width=32),
                           text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=2))
    return m.eval()


def tokenizer():
    return open_clip.tokenizer.SimpleTokenizer(context_length=77)

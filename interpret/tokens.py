"""Token layouts: how a layer's output maps onto the image.

Convolutional layers output B x C x h x w maps.  Vision transformers output B x N x C
tokens: some prefix tokens (a class token, distillation or register tokens) followed
by the patch grid; Swin outputs channels-last B x h x w x C maps.  A model's
:class:`TokenLayout` says which, so that every method sees B x C x h x w maps without
a ``reshape_transform`` from the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch


def token_grid(n: int, prefix: Optional[int] = None,
               grid: Optional[Tuple[int, int]] = None) -> Optional[Tuple[int, int, int]]:
    """For a token count ``n``, (prefix, h, w): how many leading tokens to skip and the
    patch grid, or None.  A known ``grid`` (h, w) fixes the prefix as ``n - h*w``; a
    known ``prefix`` leaves a square grid; otherwise the common prefixes (1: a class
    token; 0; 2: class + distillation; 5: class + 4 registers) are tried in turn."""
    if grid is not None:
        h, w = grid
        skip = n - h * w
        if skip >= 0 and (prefix is None or prefix == skip):
            return skip, h, w
        return None
    for skip in ((prefix,) if prefix is not None else (1, 0, 2, 5)):
        m = n - skip
        r = int(round(math.sqrt(m))) if m > 0 else 0
        if r > 1 and r * r == m:
            return skip, r, r
    return None


@dataclass(frozen=True)
class TokenLayout:
    """``channels_last``: 4-D outputs are B x h x w x C (Swin).  ``prefix_tokens``: the
    class/register tokens before the patch grid (None: inferred from the token count).
    ``grid``: the patch grid (h, w) at the model's input size (None: square)."""

    channels_last: bool = False
    prefix_tokens: Optional[int] = None
    grid: Optional[Tuple[int, int]] = None

    def to_spatial(self, t: torch.Tensor) -> Optional[torch.Tensor]:
        """A B x C x h x w view of a layer output, or None if it has no spatial layout:
        maps as they are, channels-last maps permuted, tokens without their prefix on
        the patch grid."""
        if t.dim() == 4:
            if self.channels_last and t.shape[1] == t.shape[2] and t.shape[3] != t.shape[2]:
                return t.permute(0, 3, 1, 2)
            if self.channels_last and self.grid is not None and tuple(t.shape[1:3]) == tuple(self.grid):
                return t.permute(0, 3, 1, 2)
            return t
        if t.dim() == 3:
            g = token_grid(t.shape[1], self.prefix_tokens, self.grid)
            if g is None and self.grid is not None:  # a stage at another resolution
                g = token_grid(t.shape[1], self.prefix_tokens)
            if g is None:
                return None
            skip, h, w = g
            return t[:, skip:, :].reshape(t.shape[0], h, w, t.shape[2]).permute(0, 3, 1, 2)
        return None

    def to_maps(self, t: torch.Tensor) -> Optional[torch.Tensor]:
        """Like :meth:`to_spatial`, and vectors (B x C) as 1 x 1 maps."""
        s = self.to_spatial(t)
        if s is None and t.dim() == 2:
            return t[:, :, None, None]
        return s

    def is_spatial(self, shape) -> bool:
        """Whether an output of ``shape`` can be drawn as maps larger than 1 x 1."""
        if shape is None:
            return False
        s = self.to_spatial(torch.empty(shape, device="meta"))
        return s is not None and (s.shape[2] > 1 or s.shape[3] > 1)

    def map_shape(self, shape) -> Optional[Tuple[int, int, int]]:
        """(C, h, w) of the maps of an output of ``shape`` (vectors: 1 x 1), or None."""
        if shape is None:
            return None
        s = self.to_maps(torch.empty(shape, device="meta"))
        return None if s is None else (int(s.shape[1]), int(s.shape[2]), int(s.shape[3]))

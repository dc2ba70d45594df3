"""ROAD: RemOve And Debias (Rong et al. 2022, "A Consistent and Efficient Evaluation
Strategy for Attribution Methods", ICML, arXiv:2202.00449).

Replacing removed pixels with a constant or a blur leaks *which* pixels were removed:
the shape of the hole alone can tell the model the class (the paper's section 3).  ROAD
fills the hole by **noisy linear imputation** (section 4.2): each removed pixel becomes
the weighted mean of its 8 neighbours (weight 1/6 for the four direct ones, 1/12 for
the diagonals), solved jointly for all removed pixels, plus a little Gaussian noise,
so that the filled image carries (almost) no trace of the removal pattern.  It then
measures the class probability with the most relevant pixels removed first (MoRF,
lower is better) and with the least relevant removed first (LeRF, higher is better);
the paper recommends looking at both, and ``gap = mean(LeRF) - mean(MoRF)`` (twice
pytorch-grad-cam's ``ROADCombined``) is positive for a faithful map and zero in
expectation for a random one (MoRF and LeRF of a random order are the same thing).

The imputation solves the paper's linear system (pytorch-grad-cam's
``NoisyLinearImputer`` builds it as a sparse matrix and calls ``spsolve`` per image and
level) by conjugate gradients with a multilevel (BPX) preconditioner, the system written as
two 3 x 3 convolutions, started from a coarse-to-fine guess; it agrees with
``spsolve`` to about 1e-4 (tests) and needs no SciPy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError, Progress
from ..methods.registry import Cost
from ._common import Forwards, Target, cache, order_of, probabilities, read_map
from .registry import measure

__all__ = ["Road", "ROAD", "road", "impute", "ROAD_FRACTIONS"]

#: the removal levels of pytorch-grad-cam's ROAD averagers (10%, 20%, ..., 90%)
ROAD_FRACTIONS: Tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

# Rong et al. 2022, section 4.2: the neighbours' weights (sum 1)
_W = torch.tensor([[1 / 12, 1 / 6, 1 / 12],
                   [1 / 6, 0.0, 1 / 6],
                   [1 / 12, 1 / 6, 1 / 12]], dtype=torch.float64)


def _neighbours(v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Sum of the in-image neighbours of every pixel, weighted (zero outside)."""
    c = v.shape[1]
    return F.conv2d(v, w.expand(c, 1, 3, 3), padding=1, groups=c)


def _multilevel(m: torch.Tensor, levels: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """An additive multilevel preconditioner for the imputation system (BPX, Bramble,
    Pasciak & Xu 1990): ``M r = m * sum_l P_l (P_l^T r) / 2^l``, with ``P_l`` the
    piecewise-constant prolongation from blocks of 2^l x 2^l pixels (its transpose sums
    a block) and ``1 / 2^l`` the inverse of the block's diagonal in the Galerkin operator
    (a block's coupling grows with its perimeter).  Every term is positive
    semi-definite and the first is the identity on the removed pixels, so ``M`` is
    symmetric positive definite there and conjugate gradients stay valid; it cuts the
    iterations a large hole needs from hundreds to tens, because the smooth part of
    the error is corrected on the coarse blocks."""

    def down(v: torch.Tensor) -> torch.Tensor:  # P^T: sum over 2 x 2 blocks
        h, w = v.shape[-2:]
        v = F.pad(v, (0, w % 2, 0, h % 2))
        return F.avg_pool2d(v, 2) * 4

    def apply(r: torch.Tensor) -> torch.Tensor:
        pyramid = [r]
        for _ in range(levels):
            if min(pyramid[-1].shape[-2:]) < 2:
                break
            pyramid.append(down(pyramid[-1]))
        acc = pyramid[-1] / 2 ** (len(pyramid) - 1)
        for lev in range(len(pyramid) - 2, -1, -1):
            h, w = pyramid[lev].shape[-2:]
            up = F.interpolate(acc, scale_factor=2.0, mode="nearest")[..., :h, :w]
            acc = up + pyramid[lev] / 2 ** lev
        return m * acc

    return apply


def _solve(x: torch.Tensor, removed: torch.Tensor, tol: float, max_iter: int) -> torch.Tensor:
    """The noiseless imputation: for every removed pixel i, ``s_i x_i - sum_j w_ij x_j
    = 0`` (its value is the weighted mean of its in-image neighbours, removed or not),
    solved for all removed pixels of every image by batched conjugate gradients with
    the multilevel preconditioner above, until the residual is ``tol`` of the right-hand
    side's.  ``x``: N x C x H x W; ``removed``: N x 1 x H x W bool."""
    x = x.float()
    m = removed.float().expand_as(x)
    w = _W.to(device=x.device, dtype=x.dtype)[None, None]
    s = _neighbours(torch.ones_like(x[:1, :1]), w)  # sum of the in-image weights

    def A(v):  # symmetric positive definite on the removed pixels
        return m * (s * v - _neighbours(m * v, w))

    precondition = _multilevel(m, levels=12)
    b = m * _neighbours((1 - m) * x, w)
    v = _initial_guess(x, removed, tol, max_iter) * m
    r = b - A(v)
    z = precondition(r)
    p = z.clone()
    rz = (r * z).sum(dim=(2, 3), keepdim=True)
    bnorm = (b * b).sum(dim=(2, 3), keepdim=True).clamp_min(1e-30)
    for _ in range(max_iter):
        if bool(((r * r).sum(dim=(2, 3), keepdim=True) <= (tol * tol) * bnorm).all()):
            break
        Ap = A(p)
        alpha = rz / (p * Ap).sum(dim=(2, 3), keepdim=True).clamp_min(1e-30)
        v = v + alpha * p
        r = r - alpha * Ap
        z = precondition(r)
        rz_new = (r * z).sum(dim=(2, 3), keepdim=True)
        p = z + (rz_new / rz.clamp_min(1e-30)) * p
        rz = rz_new
    return v * m + x * (1 - m)


def _initial_guess(x: torch.Tensor, removed: torch.Tensor, tol: float, max_iter: int) -> torch.Tensor:
    """A coarse-to-fine start for the solver: the same system solved at half the
    resolution (recursively), upsampled.  Conjugate gradients fix fine detail in a few
    steps but need many for the smooth part of a large hole; the coarse grid gets that
    part cheaply (the idea of multigrid)."""
    h, w = x.shape[-2:]
    if min(h, w) < 16:
        known = (~removed).to(x.dtype)
        mean = (x * known).sum(dim=(2, 3), keepdim=True) / known.sum(dim=(2, 3), keepdim=True).clamp_min(1)
        return mean.expand_as(x)
    keep = (~removed).to(x.dtype)
    keep_c = F.avg_pool2d(keep, 2, ceil_mode=True)
    x_c = F.avg_pool2d(x * keep, 2, ceil_mode=True) / keep_c.clamp_min(1e-12)
    removed_c = keep_c == 0
    if bool(removed_c.all()):
        coarse = _initial_guess(x_c, removed_c, tol, max_iter)
    else:
        coarse = _solve(x_c, removed_c, tol * 10, max_iter)
    return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)


def impute(x: torch.Tensor, removed: torch.Tensor, noise: float = 0.01,
           generator: Optional[torch.Generator] = None, tol: float = 1e-6,
           max_iter: int = 2000) -> torch.Tensor:
    """Noisy linear imputation (Rong et al. 2022, section 4.2) of the ``removed``
    pixels (N x H x W or N x 1 x H x W bool) of ``x`` (N x C x H x W, normalised):
    the linear fill plus ``noise`` times standard Gaussian noise on the filled pixels
    (``generator`` makes it reproducible)."""
    if removed.dim() == 3:
        removed = removed[:, None]
    if bool(removed.all()):
        raise InputError("ROAD cannot fill an image with every pixel removed (nothing to impute from).")
    out = _solve(x, removed, tol, max_iter).to(x.dtype)
    if noise:
        eps = torch.randn(out.shape, generator=generator, dtype=out.dtype).to(out.device)
        out = torch.where(removed.expand_as(out), out + float(noise) * eps, out)
    return out


@dataclass(frozen=True)
class Road:
    """ROAD curves of one map: ``fractions`` removed, the class probability with the
    most relevant pixels removed first (``morf``, lower is better) and the least
    relevant first (``lerf``, higher is better); ``gap = mean(lerf) - mean(morf)``;
    ``probability``: on the full photo."""

    fractions: np.ndarray
    morf: np.ndarray
    lerf: np.ndarray
    probability: float
    noise: float
    forwards: int
    seconds: float

    @property
    def morf_mean(self) -> float:
        return float(np.mean(self.morf))

    @property
    def lerf_mean(self) -> float:
        return float(np.mean(self.lerf))

    @property
    def gap(self) -> float:
        return self.lerf_mean - self.morf_mean

    def as_dict(self) -> dict:
        return {"fractions": self.fractions.tolist(), "morf": self.morf.tolist(),
                "lerf": self.lerf.tolist(), "gap": self.gap, "probability": self.probability}


class ROAD:
    """ROAD as a small callable (Quantus's habit: parameters here, one batched call).

    ``fractions``: the removal levels; ``noise``: the imputation's noise (in
    normalised units, as the paper and pytorch-grad-cam); ``seed``: its generator;
    ``batch_size``: images per forward (None: 4 on a CPU, 32 on a GPU)."""

    def __init__(self, fractions: Sequence[float] = ROAD_FRACTIONS, noise: float = 0.01,
                 seed: int = 0, batch_size: Optional[int] = None):
        fr = tuple(float(f) for f in fractions)
        if not fr or any(not 0.0 < f < 1.0 for f in fr):
            raise InputError("ROAD's fractions must lie strictly between 0 and 1 (e.g. 0.1, ..., 0.9).")
        if noise < 0:
            raise InputError(f"ROAD's noise must be >= 0; got {noise}.")
        self.fractions, self.noise, self.seed = fr, float(noise), int(seed)
        self.batch_size = batch_size

    def forwards(self) -> int:
        return 2 * len(self.fractions)

    def __call__(self, handle, x: torch.Tensor, heatmap: np.ndarray, target: Target,
                 p0: float, progress: Optional[Progress] = None) -> Road:
        t0 = time.perf_counter()
        rank = torch.from_numpy(order_of(heatmap)).to(x.device)
        n = rank.numel()
        jobs = [(f, lerf) for lerf in (False, True) for f in self.fractions]
        bs = self.batch_size or (32 if x.device.type == "cuda" else 4)
        fw = Forwards(handle, target, bs, len(jobs), progress)
        gen = torch.Generator().manual_seed(self.seed)

        def build(start: int, stop: int) -> torch.Tensor:
            masks = []
            for f, lerf in jobs[start:stop]:
                k = int(round(f * n))
                masks.append(rank >= n - k if lerf else rank < k)
            # one image at a time: the solver stops when its own residual is small
            return torch.cat([impute(x, mk[None, None], self.noise, gen) for mk in masks])

        probs = probabilities(fw.run(len(jobs), build), target).numpy().astype(np.float64)
        m = len(self.fractions)
        return Road(np.asarray(self.fractions), probs[:m], probs[m:], float(p0), self.noise,
                    fw.count, time.perf_counter() - t0)


def _cost(handle, params) -> Cost:
    n = 2 * len(params.get("fractions", ROAD_FRACTIONS))
    return Cost(n, n, note="each removal filled by solving a linear system")


@measure("road", label="ROAD (remove and debias)", kind="faithfulness",
         measures="The probability of what is explained (a regressor: its value) as the most "
                  "(and least) relevant pixels are removed "
                  "and filled in from their neighbours, so the shape of the hole gives nothing away.",
         paper="https://arxiv.org/abs/2202.00449",
         citation="Rong et al. 2022, A Consistent and Efficient Evaluation Strategy for Attribution Methods",
         heavy=True, progress=True, cost=_cost)
def road(model, image, explanation, fractions: Sequence[float] = ROAD_FRACTIONS,
         noise: float = 0.01, seed: int = 0, *, target=None, batch_size: Optional[int] = None,
         progress: Optional[Progress] = None) -> Road:
    """ROAD (Rong et al. 2022) of one explanation (or H x W map, with ``target``):
    MoRF and LeRF curves at ``fractions`` with noisy linear imputation.  Heavy (two
    forwards and one linear solve per level): ``progress(done, total)`` reports it and
    raising :class:`interpret.Cancelled` in it stops."""
    from ..capture import logits as _logits
    from ..explain import as_handle, input_tensor
    from ..handle import session

    handle = as_handle(model)
    handle.check_ready()
    x = input_tensor(handle, image)
    m = read_map(handle, x, explanation, target)
    runner = ROAD(fractions, noise, seed, batch_size)
    with session(handle):
        from ..tensors import tensor_key

        key = ("road", handle.fingerprint_fast(), tensor_key(x), m.key, m.target,
               runner.fractions, runner.noise, runner.seed)
        hit = cache(handle).get(key)
        if hit is not None:
            return hit
        p0 = float(probabilities(_logits(handle, x), m.target)[0])
        out = runner(handle, x, m.heatmap, m.target, p0, progress)
    cache(handle).put(key, out)
    return out

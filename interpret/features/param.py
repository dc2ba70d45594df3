"""Image parameterizations (Olah et al., "Feature Visualization", Distill 2017,
section "The Enemy of Feature Visualization" / "Preconditioning and Parameterization").

The optimiser does not move pixels directly.  It moves

* a **Fourier spectrum**, scaled by 1/frequency so every frequency has about the same
  energy (the spectrum of natural images falls as 1/f): high-frequency patterns, the
  adversarial noise of naive optimisation, are no longer the easiest direction;
* in a **decorrelated colour space**: the square root of the ImageNet colour
  covariance, so the three channels the optimiser moves are uncorrelated, as in
  natural photos;

and a sigmoid maps the result into valid RGB in [0, 1].  The constants are Lucid's
(``lucid/optvis/param/color.py`` and ``spatial.py``), as Lucent uses them.
"""

from __future__ import annotations

from typing import List

import numpy as np
import torch

__all__ = ["ImageParam", "COLOR_CORRELATION_SVD_SQRT"]

# Square root of the colour covariance of ImageNet, from its SVD (Lucid's constant).
COLOR_CORRELATION_SVD_SQRT = np.asarray(
    [[0.26, 0.09, 0.02],
     [0.27, 0.00, -0.05],
     [0.27, -0.09, 0.03]], dtype=np.float32)
_MAX_NORM = float(np.max(np.linalg.norm(COLOR_CORRELATION_SVD_SQRT, axis=0)))
_COLOR_NORMALIZED = COLOR_CORRELATION_SVD_SQRT / _MAX_NORM

# Lucid divides the inverse FFT by 4 ("magic constant": larger values reduce the
# saturation of the start image).
_FFT_MAGIC = 4.0


def rfft2d_freqs(h: int, w: int) -> np.ndarray:
    """Frequency magnitude of each bin of a real 2-D FFT of an h x w image."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    return np.sqrt(fx * fx + fy * fy)


class ImageParam:
    """``batch`` RGB images of ``h`` x ``w`` as trainable tensors; calling it returns the
    B x 3 x h x w image in [0, 1] (differentiable w.r.t. :attr:`params`).

    ``fft``: Fourier parameterization (else plain pixels); ``decorrelate``: colour
    decorrelation; ``sd``: standard deviation of the random start; ``decay_power``:
    the 1/f**decay_power spectrum scaling.  Random numbers come from ``generator``
    only, so a seed gives the same start image everywhere."""

    def __init__(self, batch: int, h: int, w: int, *, fft: bool = True, decorrelate: bool = True,
                 sd: float = 0.01, decay_power: float = 1.0,
                 generator: torch.Generator = None, device="cpu"):
        self.batch, self.h, self.w = int(batch), int(h), int(w)
        self.fft, self.decorrelate = bool(fft), bool(decorrelate)
        g = generator
        if self.fft:
            freqs = rfft2d_freqs(self.h, self.w)
            shape = (self.batch, 3) + freqs.shape + (2,)
            init = torch.randn(shape, generator=g) * sd
            scale = 1.0 / np.maximum(freqs, 1.0 / max(self.h, self.w)) ** decay_power
            self._scale = torch.tensor(scale, dtype=torch.float32, device=device)[None, None, ..., None]
        else:
            init = torch.randn((self.batch, 3, self.h, self.w), generator=g) * sd
            self._scale = None
        self.tensor = init.to(device).requires_grad_(True)
        self._color = torch.tensor(_COLOR_NORMALIZED.T, device=device)

    @property
    def params(self) -> List[torch.Tensor]:
        return [self.tensor]

    def __call__(self) -> torch.Tensor:
        if self.fft:
            spectrum = torch.view_as_complex((self._scale * self.tensor).contiguous())
            image = torch.fft.irfftn(spectrum, s=(self.h, self.w), norm="ortho") / _FFT_MAGIC
        else:
            image = self.tensor
        if self.decorrelate:
            # out[:, d] = sum_c image[:, c] * color[c, d] (a plain matmul: einsum's
            # route for this shape is two orders of magnitude slower on CPU)
            image = torch.matmul(self._color.t(), image.flatten(2)).view_as(image)
        return torch.sigmoid(image)

    def describe(self) -> str:
        parts = ["Fourier" if self.fft else "pixel"]
        if self.decorrelate:
            parts.append("decorrelated colour")
        return ", ".join(parts) + ", sigmoid"

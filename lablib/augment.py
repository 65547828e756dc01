"""Data augmentation for image batches: random shifts and horizontal flips.

A multilayer perceptron has no notion that an image moved by a pixel is the same image; showing it
slightly shifted (and mirrored) copies of the training images teaches it, and reduces overfitting.
Applied to training batches only (`fit(..., augment=...)`), never to validation or test data.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RandomShiftFlip"]


class RandomShiftFlip:
    """Shift each image by up to `max_shift` pixels in each direction and mirror half of them.

    Inputs of `__call__`: a batch of flattened images, shape (N, H*W); returns a new array of the
    same shape and dtype. Pixels shifted in are `background` (the standardized value of black, when
    the inputs are standardized). Randomness comes from `rng` (a numpy Generator).
    """

    def __init__(self, rng: np.random.Generator, image_shape: tuple[int, int] = (28, 28), max_shift: int = 2,
                 flip: bool = True, background: float = 0.0):
        self.rng, self.shape, self.max_shift, self.flip, self.background = rng, image_shape, max_shift, flip, background

    def __call__(self, xb: np.ndarray) -> np.ndarray:
        n, (h, w), k = len(xb), self.shape, self.max_shift
        images = xb.reshape(n, h, w)
        padded = np.pad(images, ((0, 0), (k, k), (k, k)), constant_values=self.background)
        dy = self.rng.integers(0, 2 * k + 1, n)[:, None, None]
        dx = self.rng.integers(0, 2 * k + 1, n)[:, None, None]
        cols = np.broadcast_to(np.arange(w), (n, 1, w))
        if self.flip:
            mirrored = self.rng.random(n) < 0.5
            cols = np.where(mirrored[:, None, None], w - 1 - cols, cols)
        rows = np.arange(h)[None, :, None] + dy
        out = padded[np.arange(n)[:, None, None], rows, cols + dx]
        return out.reshape(n, h * w)

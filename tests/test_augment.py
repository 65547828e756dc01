"""RandomShiftFlip: shifts and mirrors whole images, fills with the background, is reproducible."""

import numpy as np

from lablib.augment import RandomShiftFlip


def test_identity_without_shift_or_flip():
    x = np.random.default_rng(0).standard_normal((5, 784)).astype(np.float32)
    out = RandomShiftFlip(np.random.default_rng(1), max_shift=0, flip=False)(x)
    assert out.dtype == np.float32 and np.array_equal(out, x)


def test_each_image_is_a_shifted_or_mirrored_copy_of_itself():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 6 * 6))
    out = RandomShiftFlip(np.random.default_rng(3), image_shape=(6, 6), max_shift=1, background=-9.0)(x)
    for image, result in zip(x.reshape(-1, 6, 6), out.reshape(-1, 6, 6)):
        candidates = []
        for mirrored in (image, image[:, ::-1]):
            padded = np.pad(mirrored, 1, constant_values=-9.0)
            candidates += [padded[1 + dy:7 + dy, 1 + dx:7 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        assert any(np.array_equal(result, c) for c in candidates)


def test_reproducible_and_actually_random():
    x = np.random.default_rng(4).standard_normal((64, 784))
    a = RandomShiftFlip(np.random.default_rng(5))(x)
    b = RandomShiftFlip(np.random.default_rng(5))(x)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, x)

"""Augmentation and training helpers of the image demos."""

from __future__ import annotations

import numpy as np

from urgence.demos.classify import Recipe, adam_with_cosine_decay, augment, augmented_batches


def _shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """image (H, W) moved by (dy, dx) with zero fill, the oracle for augment."""
    out = np.zeros_like(image)
    h, w = image.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def _candidates(image: np.ndarray, shift: int, flip: bool) -> list[np.ndarray]:
    sources = [image, image[:, ::-1]] if flip else [image]
    return [
        _shifted(source, dy, dx)
        for source in sources
        for dy in range(-shift, shift + 1)
        for dx in range(-shift, shift + 1)
    ]


def test_augment_is_a_translation_of_each_image(rng):
    x = rng.random((12, 1, 6, 7), dtype=np.float32)
    out = augment(x, shift=2, flip=False, rng=rng)
    assert out.shape == x.shape and out.dtype == np.float32
    for image, moved in zip(x[:, 0], out[:, 0], strict=True):
        assert any(np.array_equal(moved, c) for c in _candidates(image, 2, False))
    assert not np.array_equal(out, x), "with 25 shifts for 12 images, some must move"


def test_augment_with_flip_mirrors_some_images(rng):
    x = rng.random((16, 1, 5, 5), dtype=np.float32)
    out = augment(x, shift=0, flip=True, rng=rng)
    mirrored = [np.array_equal(o, i[:, ::-1]) for i, o in zip(x[:, 0], out[:, 0], strict=True)]
    kept = [np.array_equal(o, i) for i, o in zip(x[:, 0], out[:, 0], strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert any(mirrored) and any(kept)


def test_augment_without_changes_is_identity(rng):
    x = rng.random((3, 2, 4, 4), dtype=np.float32)
    np.testing.assert_array_equal(augment(x, shift=0, flip=False, rng=rng), x)


def test_augmented_batches_cover_every_sample_once(rng):
    x = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1) + 1
    y = np.arange(10)
    recipe = Recipe("test", list, adam_with_cosine_decay(1e-3), batch_size=4, epochs=1, shift=0)
    batches = list(augmented_batches(x, y, recipe)(rng))
    assert [len(batch_y) for _, batch_y in batches] == [4, 4, 2]
    labels = np.concatenate([batch_y for _, batch_y in batches])
    assert sorted(labels.tolist()) == list(range(10))
    for batch_x, batch_y in batches:
        np.testing.assert_array_equal(batch_x[:, 0, 0, 0], batch_y + 1)


def test_cosine_factory_decays_to_one_percent():
    optimizer = adam_with_cosine_decay(0.01)(100)
    assert optimizer.lr == 0.01
    optimizer.iterations = 100
    assert abs(optimizer.lr - 1e-4) < 1e-9


def test_cosine_factory_warms_up_linearly_then_decays():
    optimizer = adam_with_cosine_decay(0.01, warmup_fraction=0.1)(100)
    assert abs(optimizer.lr - 0.001) < 1e-9  # first of 10 warm-up steps
    optimizer.iterations = 4
    assert abs(optimizer.lr - 0.005) < 1e-9
    optimizer.iterations = 10
    assert abs(optimizer.lr - 0.01) < 1e-9  # peak once warmed up
    optimizer.iterations = 100
    assert abs(optimizer.lr - 1e-4) < 1e-9

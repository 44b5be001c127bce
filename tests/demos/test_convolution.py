"""The convolution demo: Conv2D with the seed's kernel equals the seed's sum formula."""

from __future__ import annotations

import json

import numpy as np
import pytest

from urgence.app.cli import main
from urgence.demos.convolution import EDGE_KERNEL, convolve, sample_image


def test_convolve_matches_the_seed_formula(rng):
    image = rng.random((7, 9), dtype=np.float32)
    out = convolve(image, EDGE_KERNEL)
    expected = np.array([[np.sum(image[i:i + 3, j:j + 3] * EDGE_KERNEL) for j in range(7)]
                         for i in range(5)])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_edge_kernel_is_zero_on_flat_regions_and_fires_on_edges():
    image = np.zeros((8, 8), dtype=np.float32)
    image[:, 4:] = 1.0
    out = convolve(image, EDGE_KERNEL)
    assert np.all(out[:, :2] == 0) and np.all(out[:, -2:] == 0)
    assert np.all(np.abs(out[:, 2:4]) == 3)


def test_convolve_rejects_non_2d_input():
    with pytest.raises(ValueError, match="2-D"):
        convolve(np.zeros((1, 5, 5), dtype=np.float32), EDGE_KERNEL)


def test_sample_image_and_cli(capsys, tmp_path):
    image = sample_image()
    assert image.dtype == np.float32 and image.ndim == 2
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert main(["demo", "convolution", "--json", "--quiet", "--out", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["output_shape"] == [image.shape[0] - 2, image.shape[1] - 2]
    figure = tmp_path / "demo_convolution.png"
    assert 10_000 < figure.stat().st_size < 300_000

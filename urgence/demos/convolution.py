"""The seed's image convolution: edge detection with [[-1,-1,-1],[-1,8,-1],[-1,-1,-1]].

The filtering goes through the engine's ``Conv2D`` (one 3 x 3 filter, no bias, weights set
to the seed's kernel), on the photograph matplotlib ships as sample data (Grace Hopper):
nothing is downloaded and /work/shared is not needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from urgence.demos.common import DemoConfig, progress
from urgence.demos.figures import new_figure, save_figure

MODELS: tuple[str, ...] = ("seed",)
DEFAULT_EPOCHS: dict[str, int | None] = {"seed": None}

EDGE_KERNEL = np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], dtype=np.float32)


def sample_image() -> np.ndarray:
    """matplotlib's sample photograph in grey levels, halved: (300, 256) float32 in [0, 1].

    Halving (2 x 2 means) removes the JPEG noise that the edge kernel would otherwise amplify.
    """
    from matplotlib import cbook
    from matplotlib.image import imread

    with cbook.get_sample_data("grace_hopper.jpg") as stream:
        rgb = imread(stream, format="jpg").astype(np.float32) / np.float32(255.0)
    # ITU-R 601 luma: the grey a screen shows for that colour
    grey = rgb[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    h, w = (grey.shape[0] // 2) * 2, (grey.shape[1] // 2) * 2
    return grey[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Valid cross-correlation of ``image: (H, W)`` with ``kernel: (kh, kw)`` by ``Conv2D``.

    Returns (H - kh + 1, W - kw + 1) float32, as the seed's O(i, j) = sum I(i+a, j+b) F(a, b).
    """
    from urgence.nn.layers import Conv2D

    if image.ndim != 2 or kernel.ndim != 2:
        raise ValueError(f"expected a 2-D image and kernel, got {image.shape}, {kernel.shape}")
    layer = Conv2D(1, kernel.shape, use_bias=False)
    layer.build((1, *image.shape), np.random.default_rng(0))  # weights overwritten below
    layer.params["W"][...] = kernel
    batch = image.astype(np.float32)[None, None]
    return layer.forward(batch, training=False)[0, 0]


def run(config: DemoConfig) -> dict[str, Any]:
    image = sample_image()
    edges = convolve(image, EDGE_KERNEL)
    figure = new_figure(8, 5)
    figure.suptitle("Edge detection, F = [[-1,-1,-1], [-1,8,-1], [-1,-1,-1]] (engine Conv2D)",
                    fontsize=10)
    original_axes, edges_axes = figure.subplots(1, 2)
    original_axes.imshow(image, cmap="gray", vmin=0, vmax=1)
    original_axes.set_title(f"input image {image.shape[1]} x {image.shape[0]}")
    # |O| clipped at its 99th percentile: a few very strong edges would otherwise wash out the rest
    magnitude = np.abs(edges)
    edges_axes.imshow(magnitude, cmap="gray_r", vmin=0, vmax=float(np.percentile(magnitude, 99)))
    edges_axes.set_title(f"|output| {edges.shape[1]} x {edges.shape[0]}")
    for axes in (original_axes, edges_axes):
        axes.set_axis_off()
    path = save_figure(figure, config.out, "convolution", dpi=72)
    progress(config, f"wrote {path}")
    return {"image_shape": list(image.shape), "output_shape": list(edges.shape),
            "kernel": EDGE_KERNEL.astype(int).tolist(), "figures": [path]}

"""Figures shared by the demos: learning curves, a grid of predictions, saving as PNG.

Figures are built with ``matplotlib.figure.Figure`` directly (Agg canvas), never through
``pyplot``: no global backend or figure registry is touched, so demos can run in a server or
in tests side by side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

FIGURE_PREFIX = "demo_"
DPI = 100


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches with a constrained layout."""
    return Figure(figsize=(width, height), layout="constrained")


def save_figure(figure: Figure, out_dir: str | Path, name: str, *, dpi: int = DPI) -> str:
    """Write ``figure`` to ``out_dir/demo_<name>.png`` (creating the folder); return the path.

    A lower ``dpi`` keeps photographic figures small (the docs keep each PNG under 300 KB).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{FIGURE_PREFIX}{name}.png"
    figure.savefig(path, dpi=dpi)
    return str(path)


def learning_curves(history: Mapping[str, Sequence[float]], title: str) -> Figure:
    """Loss and accuracy per epoch, training beside validation when recorded.

    history: ``Sequential.history`` (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``).
    """
    figure = new_figure(10, 3.8)
    figure.suptitle(title)
    for axes, metric, scale in zip(
        figure.subplots(1, 2), ("loss", "accuracy"), (1.0, 100.0), strict=True
    ):
        for prefix, label in (("", "training"), ("val_", "test")):
            values = history.get(prefix + metric) or []
            if values:
                epochs = np.arange(1, len(values) + 1)
                axes.plot(epochs, np.asarray(values) * scale, "o-", ms=3, label=label)
        axes.set_xlabel("epoch")
        axes.set_ylabel("accuracy (%)" if metric == "accuracy" else "loss")
        axes.grid(alpha=0.3)
        axes.legend()
    return figure


def prediction_grid(
    images: np.ndarray,
    labels: np.ndarray,
    predicted: np.ndarray,
    class_names: Sequence[str],
    title: str,
    *,
    columns: int = 8,
) -> Figure:
    """Images with their predicted class; a wrong prediction is titled in red with the truth.

    images: (N, 1, H, W) or (N, H, W) float32 in [0, 1]; labels, predicted: (N,) int.
    """
    images = images.reshape(len(images), *images.shape[-2:])
    rows = -(-len(images) // columns)
    figure = new_figure(1.3 * columns, 1.45 * rows + 0.4)
    figure.suptitle(title)
    for index, axes in enumerate(figure.subplots(rows, columns, squeeze=False).ravel()):
        axes.set_axis_off()
        if index >= len(images):
            continue
        axes.imshow(images[index], cmap="gray_r", vmin=0.0, vmax=1.0)
        guess, truth = int(predicted[index]), int(labels[index])
        if guess == truth:
            axes.set_title(class_names[guess], fontsize=9)
        else:
            axes.set_title(f"{class_names[guess]}\n(true: {class_names[truth]})",
                           fontsize=8, color="red")
    return figure

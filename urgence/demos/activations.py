"""The seed's activation functions (sigmoid, tanh, ReLU) and their derivatives, as drawn by it.

Both curves come from the engine's own layers: the function from ``forward``, the derivative
from ``backward`` with an upstream gradient of ones (the elementwise derivative f'(x)).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from urgence.demos.common import DemoConfig, progress
from urgence.demos.figures import new_figure, save_figure

MODELS: tuple[str, ...] = ("seed",)
DEFAULT_EPOCHS: dict[str, int | None] = {"seed": None}

X_RANGE = (-6.0, 6.0)
N_POINTS = 601


def function_and_derivative(layer_class: type, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f(x) and f'(x) of an engine activation layer; x: (P,) float32 -> two (P,) float32."""
    layer = layer_class()
    batch = x.reshape(-1, 1)
    layer.build((1,), np.random.default_rng(0))  # no parameters: the generator is unused
    values = layer.forward(batch, training=False)
    slopes = layer.backward(np.ones_like(batch))
    return values.ravel(), slopes.ravel()


def run(config: DemoConfig) -> dict[str, Any]:
    from urgence.nn.layers import ReLU, Sigmoid, Tanh

    x = np.linspace(*X_RANGE, N_POINTS, dtype=np.float32)
    figure = new_figure(12, 3.6)
    figure.suptitle("Activation functions and their derivatives (engine layers)")
    curves = {}
    for axes, (name, layer_class, formula) in zip(figure.subplots(1, 3), (
        ("sigmoid", Sigmoid, r"$\sigma(x) = 1/(1+e^{-x})$, $\sigma' = \sigma(1-\sigma)$"),
        ("tanh", Tanh, r"$\tanh(x)$, $\tanh' = 1-\tanh^2$"),
        ("relu", ReLU, r"$\max(0, x)$, derivative $1_{x>0}$"),
    ), strict=True):
        values, slopes = function_and_derivative(layer_class, x)
        axes.plot(x, values, label="f(x)", lw=2)
        axes.plot(x, slopes, "--", label="f'(x)", lw=2)
        axes.set_title(f"{name}\n{formula}", fontsize=10)
        axes.axhline(0, color="grey", lw=0.5)
        axes.axvline(0, color="grey", lw=0.5)
        axes.grid(alpha=0.3)
        axes.legend()
        curves[name] = {"max_derivative": round(float(slopes.max()), 4)}
    path = save_figure(figure, config.out, "activations")
    progress(config, f"wrote {path}")
    return {"activations": curves, "figures": [path]}

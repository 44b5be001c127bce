"""The seed's gradient descent on f(x) = (x - 0.75)^2, driven by the engine's own ``SGD``.

As in the seed: x0 = 0.1, stop as soon as |f'(x)| <= 0.1. Three figures: a small against a
large learning rate; without against with momentum (gamma = 0.5, the seed's formula
omega_{k+1} = gamma omega_k + t f'(x_k), x_{k+1} = x_k - omega_{k+1}); and a learning rate
(t = 1) at which plain descent never converges (it bounces between 0.1 and 1.4 for ever)
while momentum still does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from urgence.demos.common import DemoConfig, progress
from urgence.demos.figures import new_figure, save_figure

MODELS: tuple[str, ...] = ("seed",)
DEFAULT_EPOCHS: dict[str, int | None] = {"seed": None}

TARGET = 0.75
X0 = 0.1
TOLERANCE = 0.1
MAX_STEPS = 40


def loss(x: np.ndarray) -> np.ndarray:
    """f(x) = (x - 0.75)^2, elementwise."""
    return (x - TARGET) ** 2


def gradient(x: np.ndarray) -> np.ndarray:
    """f'(x) = 2 (x - 0.75), elementwise."""
    return 2 * (x - TARGET)


@dataclass(frozen=True)
class Descent:
    """One run: the learning rate, the momentum, and the visited points x_0 .. x_k."""

    lr: float
    momentum: float
    xs: tuple[float, ...]
    converged: bool

    @property
    def steps(self) -> int:
        return len(self.xs) - 1

    def to_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "steps": self.steps,
                "converged": self.converged, "final_x": round(self.xs[-1], 4)}


def descend(lr: float, momentum: float = 0.0, *, x0: float = X0, tolerance: float = TOLERANCE,
            max_steps: int = MAX_STEPS) -> Descent:
    """Minimise f with ``urgence.nn.optimizers.SGD`` until |f'(x)| <= tolerance or max_steps."""
    from urgence.nn.optimizers import SGD

    optimizer = SGD(lr, momentum=momentum)
    x = np.array([x0], dtype=np.float32)
    xs = [float(x[0])]
    while abs(float(gradient(x)[0])) > tolerance and len(xs) <= max_steps:
        optimizer.step({"x": x}, {"x": gradient(x)})
        xs.append(float(x[0]))
    return Descent(lr, momentum, tuple(xs), abs(float(gradient(x)[0])) <= tolerance)


def _draw(axes: Any, descent: Descent, title: str) -> None:
    xs = np.asarray(descent.xs)
    low, high = min(0.0, xs.min()), max(1.5, xs.max())
    grid = np.linspace(low, high, 400)
    axes.plot(grid, loss(grid), color="grey", label="f(x) = (x - 0.75)²")
    axes.plot(xs, loss(xs), "o-", lw=2, ms=4, label="descent")
    axes.plot(xs[:1], loss(xs[:1]), "s", color="black", label=f"x₀ = {X0}")
    outcome = f"{descent.steps} steps"
    if not descent.converged:
        outcome = f"not converged in {outcome}"
    axes.set_title(f"{title}\n{outcome}", fontsize=10)
    axes.set_xlabel("x")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)


FIGURES: dict[str, tuple[str, tuple[tuple[str, float, float], ...]]] = {
    # figure name -> (title, panels: (panel title, learning rate, momentum))
    "gradient_descent_learning_rate": ("Small vs large learning rate", (
        ("small rate: t = 0.1", 0.1, 0.0),
        ("large rate: t = 0.7", 0.7, 0.0),
    )),
    "gradient_descent_momentum": ("Without vs with momentum (γ = 0.5)", (
        ("t = 0.1, without momentum", 0.1, 0.0),
        ("t = 0.1, with momentum γ = 0.5", 0.1, 0.5),
    )),
    "gradient_descent_no_convergence": ("A case that does not converge", (
        ("t = 1.0, without momentum", 1.0, 0.0),
        ("t = 1.0, with momentum γ = 0.5", 1.0, 0.5),
    )),
}


def run(config: DemoConfig) -> dict[str, Any]:
    results: dict[str, list[dict[str, Any]]] = {}
    paths = []
    for name, (title, panels) in FIGURES.items():
        figure = new_figure(10, 4)
        figure.suptitle(f"Gradient descent on f(x) = (x - 0.75)², stop at |f'(x)| ≤ {TOLERANCE}: "
                        f"{title}")
        runs = []
        for axes, (panel_title, lr, momentum) in zip(figure.subplots(1, 2), panels, strict=True):
            descent = descend(lr, momentum)
            _draw(axes, descent, panel_title)
            runs.append(descent.to_dict())
        results[name.removeprefix("gradient_descent_")] = runs
        paths.append(save_figure(figure, config.out, name))
        progress(config, f"wrote {paths[-1]}")
    return {"cases": results, "figures": paths}

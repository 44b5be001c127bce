"""The seed's XOR: a 2-2-1 sigmoid network, mean squared error, SGD with momentum 0.5.

The seed reached outputs 0.12 / 0.81 / 0.81 / 0.24 after 300 full-batch epochs at learning
rate 0.5. Its update divided every gradient by (inputs + 1) and took the sigmoid derivative
at the output instead of the input, which changes the effective step size; with exact
gradients of the batch-mean loss, lr 0.5 barely moves in 300 epochs (``--model seed`` shows
it). ``tuned`` (the default) keeps the network, the loss, the momentum and the epochs and
raises the learning rate to 10, with biases and Glorot initialisation. The demo also trains
100 seeds and reports how many get every output within 0.1 of its target: a 2-2-1 network
has poor local minima, which some initialisations cannot leave.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from urgence.demos.common import DemoConfig, progress
from urgence.demos.figures import new_figure, save_figure

INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
TARGETS = np.array([[0], [1], [1], [0]], dtype=np.float32)
TOLERANCE = 0.1
MOMENTUM = 0.5
LEARNING_RATES: dict[str, float] = {"tuned": 10.0, "seed": 0.5}
MODELS: tuple[str, ...] = tuple(LEARNING_RATES)
DEFAULT_EPOCHS: dict[str, int | None] = {"tuned": 300, "seed": 300}
SEED_COUNT = 100


def build_network(lr: float, seed: int) -> Any:
    """The 2-2-1 sigmoid network, compiled with MSE and SGD(lr, momentum 0.5)."""
    from urgence.nn import Sequential
    from urgence.nn.layers import Dense
    from urgence.nn.optimizers import SGD

    model = Sequential(
        [Dense(2, activation="sigmoid", kernel_initializer="glorot"),
         Dense(1, activation="sigmoid", kernel_initializer="glorot")],
        input_shape=(2,), seed=seed,
    )
    return model.compile(loss="mse", optimizer=SGD(lr, momentum=MOMENTUM))


def train(lr: float, epochs: int, seed: int) -> Any:
    """Full-batch training on the four XOR rows; returns the trained model."""
    model = build_network(lr, seed)
    return model.fit(INPUTS, TARGETS, epochs=epochs, batch_size=len(INPUTS), shuffle=False,
                     verbose=0)


def outputs_of(model: Any) -> np.ndarray:
    """The network's four outputs, (4,) float32, for inputs 00, 01, 10, 11."""
    return model.predict_proba(INPUTS)[:, 0]


def solved(outputs: np.ndarray) -> bool:
    """Every output within TOLERANCE of its target."""
    return bool(np.all(np.abs(outputs - TARGETS[:, 0]) < TOLERANCE))


def _boundary_figure(model: Any, history: list[float], title: str) -> Any:
    figure = new_figure(10, 4.2)
    figure.suptitle(title)
    surface_axes, loss_axes = figure.subplots(1, 2)
    axis = np.linspace(-0.5, 1.5, 201, dtype=np.float32)
    grid_x, grid_y = np.meshgrid(axis, axis)
    grid = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)
    surface = model.predict_proba(grid)[:, 0].reshape(grid_x.shape)
    image = surface_axes.contourf(grid_x, grid_y, surface, levels=np.linspace(0, 1, 11),
                                  cmap="RdBu_r")
    surface_axes.contour(grid_x, grid_y, surface, levels=[0.5], colors="black", linewidths=2)
    figure.colorbar(image, ax=surface_axes, label="network output")
    for (a, b), target, output in zip(INPUTS, TARGETS[:, 0], outputs_of(model), strict=True):
        surface_axes.scatter(a, b, s=120, c="white" if target else "black", edgecolors="black")
        surface_axes.annotate(f"{output:.2f}", (a, b), textcoords="offset points",
                              xytext=(8, 8), fontsize=10, weight="bold")
    surface_axes.set_title("decision boundary (output = 0.5)")
    surface_axes.set_xlabel("A")
    surface_axes.set_ylabel("B")
    loss_axes.plot(np.arange(1, len(history) + 1), history)
    loss_axes.set_yscale("log")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("mean squared error")
    loss_axes.set_title("loss during training")
    loss_axes.grid(alpha=0.3)
    return figure


def run(config: DemoConfig) -> dict[str, Any]:
    lr = LEARNING_RATES[config.model]
    model = train(lr, config.epochs, config.seed)
    outputs = outputs_of(model)
    progress(config, f"seed {config.seed}: outputs {np.round(outputs, 3).tolist()}")
    successes = sum(
        solved(outputs_of(train(lr, config.epochs, seed)))
        for seed in range(config.seed, config.seed + SEED_COUNT)
    )
    progress(config, f"{successes}/{SEED_COUNT} seeds solve XOR within {TOLERANCE}")
    title = (f"XOR, 2-2-1 sigmoid, SGD lr {lr:g} momentum {MOMENTUM}, {config.epochs} epochs, "
             f"seed {config.seed}")
    paths = [save_figure(_boundary_figure(model, model.history["loss"], title), config.out,
                         f"xor_{config.model}")]
    return {
        "learning_rate": lr,
        "momentum": MOMENTUM,
        "outputs": [round(float(value), 4) for value in outputs],
        "targets": TARGETS[:, 0].astype(int).tolist(),
        "solved": solved(outputs),
        "final_loss": round(float(model.history["loss"][-1]), 6),
        "seeds_solved": successes,
        "seeds_tried": SEED_COUNT,
        "solved_fraction": successes / SEED_COUNT,
        "figures": paths,
    }

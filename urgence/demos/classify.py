"""Training and reporting shared by the image-classification demos (MNIST, Fashion-MNIST).

A demo names its models as :class:`Recipe` s (layers, optimiser, batch size, epochs,
augmentation); :func:`run_image_demo` loads the data, trains one, evaluates it on the
training and test sets, and draws the learning curves and a grid of 40 test predictions.
The test set is scored after every epoch for the learning curves only: nothing is selected or
stopped on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from urgence.demos.common import DemoConfig, progress
from urgence.demos.data import ImageDataset, load_dataset
from urgence.demos.figures import learning_curves, prediction_grid, save_figure

GRID_IMAGES = 40


@dataclass(frozen=True)
class Recipe:
    """How to build and train one model.

    layers: builds fresh, unbuilt layers for (1, 28, 28) inputs, ending with Softmax.
    optimizer: given the total number of training steps (for schedules), the optimiser.
    shift: random translations of up to ``shift`` pixels each way (0: no augmentation);
    flip: random horizontal mirroring (clothes, not digits).
    """

    description: str
    layers: Callable[[], list]
    optimizer: Callable[[int], Any]
    batch_size: int
    epochs: int
    shift: int = 0
    flip: bool = False


def adam_with_cosine_decay(lr: float, *, warmup_fraction: float = 0.0) -> Any:
    """An optimiser factory: Adam, learning rate cosine-decayed to 1% over the training.

    warmup_fraction: the first fraction of the steps ramps the rate up linearly to ``lr``
    (one-cycle style), which lets a short training use a higher peak rate.
    """

    def make(steps: int) -> Any:
        from urgence.nn.optimizers import Adam
        from urgence.nn.schedules import CosineDecay

        warmup_steps = int(warmup_fraction * steps)
        return Adam(
            CosineDecay(lr, decay_steps=steps, warmup_steps=warmup_steps, final_fraction=0.01)
        )

    return make


def augment(x: np.ndarray, *, shift: int, flip: bool, rng: np.random.Generator) -> np.ndarray:
    """Randomly translated (zero fill) and optionally mirrored copies of ``x``.

    x: (N, C, H, W) float32 -> (N, C, H, W) float32; each image moves by its own
    (dy, dx) in [-shift, shift]^2 and is mirrored left-right with probability 1/2 if ``flip``.
    """
    n, _, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (shift, shift), (shift, shift)))
    dy = rng.integers(0, 2 * shift + 1, size=n)
    dx = rng.integers(0, 2 * shift + 1, size=n)
    rows = dy[:, None] + np.arange(h)  # (N, H)
    cols = dx[:, None] + np.arange(w)  # (N, W)
    if flip:
        mirrored = rng.random(n) < 0.5
        cols[mirrored] = cols[mirrored, ::-1]
    index = np.arange(n)[:, None, None, None]
    channels = np.arange(x.shape[1])[None, :, None, None]
    return padded[index, channels, rows[:, None, :, None], cols[:, None, None, :]]


def augmented_batches(
    x: np.ndarray, y: np.ndarray, recipe: Recipe
) -> Callable[[np.random.Generator], Iterator[tuple[np.ndarray, np.ndarray]]]:
    """A ``Sequential.fit`` batch source: shuffled batches, freshly augmented every epoch."""

    def batches(rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        order = rng.permutation(len(x))
        for start in range(0, len(x), recipe.batch_size):
            chosen = order[start : start + recipe.batch_size]
            yield augment(x[chosen], shift=recipe.shift, flip=recipe.flip, rng=rng), y[chosen]

    return batches


def train(recipe: Recipe, data: ImageDataset, *, epochs: int, seed: int, verbose: int = 0) -> Any:
    """Build, compile and fit a ``Sequential`` on ``data``; returns the trained model.

    The model's ``history`` has per-epoch ``loss``, ``accuracy`` (training batches, with
    augmentation and dropout) and ``val_loss``, ``val_accuracy`` (test set).
    """
    from urgence.nn import Sequential

    model = Sequential(recipe.layers(), input_shape=data.x_train.shape[1:], seed=seed)
    steps = epochs * -(-len(data.x_train) // recipe.batch_size)
    model.compile(loss="cross_entropy", optimizer=recipe.optimizer(steps))
    augmenting = recipe.shift > 0 or recipe.flip
    source = augmented_batches(data.x_train, data.y_train, recipe) if augmenting else data.x_train
    model.fit(
        source,
        None if augmenting else data.y_train,
        epochs=epochs,
        batch_size=recipe.batch_size,
        validation_data=(data.x_test, data.y_test),
        verbose=verbose,
        rng=np.random.default_rng(seed),
    )
    return model


def run_image_demo(
    config: DemoConfig, dataset: str, recipes: dict[str, Recipe], title: str
) -> dict[str, Any]:
    """Train ``recipes[config.model]`` on ``dataset`` and report accuracies and figures."""
    recipe = recipes[config.model]
    data = load_dataset(dataset, config.data).subset(config.limit)
    progress(
        config,
        f"{dataset}: {len(data.x_train)} training, {len(data.x_test)} test "
        f"images; model {config.model}: {recipe.description}",
    )
    start = time.perf_counter()
    model = train(
        recipe, data, epochs=config.epochs, seed=config.seed, verbose=2 if config.verbose else 0
    )
    train_seconds = time.perf_counter() - start
    train_scores = model.evaluate(data.x_train, data.y_train)
    test_scores = model.evaluate(data.x_test, data.y_test)
    progress(
        config,
        f"train accuracy {train_scores['accuracy']:.4f}, "
        f"test accuracy {test_scores['accuracy']:.4f}",
    )
    shown = slice(0, GRID_IMAGES)
    predicted = model.predict(data.x_test[shown])
    name = f"{dataset.replace('-', '_')}_{config.model}"
    heading = f"{title}, model {config.model}, {config.epochs} epochs"
    paths = [
        save_figure(learning_curves(model.history, heading), config.out, f"{name}_curves"),
        save_figure(
            prediction_grid(
                data.x_test[shown],
                data.y_test[shown],
                predicted,
                data.class_names,
                f"{heading}: first {len(predicted)} test images "
                f"(test accuracy {100 * test_scores['accuracy']:.2f}%)",
            ),
            config.out,
            f"{name}_grid",
        ),
    ]
    return {
        "description": recipe.description,
        "train_images": len(data.x_train),
        "test_images": len(data.x_test),
        "parameters": model.count_params(),
        "train_accuracy": round(train_scores["accuracy"], 4),
        "test_accuracy": round(test_scores["accuracy"], 4),
        "test_loss": round(test_scores["loss"], 4),
        "train_seconds": round(train_seconds, 1),
        "history": {
            key: [round(value, 4) for value in values] for key, values in model.history.items()
        },
        "grid_correct": int((predicted == data.y_test[shown]).sum()),
        "figures": paths,
    }

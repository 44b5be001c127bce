"""The seed's handwritten digits (MNIST): its one softmax layer, then an MLP and a CNN.

The seed trained one softmax layer for 100 full-batch epochs (SGD, learning rate 0.5,
momentum 0.5): 91.5% train, 91.3% test. ``--model seed`` repeats exactly that schedule with
the engine. The other models train on mini-batches with Adam and a cosine-decayed learning
rate; the CNN also sees each digit randomly shifted by up to 2 pixels every epoch.
"""

from __future__ import annotations

from typing import Any

from urgence.demos.classify import Recipe, adam_with_cosine_decay, run_image_demo
from urgence.demos.common import DemoConfig


def _softmax() -> list:
    from urgence.nn.layers import Dense, Flatten, Softmax

    return [Flatten(), Dense(10, kernel_initializer="glorot"), Softmax()]


def _mlp() -> list:
    from urgence.nn.layers import Dense, Dropout, Flatten, Softmax

    return [Flatten(), Dense(512, activation="relu"), Dropout(0.2),
            Dense(512, activation="relu"), Dropout(0.2), Dense(10), Softmax()]


def _cnn() -> list:
    from urgence.nn.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, Softmax

    return [Conv2D(16, 5, activation="relu"), MaxPool2D(2),
            Conv2D(32, 5, activation="relu"), MaxPool2D(2),
            Flatten(), Dense(128, activation="relu"), Dropout(0.3), Dense(10), Softmax()]


def _seed_sgd(steps: int) -> Any:
    from urgence.nn.optimizers import SGD

    return SGD(0.5, momentum=0.5)


RECIPES: dict[str, Recipe] = {
    "softmax": Recipe("one softmax layer (the seed's), Adam", _softmax,
                      adam_with_cosine_decay(0.01), batch_size=128, epochs=5),
    "mlp": Recipe("784-512-512-10 ReLU MLP, dropout 0.2, Adam", _mlp,
                  adam_with_cosine_decay(1e-3), batch_size=128, epochs=10),
    "cnn": Recipe("conv 16x5x5, pool, conv 32x5x5, pool, dense 128, dropout 0.3; Adam, "
                  "random shifts of 2 px", _cnn, adam_with_cosine_decay(2e-3),
                  batch_size=128, epochs=12, shift=2),
    "seed": Recipe("one softmax layer, the seed's training: full batch, SGD lr 0.5 momentum 0.5",
                   _softmax, _seed_sgd, batch_size=60_000, epochs=100),
}
DATA_SET = "mnist"
MODELS: tuple[str, ...] = tuple(RECIPES)
DEFAULT_EPOCHS: dict[str, int | None] = {name: recipe.epochs for name, recipe in RECIPES.items()}


def run(config: DemoConfig) -> dict[str, Any]:
    return run_image_demo(config, DATA_SET, RECIPES, "MNIST")

"""The seed's clothes (Fashion-MNIST): its small convolutional network, then a better CNN.

The seed's network: a convolution of 4 kernels 3 x 3, ReLU, flatten, a dense softmax layer
(``--model seed``, reproduced layer for layer, trained with Adam on mini-batches instead of
the seed's full-batch gradient descent). ``--model cnn`` stacks two convolution blocks with batch
normalisation, trained on randomly mirrored images.
"""

from __future__ import annotations

from typing import Any

from urgence.demos.classify import Recipe, adam_with_cosine_decay, run_image_demo
from urgence.demos.common import DemoConfig


def _seed() -> list:
    from urgence.nn.layers import Conv2D, Dense, Flatten, Softmax

    return [Conv2D(4, 3, activation="relu"), Flatten(), Dense(10, kernel_initializer="glorot"),
            Softmax()]


def _cnn() -> list:
    from urgence.nn.layers import (
        BatchNormalization,
        Conv2D,
        Dense,
        Dropout,
        Flatten,
        MaxPool2D,
        ReLU,
        Softmax,
    )

    # no convolution bias: the batch normalisation that follows has its own shift
    return [Conv2D(32, 3, padding="same", use_bias=False), BatchNormalization(), ReLU(),
            MaxPool2D(2),
            Conv2D(64, 3, use_bias=False), BatchNormalization(), ReLU(), MaxPool2D(2),
            Flatten(), Dense(256, activation="relu"), Dropout(0.2), Dense(10), Softmax()]


RECIPES: dict[str, Recipe] = {
    "seed": Recipe("the seed's: conv 4x3x3 ReLU, flatten, dense softmax; Adam", _seed,
                   adam_with_cosine_decay(3e-3), batch_size=128, epochs=5),
    "cnn": Recipe("conv 32x3x3, batch norm, pool, conv 64x3x3, batch norm, pool, dense 256, "
                  "dropout 0.2; Adam, random mirror", _cnn, adam_with_cosine_decay(3e-3),
                  batch_size=128, epochs=12, flip=True),
}
DATA_SET = "fashion-mnist"
MODELS: tuple[str, ...] = tuple(RECIPES)
DEFAULT_EPOCHS: dict[str, int | None] = {name: recipe.epochs for name, recipe in RECIPES.items()}


def run(config: DemoConfig) -> dict[str, Any]:
    return run_image_demo(config, DATA_SET, RECIPES, "Fashion-MNIST")

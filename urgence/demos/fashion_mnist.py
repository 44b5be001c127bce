"""The seed's clothes (Fashion-MNIST): its small convolutional network, then a better CNN.

The seed's network: a convolution of 4 kernels 3 x 3, ReLU, flatten, a dense softmax layer
(``--model seed``, reproduced layer for layer, trained with Adam on mini-batches instead of
the seed's full-batch gradient descent). ``--model cnn`` stacks two small convolution blocks
with batch normalisation, trained for 6 epochs with a warmed-up, cosine-decayed Adam: sized to
reach 92% test accuracy within the 3-minute budget of a demo on 2 cores.
"""

from __future__ import annotations

from typing import Any

from urgence.demos.classify import Recipe, adam_with_cosine_decay, run_image_demo
from urgence.demos.common import DemoConfig


def _seed() -> list:
    from urgence.nn.layers import Conv2D, Dense, Flatten, Softmax

    return [
        Conv2D(4, 3, activation="relu"),
        Flatten(),
        Dense(10, kernel_initializer="glorot"),
        Softmax(),
    ]


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

    # Each convolution is pooled before its batch normalisation and ReLU, which then work
    # on a quarter of the values (max-pooling commutes with ReLU; only the normalisation
    # statistics differ from the usual order). No convolution bias: the batch normalisation
    # that follows has its own shift.
    return [
        Conv2D(24, 3, padding="same", use_bias=False),
        MaxPool2D(2),
        BatchNormalization(),
        ReLU(),
        Conv2D(48, 3, use_bias=False),
        MaxPool2D(2),
        BatchNormalization(),
        ReLU(),
        Flatten(),
        Dense(128, activation="relu"),
        Dropout(0.2),
        Dense(10),
        Softmax(),
    ]


RECIPES: dict[str, Recipe] = {
    "seed": Recipe(
        "the seed's: conv 4x3x3 ReLU, flatten, dense softmax; Adam",
        _seed,
        adam_with_cosine_decay(3e-3),
        batch_size=128,
        epochs=5,
    ),
    "cnn": Recipe(
        "conv 24x3x3, pool, batch norm, conv 48x3x3, pool, batch norm, dense 128, "
        "dropout 0.2; Adam 6e-3 warmed up over 10% of the steps, cosine decay",
        _cnn,
        adam_with_cosine_decay(6e-3, warmup_fraction=0.1),
        batch_size=128,
        epochs=6,
    ),
}
DATA_SET = "fashion-mnist"
MODELS: tuple[str, ...] = tuple(RECIPES)
DEFAULT_EPOCHS: dict[str, int | None] = {name: recipe.epochs for name, recipe in RECIPES.items()}


def run(config: DemoConfig) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    # One BLAS thread (which also keeps the engine's element-wise work in this thread): on
    # the shared 2-core machine, two OpenBLAS threads made a training batch 6-11x slower,
    # with the same results (docs/RESULTS.md, known issues).
    with threadpool_limits(limits=1, user_api="blas"):
        return run_image_demo(config, DATA_SET, RECIPES, "Fashion-MNIST")

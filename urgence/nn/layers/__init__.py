"""The engine's layers, and the registry used to (de)serialise architectures.

Data is channels-first, ``(N, C, H, W)`` or ``(N, D)``, float32 (float64 in gradient checks);
shapes given to ``build`` exclude the batch axis. The protocol (``build`` / ``forward`` /
``backward``, ``trainable`` vs ``training``, ``needs_input_grad``, :class:`LayerError`) is
described in :mod:`urgence.nn.layers.base`.

Parameters (float32), by key:

=====================  ==========================================================
Dense                  W (D_in, units), b (units,)
Conv2D                 W (filters, C_in, kh, kw), b (filters,)
DepthwiseConv2D        W (C_in * depth_multiplier, 1, kh, kw), b (C_in * depth_multiplier,)
BatchNormalization     gamma, beta (C,) or (D,); saved state moving_mean, moving_var
MeanNormalization      none (subtracts each example's mean over some axes)
FloorNormalization     none (subtracts each row's low quantile over time)
CepstralLifter         none (keeps the first cepstral coefficients along the mel axis)
=====================  ==========================================================

A layer's config is ``{"class": "Conv2D", "config": {...}}``: the class name (a key of
:data:`LAYERS`) and the keyword arguments that rebuild it (``get_config()``).

Outputs may be non-contiguous views (Conv2D hands on its ``(filters, N, ...)`` GEMM result
transposed); callers needing a particular memory layout copy.
"""

from __future__ import annotations

from typing import Any

from urgence.nn.layers.activation import (
    ACTIVATIONS,
    ActivatedLayer,
    ActivationLayer,
    Linear,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    make_activation,
)
from urgence.nn.layers.base import Layer, LayerError, Shape
from urgence.nn.layers.conv import Conv2D, DepthwiseConv2D
from urgence.nn.layers.dense import Dense
from urgence.nn.layers.normalization import (
    BatchNormalization,
    CepstralLifter,
    FloorNormalization,
    MeanNormalization,
)
from urgence.nn.layers.pooling import AvgPool2D, GlobalAveragePooling2D, MaxPool2D
from urgence.nn.layers.regularization import Dropout
from urgence.nn.layers.reshape import Flatten
from urgence.nn.layers.residual import BCResBlock

LAYERS: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (
        Dense,
        Conv2D,
        DepthwiseConv2D,
        MaxPool2D,
        AvgPool2D,
        GlobalAveragePooling2D,
        Flatten,
        Dropout,
        BatchNormalization,
        MeanNormalization,
        FloorNormalization,
        CepstralLifter,
        BCResBlock,
        Linear,
        ReLU,
        Sigmoid,
        Tanh,
        Softmax,
    )
}


def layer_to_config(layer: Layer) -> dict[str, Any]:
    """``{"class": <class name>, "config": <get_config()>}``, JSON-serialisable."""
    name = type(layer).__name__
    if LAYERS.get(name) is not type(layer):
        raise LayerError(f"layer class {name!r} is not registered in LAYERS")
    return {"class": name, "config": layer.get_config()}


def layer_from_config(spec: dict[str, Any]) -> Layer:
    """An unbuilt layer from ``{"class": ..., "config": {...}}``; LayerError if malformed."""
    if not isinstance(spec, dict) or "class" not in spec:
        raise LayerError(f"a layer config needs a 'class' key, got {spec!r}")
    cls = LAYERS.get(spec["class"])
    if cls is None:
        raise LayerError(f"unknown layer class {spec['class']!r}; known: {sorted(LAYERS)}")
    config = spec.get("config", {})
    if not isinstance(config, dict):
        raise LayerError(f"{spec['class']}: 'config' must be a dict, got {config!r}")
    try:
        return cls.from_config(config)
    except TypeError as exc:
        raise LayerError(f"{spec['class']}: bad config {config!r}: {exc}") from None


__all__ = [
    "ACTIVATIONS",
    "LAYERS",
    "ActivatedLayer",
    "ActivationLayer",
    "AvgPool2D",
    "BatchNormalization",
    "BCResBlock",
    "MeanNormalization",
    "FloorNormalization",
    "CepstralLifter",
    "Conv2D",
    "Dense",
    "DepthwiseConv2D",
    "Dropout",
    "Flatten",
    "GlobalAveragePooling2D",
    "Layer",
    "LayerError",
    "Linear",
    "MaxPool2D",
    "ReLU",
    "Shape",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "layer_from_config",
    "layer_to_config",
    "make_activation",
]

"""Inference copies of trained models, with BatchNormalization folded into the layer before it.

At inference a BatchNormalization layer is a fixed affine map per channel,
``y = x * scale + shift`` with ``scale = gamma / sqrt(moving_var + epsilon)`` and
``shift = beta - moving_mean * scale``. When it directly follows a convolution or a Dense
layer that has no activation of its own, the map folds into that layer's kernel and bias:
``W' = W * scale`` (per output channel) and ``b' = b * scale + shift``. The copy computes the
same function, to float32 rounding, without the two passes over the activations that each
BatchNormalization costs. A ReLU layer right after becomes the folded layer's activation,
applied in place on the layer's fresh output instead of into a new array. On the DS-CNN
keyword model 18 of its 32 layers go (the usual inference optimisation of deployment tools,
e.g. TensorFlow Lite's converter).

The copy is for inference only: it cannot be trained back into the original, and it is never
saved in place of it (model files keep the trained layers).
"""

from __future__ import annotations

import numpy as np

from urgence.nn.layers import (
    BatchNormalization,
    BCResBlock,
    Conv2D,
    Dense,
    DepthwiseConv2D,
    Layer,
    ReLU,
    layer_from_config,
    layer_to_config,
)
from urgence.nn.model import Sequential

_FOLDABLE = (Conv2D, DepthwiseConv2D, Dense)


def _foldable(layer: Layer, following: Layer | None) -> bool:
    return (
        isinstance(layer, _FOLDABLE)
        and getattr(layer, "activation", None) in (None, "linear")
        and isinstance(following, BatchNormalization)
    )


def _folded_params(layer: Layer, norm: BatchNormalization) -> dict[str, np.ndarray]:
    """The kernel and bias of ``layer`` followed by ``norm`` (statistics fixed)."""
    _, scale, shift = norm.fixed_affine(np.float64)
    kernel = layer.params["W"].astype(np.float64)
    if isinstance(layer, Dense):  # (inputs, units): a column per output
        kernel = kernel * scale[None, :]
    else:  # (output channels, ...)
        kernel = kernel * scale.reshape(-1, *([1] * (kernel.ndim - 1)))
    bias = layer.params["b"].astype(np.float64) if "b" in layer.params else 0.0
    dtype = layer.params["W"].dtype
    return {"W": kernel.astype(dtype), "b": (bias * scale + shift).astype(dtype)}


def fold_batch_norm(model: Sequential) -> Sequential:
    """A new model computing ``model``'s inference function with every BatchNormalization
    that directly follows a Conv2D, DepthwiseConv2D or Dense layer (without an activation of
    its own) folded into it. ``model`` is left unchanged; its metadata is copied."""
    source = list(model.layers)
    specs: list[dict] = []
    states: list[dict[str, np.ndarray]] = []
    index = 0
    while index < len(source):
        layer = source[index]
        following = source[index + 1] if index + 1 < len(source) else None
        spec = layer_to_config(layer)
        if _foldable(layer, following):
            config = {**spec["config"], "use_bias": True}
            states.append(_folded_params(layer, following))
            index += 2
            after = source[index] if index < len(source) else None
            if type(after) is ReLU:
                config["activation"] = "relu"
                index += 1
            spec = {"class": spec["class"], "config": config}
        else:
            states.append({key: value.copy() for key, value in layer.state().items()})
            index += 1
        specs.append(spec)
    fused = Sequential(
        [layer_from_config(spec) for spec in specs], input_shape=model.input_shape, seed=model.seed
    )
    for layer, state in zip(fused.layers, states, strict=True):
        layer.load_state(state)
        layer.trainable = False
        if isinstance(layer, BCResBlock):
            layer.fix_norms()  # its norms are inside it: their maps are computed once
    fused.metadata = dict(model.metadata)
    return fused

"""Keyword-spotting architectures, built with ``urgence.nn``.

Both take a log-mel window ``(N, 1, 40, 98)`` float32 and end with logits followed by a
``Softmax`` layer over the class labels.

- ``compact_cnn``: in the spirit of the seed's transfer model (conv, conv, pool, dropout,
  flatten, dense, dropout, dense), with pooling after every convolution so that a 40 x 98
  window costs ~10 M multiply-accumulates instead of the seed's 374 x 129 input.
- ``dscnn``: depthwise-separable CNN of "Hello Edge" (Zhang et al., 2017): a 10 x 4 strided
  convolution, then blocks of depthwise 3 x 3 + pointwise 1 x 1, global average pooling.
  Hello Edge's input is 49 frames x 10 MFCC; ours is 40 mel bands x 98 frames, so after the
  first convolution there are 8 times as many positions. ``block_strides`` (default: the
  first block strided by 2) brings the cost back to Hello Edge's order (~7 M MACs instead
  of ~21 M); ``block_strides=(1, 1, 1, 1)`` is the original layout.
"""

from __future__ import annotations

from collections.abc import Callable

from urgence.nn import Sequential
from urgence.nn.layers import (
    BatchNormalization,
    BCResBlock,
    CepstralLifter,
    Conv2D,
    Dense,
    DepthwiseConv2D,
    Dropout,
    Flatten,
    FloorNormalization,
    GlobalAveragePooling2D,
    Layer,
    MaxPool2D,
    MeanNormalization,
    ReLU,
    Softmax,
)

INPUT_SHAPE = (1, 40, 98)


def compact_cnn_layers(n_classes: int, *, width: int = 16, dropout: float = 0.3) -> list[Layer]:
    w = width
    layers: list[Layer] = []
    for channels in (w, 2 * w, 4 * w):
        layers += [
            Conv2D(channels, 3, padding="same", use_bias=False),
            BatchNormalization(),
            ReLU(),
            MaxPool2D(2),
        ]
    return layers + [
        Dropout(dropout / 2),
        Flatten(),
        Dense(64, activation="relu"),
        Dropout(dropout),
        Dense(n_classes),
        Softmax(),
    ]


def dscnn_layers(
    n_classes: int,
    *,
    width: int = 64,
    block_strides: tuple[int, ...] = (2, 1, 1, 1),
    dropout: float = 0.2,
) -> list[Layer]:
    layers: list[Layer] = [
        Conv2D(width, (10, 4), strides=2, padding="same", use_bias=False),
        BatchNormalization(),
        ReLU(),
    ]
    for stride in block_strides:
        layers += [
            DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False),
            BatchNormalization(),
            ReLU(),
            Conv2D(width, 1, use_bias=False),
            BatchNormalization(),
            ReLU(),
        ]
    return layers + [GlobalAveragePooling2D(), Dropout(dropout), Dense(n_classes), Softmax()]


def bcresnet_layers(
    n_classes: int,
    *,
    width: int = 16,
    subbands: int = 5,
    time_stride: int = 1,
    dropout: float = 0.1,
) -> list[Layer]:
    """BC-ResNet (Kim et al. 2021) for a 40 x 98 window: a 5 x 5 convolution strided by 2 in
    frequency, four stages of broadcasted residual blocks (``width`` x 1, 1.5, 2, 2.5
    channels; 2, 2, 4, 4 blocks; frequency strided by 2 at stages 2 and 3; temporal dilation
    1, 2, 4, 8), then a 5 x 5 depthwise convolution over the last 5 frequency rows, a
    pointwise convolution to 4 x ``width`` channels and the average over time. The paper's
    BC-ResNet-tau has ``width`` = 8 tau. Time keeps its 98 frames throughout: the dilations,
    not strides, widen the temporal receptive field (to the whole window).

    ``time_stride`` 2 (not in the paper) also strides the first convolution in time: 49
    frames of 20 ms, half the work, temporal dilations 1, 1, 2, 4 (the same 1.1 s field).
    ``time_stride`` 4: 25 frames of 40 ms, a quarter of the work in the blocks, dilations
    1, 1, 1, 2 (a 1.4 s field), so that a wider network fits the detector's real-time
    budget, where the cost follows the size of the blocks' maps."""
    dilations_by_stride = {1: (1, 2, 4, 8), 2: (1, 1, 2, 4), 4: (1, 1, 1, 2)}
    if time_stride not in dilations_by_stride:
        raise ValueError(f"bcresnet: time_stride must be 1, 2 or 4, got {time_stride!r}")
    w = width
    layers: list[Layer] = [
        Conv2D(2 * w, (5, 5), strides=(2, time_stride), padding="same", use_bias=False),
        BatchNormalization(),
        ReLU(),
    ]
    dilations = dilations_by_stride[time_stride]
    stages = ((w, 2, 1), (w * 3 // 2, 2, 2), (2 * w, 4, 2), (w * 5 // 2, 4, 1))
    for (channels, blocks, freq_stride), dilation in zip(stages, dilations, strict=True):
        for block in range(blocks):
            layers.append(
                BCResBlock(
                    channels,
                    freq_stride=freq_stride if block == 0 else 1,
                    dilation=dilation,
                    subbands=subbands,
                )
            )
    return layers + [
        DepthwiseConv2D(5, use_bias=False),
        Conv2D(4 * w, 1, use_bias=False),
        BatchNormalization(),
        ReLU(),
        GlobalAveragePooling2D(),
        Dropout(dropout),
        Dense(n_classes),
        Softmax(),
    ]


ARCHITECTURES: dict[str, Callable[..., list[Layer]]] = {
    "compact_cnn": compact_cnn_layers,
    "dscnn": dscnn_layers,
    "bcresnet": bcresnet_layers,
}


def build(
    name: str,
    n_classes: int,
    *,
    seed: int = 0,
    cmn: bool = False,
    floor: bool = False,
    lifter: int = 0,
    **options,
) -> Sequential:
    """A keyword model ``name`` (one of ``ARCHITECTURES``) for ``n_classes`` labels.

    ``cmn``: start with cepstral mean normalisation (each mel band minus its mean over the
    window), which removes fixed channel and voice-quality colourings. ``floor``: start with
    noise-floor normalisation (``FloorNormalization``: each band minus its level in the
    window's quietest frames), as a second input channel beside the mean-normalised one if
    ``cmn`` is set too. ``lifter``: if not 0, then keep only the window's spectral envelope,
    its first ``lifter`` cepstral coefficients along the mel axis (``CepstralLifter``)."""
    try:
        make_layers = ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(ARCHITECTURES)
        raise ValueError(f"unknown architecture {name!r}; known: {known}") from None
    layers = make_layers(n_classes, **options)
    if floor:
        layers.insert(0, FloorNormalization(with_mean=cmn))
    elif cmn:
        layers.insert(0, MeanNormalization((3,)))
    if lifter:
        layers.insert(0, CepstralLifter(lifter))
    return Sequential(layers, input_shape=INPUT_SHAPE, seed=seed)


def count_macs(model: Sequential) -> int:
    """Multiply-accumulates of one forward pass on one input (convolutions and dense layers)."""
    total = 0
    for layer in model.layers:
        out = layer.output_shape
        if isinstance(layer, BCResBlock):
            total += layer.macs()
        elif isinstance(layer, Dense):
            total += layer.params["W"].size
        elif isinstance(layer, DepthwiseConv2D | Conv2D):
            # both store W as (out_channels, in_channels_per_group, kh, kw)
            total += layer.params["W"].size * out[1] * out[2]
    return int(total)

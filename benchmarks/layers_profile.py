"""Per-layer forward + backward times of the engine's layers against torch.nn.functional.

Shapes are those of the issue's benchmarks: the MNIST CNN (batch 128) and the DS-CNN keyword
model (1 x 40 x 98 log-mel windows; ``dscnn80``: the depthwise layers of the shipped width-80
model, training batch 64 and inference batch 1). The MNIST layers after the first convolution
get their input in the batch-last memory order a convolution hands on, the ``dscnn80`` ones
in the channel-major order, as in the networks. Prints the
best CPU time (``time.process_time``: less disturbed than wall time when the machine is
shared) per call, in milliseconds, and the ratio engine/torch. Whole-network ratios are
``benchmarks/engine_vs_torch.py``'s job.

    .venv/bin/python benchmarks/layers_profile.py --threads 1
    .venv/bin/python benchmarks/layers_profile.py --threads 2 --only conv
    .venv/bin/python benchmarks/layers_profile.py --threads 1 --only mnist --direct-conv
    .venv/bin/python benchmarks/layers_profile.py --threads 1 --only dscnn80 --repeats 20 --split
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from urgence.nn import layers


def best_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return 1000 * min(times)


def engine_split_ms(layer, x: np.ndarray, repeats: int) -> tuple[float, float]:
    """Best CPU ms of the engine's forward (training mode) and, after one, of its backward."""
    grad = np.ones_like(layer.forward(x, training=True))
    layer.backward(grad)
    forward, backward = [], []
    for _ in range(repeats):
        start = time.process_time()
        layer.forward(x, training=True)
        middle = time.process_time()
        layer.backward(grad)
        backward.append(time.process_time() - middle)
        forward.append(middle - start)
    return 1000 * min(forward), 1000 * min(backward)


def engine_step(layer, x: np.ndarray, backward: bool):
    grad = None

    def step():
        nonlocal grad
        out = layer.forward(x, training=backward)
        if backward:
            if grad is None:
                grad = np.ones_like(out)
            layer.backward(grad)

    return step


def torch_step(fn, x, backward: bool):
    import torch

    # PyTorch gets its usual contiguous (N, C, H, W) layout.
    tx = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(backward)

    def step():
        if backward:
            out = fn(tx)
            out.backward(torch.ones_like(out))
            tx.grad = None
        else:
            with torch.no_grad():
                fn(tx)

    return step


class Chain:
    """Layers run one after the other, as in a Sequential model: a ReLU followed by a
    max-pooling hands its gradient mask to the pooling, which only shows in a chain."""

    def __init__(self, *parts) -> None:
        self.parts = parts
        self.params = parts[0].params

    def build(self, shape, rng) -> None:
        for part in self.parts:
            part.build(shape, rng)
            shape = part.output_shape

    def forward(self, x, training=False):
        for part in self.parts:
            x = part.forward(x, training=training)
        return x

    def backward(self, grad):
        for part in reversed(self.parts):
            grad = part.backward(grad)
        return grad


def cases(rng: np.random.Generator):
    """(name, engine layer, input shape without batch, batch, torch function factory, backward)."""
    import torch
    import torch.nn.functional as F

    def conv(layer, shape, stride=1, padding=0, groups=1):
        w = torch.from_numpy(layer.params["W"]).requires_grad_(True)
        b = torch.from_numpy(layer.params["b"]).requires_grad_(True)
        return lambda x: F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)

    def dense(layer):
        w = torch.from_numpy(layer.params["W"].T.copy()).requires_grad_(True)
        b = torch.from_numpy(layer.params["b"]).requires_grad_(True)
        return lambda x: F.linear(x, w, b)

    specs = [
        (
            "mnist conv3x3(32) relu",
            layers.Conv2D(32, 3, activation="relu"),
            (1, 28, 28),
            128,
            lambda layer: (lambda f: lambda x: F.relu(f(x)))(conv(layer, (1, 28, 28))),
            True,
        ),
        (
            "mnist conv3x3(32) relu maxpool2",
            Chain(layers.Conv2D(32, 3, activation="relu"), layers.MaxPool2D(2)),
            (1, 28, 28),
            128,
            lambda layer: (lambda f: lambda x: F.max_pool2d(F.relu(f(x)), 2))(
                conv(layer, (1, 28, 28))
            ),
            True,
        ),
        (
            "mnist maxpool2 26",
            layers.MaxPool2D(2),
            (32, 26, 26),
            128,
            lambda layer: lambda x: F.max_pool2d(x, 2),
            True,
        ),
        (
            "mnist conv3x3(64) relu",
            layers.Conv2D(64, 3, activation="relu"),
            (32, 13, 13),
            128,
            lambda layer: (lambda f: lambda x: F.relu(f(x)))(conv(layer, (32, 13, 13))),
            True,
        ),
        (
            "mnist conv3x3(64) relu maxpool2",
            Chain(layers.Conv2D(64, 3, activation="relu"), layers.MaxPool2D(2)),
            (32, 13, 13),
            128,
            lambda layer: (lambda f: lambda x: F.max_pool2d(F.relu(f(x)), 2))(
                conv(layer, (32, 13, 13))
            ),
            True,
        ),
        (
            "mnist maxpool2 11",
            layers.MaxPool2D(2),
            (64, 11, 11),
            128,
            lambda layer: lambda x: F.max_pool2d(x, 2),
            True,
        ),
        (
            "mnist dense128 relu",
            layers.Dense(128, activation="relu"),
            (1600,),
            128,
            lambda layer: (lambda f: lambda x: F.relu(f(x)))(dense(layer)),
            True,
        ),
    ]
    for batch in (1, 32):
        specs += [
            (
                f"dscnn b{batch} conv10x4 s2 same",
                layers.Conv2D(64, (10, 4), strides=2, padding="same"),
                (1, 40, 98),
                batch,
                lambda layer: (lambda f: lambda x: f(F.pad(x, (1, 2, 4, 4))))(
                    conv(layer, (1, 40, 98), stride=2)
                ),
                False,
            ),
            (
                f"dscnn b{batch} dw3x3 same",
                layers.DepthwiseConv2D(3, padding="same"),
                (64, 20, 49),
                batch,
                lambda layer: conv(layer, (64, 20, 49), padding=1, groups=64),
                False,
            ),
            (
                f"dscnn b{batch} pw1x1(64)",
                layers.Conv2D(64, 1),
                (64, 20, 49),
                batch,
                lambda layer: conv(layer, (64, 20, 49)),
                False,
            ),
            (
                f"dscnn b{batch} batchnorm",
                layers.BatchNormalization(),
                (64, 20, 49),
                batch,
                None,
                False,
            ),
        ]
    specs += [
        (
            "dscnn b32 dw3x3 same train",
            layers.DepthwiseConv2D(3, padding="same"),
            (64, 20, 49),
            32,
            lambda layer: conv(layer, (64, 20, 49), padding=1, groups=64),
            True,
        ),
        (
            "dscnn b32 pw1x1(64) train",
            layers.Conv2D(64, 1),
            (64, 20, 49),
            32,
            lambda layer: conv(layer, (64, 20, 49)),
            True,
        ),
        (
            "dscnn b32 conv10x4 train",
            layers.Conv2D(64, (10, 4), strides=2, padding="same"),
            (1, 40, 98),
            32,
            lambda layer: (lambda f: lambda x: f(F.pad(x, (1, 2, 4, 4))))(
                conv(layer, (1, 40, 98), stride=2)
            ),
            True,
        ),
    ]
    # The shipped keyword model's depthwise layers (DS-CNN width 80): the stride-2 one after
    # the first convolution, then the stride-1 ones; training at batch 64, inference at 1.
    # "same" with stride 2 pads 20 x 49 by (0, 1) rows and (1, 1) columns, hence F.pad.
    for batch, train in ((64, True), (1, False)):
        suffix = " train" if train else ""
        specs += [
            (
                f"dscnn80 b{batch} dw3x3 s2 same{suffix}",
                layers.DepthwiseConv2D(3, strides=2, padding="same"),
                (80, 20, 49),
                batch,
                lambda layer: (lambda f: lambda x: f(F.pad(x, (1, 1, 0, 1))))(
                    conv(layer, (80, 20, 49), stride=2, groups=80)
                ),
                train,
            ),
            (
                f"dscnn80 b{batch} dw3x3 s1 same{suffix}",
                layers.DepthwiseConv2D(3, padding="same"),
                (80, 10, 25),
                batch,
                lambda layer: conv(layer, (80, 10, 25), padding=1, groups=80),
                train,
            ),
        ]
    for name, layer, shape, batch, torch_factory, backward in specs:
        layer.build(shape, rng)
        x = rng.standard_normal((batch, *shape), dtype=np.float32)
        if name.startswith("mnist") and len(shape) == 3 and shape[0] > 1:
            # In the network these layers read a convolution's output, which is batch-last
            # (C, H, W, N) memory handed on as an (N, C, H, W) view.
            x = np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
        if name.startswith("dscnn80"):
            # In the network they read channel-major (C, N, H, W) memory: the output of the
            # first convolution or of a 1x1 convolution, through BatchNormalization and ReLU.
            x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
        yield name, layer, x, torch_factory, backward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--only", default="", help="substring of the case names to run")
    parser.add_argument(
        "--split",
        action="store_true",
        help="also the engine's forward and backward times, apart (training cases)",
    )
    parser.add_argument(
        "--direct-conv",
        action="store_true",
        help="for comparison: 3x3 convolutions by im2col, not Winograd",
    )
    args = parser.parse_args()
    if args.direct_conv:
        from urgence.nn.layers import conv

        conv.WINOGRAD_MIN_CHANNELS = 1 << 62
    import torch

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    with threadpool_limits(args.threads):
        split = f" {'fwd ms':>7s} {'bwd ms':>7s}" if args.split else ""
        print(f"{'case':34s} {'engine ms':>10s} {'torch ms':>9s} {'ratio':>6s}{split}")
        for name, layer, x, torch_factory, backward in cases(rng):
            if args.only not in name:
                continue
            ours = best_ms(engine_step(layer, x, backward), args.repeats)
            apart = ""
            if args.split and backward:
                apart = " {:7.2f} {:7.2f}".format(*engine_split_ms(layer, x, args.repeats))
            if torch_factory is None:
                print(f"{name:34s} {ours:10.2f} {'':9s} {'':6s}{apart}")
                continue
            theirs = best_ms(torch_step(torch_factory(layer), x, backward), args.repeats)
            print(f"{name:34s} {ours:10.2f} {theirs:9.2f} {ours / theirs:6.2f}{apart}")


if __name__ == "__main__":
    main()

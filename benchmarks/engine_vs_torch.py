"""urgence.nn against PyTorch (CPU), same architectures, same optimiser, interleaved runs.

Cases (MNIST-shaped random data, 60,000 x 1 x 28 x 28 float32, batch 128, one epoch of SGD
with momentum 0.9, lr 0.01):

    softmax   Flatten - Dense 10                                      2 threads
    mlp       784 - 256 - 128 - 10 (ReLU)                             2 threads
    cnn_2t    conv3x3(32) ReLU maxpool2 conv3x3(64) ReLU maxpool2
              dense128 ReLU dense10                                   2 threads
    cnn_1t    the same CNN                                            1 thread
    dscnn_b1  inference of the DS-CNN keyword model ("Hello Edge", urgence.kws.architectures
              .dscnn_layers: conv 10x4/2 64 + BN + ReLU, 4 x [depthwise 3x3 + BN + ReLU +
              pointwise 64 + BN + ReLU], global average pooling, dense 14) on 1 x 40 x 98,
              batch 1; BatchNormalization folded into the convolutions, as the
              product runs it (urgence.nn.fusion; --no-fold: unfolded)  --dscnn-threads (2)
    dscnn_b32 the same, batch 32                                      --dscnn-threads (2)
    bcres_b1  inference of the shipped keyword model's network: BC-ResNet, width 40, time
              stride 4, after cepstral mean normalisation (urgence.kws.architectures
              .bcresnet_layers), batch 1, folded as the product runs it    1 thread
    bcres_t64 its training steps: batch 64, Adam (lr 0.001), as ``urgence train`` fits it
              on one process                                          1 thread

Each repeat runs every case once per framework, alternating which goes first; the figures
are medians over the repeats. Threads: ``torch.set_num_threads`` for PyTorch, threadpoolctl
for NumPy's OpenBLAS. For each run the script measures wall time, this process's CPU time
(cpu/wall: ~threads when the threads really ran, lower when the machine is shared) and the
CPU time of *other* processes from /proc/stat; it prints a warning when either says the
machine was busy, because such a pair says little.

OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE may be set on this machine (for old OpenBLAS builds);
they slow a current NumPy. Run with both unset for this command only:
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/engine_vs_torch.py``
(the script prints the OpenBLAS kernel it got).

Usage: ``engine_vs_torch.py [--quick] [--repeats N] [--json] [--cases softmax,mlp,...]
[--engine-threads]`` (see --help).
PyTorch is optional (``pip install torch==2.13.0``); without it only urgence is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from urgence.kws.architectures import build, dscnn_layers
from urgence.nn import Sequential, optimizers
from urgence.nn.fusion import fold_batch_norm
from urgence.nn.layers import BCResBlock, Conv2D, Dense, Flatten, MaxPool2D, Softmax

try:
    import torch
    from torch import nn
except ImportError:  # PyTorch is optional
    torch = None

LEARNING_RATE, MOMENTUM, BATCH = 0.01, 0.9, 128
MNIST_SHAPE, KWS_SHAPE, KWS_CLASSES = (1, 28, 28), (1, 40, 98), 14
TARGETS = {
    "softmax": 0.7,
    "mlp": 0.85,
    "cnn_2t": 1.0,
    "cnn_1t": 0.9,
    "dscnn_b1": 1.2,
    "dscnn_b32": 0.7,
    "bcres_b1": 1.2,
    "bcres_t64": 1.0,
}
BCRES_WIDTH, BCRES_TIME_STRIDE, BCRES_BATCH = 40, 4, 64


# -- the architectures, once per framework -------------------------------------------------
def urgence_layers(case: str) -> list:
    if case == "softmax":
        return [Flatten(), Dense(10), Softmax()]
    if case == "mlp":
        return [
            Flatten(),
            Dense(256, activation="relu"),
            Dense(128, activation="relu"),
            Dense(10),
            Softmax(),
        ]
    if case.startswith("cnn"):
        return [
            Conv2D(32, 3, activation="relu"),
            MaxPool2D(2),
            Conv2D(64, 3, activation="relu"),
            MaxPool2D(2),
            Flatten(),
            Dense(128, activation="relu"),
            Dense(10),
            Softmax(),
        ]
    return dscnn_layers(KWS_CLASSES)


def urgence_model(case: str) -> Sequential:
    """The case's network in urgence.nn; the BC-ResNet as ``urgence train`` builds it."""
    if case.startswith("bcres"):
        return build(
            "bcresnet",
            KWS_CLASSES,
            seed=0,
            cmn=True,
            width=BCRES_WIDTH,
            time_stride=BCRES_TIME_STRIDE,
        )
    shape = KWS_SHAPE if case.startswith("dscnn") else MNIST_SHAPE
    return Sequential(urgence_layers(case), input_shape=shape, seed=0)


def torch_bcresnet(model: Sequential):
    """The BC-ResNet ``model`` (``urgence_model``) in PyTorch, layer for layer: its blocks'
    channels, strides and dilations are read from its ``BCResBlock`` layers."""

    class MeanOverTime(nn.Module):
        def forward(self, x):
            return x - x.mean(dim=3, keepdim=True)

    class Block(nn.Module):
        def __init__(self, c_in: int, c: int, freq_stride: int, dilation: int, subbands: int):
            super().__init__()
            self.transition = c_in != c or freq_stride != 1
            if self.transition:
                self.enter = nn.Sequential(
                    nn.Conv2d(c_in, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU()
                )
            self.frequency = nn.Conv2d(
                c, c, (3, 1), stride=(freq_stride, 1), padding=(1, 0), groups=c, bias=False
            )
            self.subbands = subbands
            self.sub_norm = nn.BatchNorm2d(c * subbands)
            self.temporal = nn.Sequential(
                nn.Conv2d(
                    c,
                    c,
                    (1, 3),
                    padding=(0, dilation),
                    dilation=(1, dilation),
                    groups=c,
                    bias=False,
                ),
                nn.BatchNorm2d(c),
                nn.SiLU(),
                nn.Conv2d(c, c, 1, bias=False),
            )

        def forward(self, x):
            h = self.enter(x) if self.transition else x
            f2 = self.frequency(h)
            n, c, f, t = f2.shape
            f2 = self.sub_norm(f2.reshape(n, c * self.subbands, f // self.subbands, t))
            f2 = f2.reshape(n, c, f, t)
            out = f2 + self.temporal(f2.mean(dim=2, keepdim=True))
            return torch.relu(out if self.transition else out + x)

    stem = next(layer for layer in model.layers if isinstance(layer, Conv2D))
    head = [layer for layer in model.layers if isinstance(layer, Conv2D)][-1]
    stem_channels, _, kernel, _ = stem.params["W"].shape
    layers = [
        MeanOverTime(),
        nn.Conv2d(1, stem_channels, kernel, stride=stem.strides, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(stem_channels),
        nn.ReLU(),
    ]
    c_in = stem_channels
    for block in (layer for layer in model.layers if isinstance(layer, BCResBlock)):
        layers.append(Block(c_in, block.filters, block.freq_stride, block.dilation, block.subbands))
        c_in = block.filters
    width_out = head.params["W"].shape[0]
    layers += [
        nn.Conv2d(c_in, c_in, 5, groups=c_in, bias=False),
        nn.Conv2d(c_in, width_out, 1, bias=False),
        nn.BatchNorm2d(width_out),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.1),
        nn.Linear(width_out, KWS_CLASSES),
    ]
    return nn.Sequential(*layers)


def torch_module(case: str):
    if case.startswith("bcres"):
        return torch_bcresnet(urgence_model(case))
    if case == "softmax":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    if case == "mlp":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 256),
            nn.ReLU(),
            nn.Linear(256, 128),
            nn.ReLU(),
            nn.Linear(128, 10),
        )
    if case.startswith("cnn"):
        return nn.Sequential(
            nn.Conv2d(1, 32, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 5 * 5, 128),
            nn.ReLU(),
            nn.Linear(128, 10),
        )
    width = 64
    # Keras "same" padding of a 10x4 stride-2 kernel on 40x98 is symmetric: (4, 1)
    layers = [
        nn.Conv2d(1, width, (10, 4), stride=2, padding=(4, 1), bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
    ]
    for _ in range(4):
        layers += [
            nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        ]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(width, 14)]
    return nn.Sequential(*layers, nn.Softmax(dim=1))


# -- timing ---------------------------------------------------------------------------
def _busy_ticks() -> int | None:
    """CPU ticks spent busy by the whole machine so far (Linux), else None."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields[:8]) - idle


@dataclass
class Timing:
    wall: float
    cpu: float  # this process
    others: float | None  # CPU seconds of every other process over the same wall time


def timed(run: Callable[[], object]) -> Timing:
    ticks_per_s = os.sysconf("SC_CLK_TCK")
    busy0, cpu0, wall0 = _busy_ticks(), time.process_time(), time.perf_counter()
    run()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    busy1 = _busy_ticks()
    others = None if busy0 is None else max(0.0, (busy1 - busy0) / ticks_per_s - cpu)
    return Timing(wall, cpu, others)


@dataclass
class Case:
    name: str
    threads: int
    urgence_run: Callable[[], object]
    torch_run: Callable[[], object] | None


def training_case(name: str, threads: int, n: int, rng: np.random.Generator) -> Case:
    x = rng.random((n, *MNIST_SHAPE), dtype=np.float32)
    y = rng.integers(0, 10, n)
    model = urgence_model(name)
    model.compile("cross_entropy", optimizers.SGD(LEARNING_RATE, momentum=MOMENTUM))

    def urgence_epoch() -> None:
        model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0, rng=rng)

    torch_epoch = None
    if torch is not None:
        module = torch_module(name)
        optimizer = torch.optim.SGD(module.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
        x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
        loss_fn = nn.CrossEntropyLoss()

        def torch_epoch() -> None:
            module.train()
            order = torch.from_numpy(rng.permutation(n))
            for start in range(0, n, BATCH):
                chosen = order[start : start + BATCH]
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(module(x_t[chosen]), y_t[chosen])
                loss.backward()
                optimizer.step()

    return Case(name, threads, urgence_epoch, torch_epoch)


def keyword_training_case(name: str, steps: int, rng: np.random.Generator) -> Case:
    """Training steps of the shipped keyword network on random log-mel windows, Adam."""
    x = rng.standard_normal((steps * BCRES_BATCH, *KWS_SHAPE), dtype=np.float32)
    y = rng.integers(0, KWS_CLASSES, len(x))
    model = urgence_model(name)
    model.compile("cross_entropy", optimizers.Adam(0.001))
    batches = [slice(i * BCRES_BATCH, (i + 1) * BCRES_BATCH) for i in range(steps)]

    def urgence_steps() -> None:
        for rows in batches:
            model.train_on_batch(x[rows], y[rows])

    torch_steps = None
    if torch is not None:
        module = torch_module(name)
        optimizer = torch.optim.Adam(module.parameters(), lr=0.001)
        x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
        loss_fn = nn.CrossEntropyLoss()

        def torch_steps() -> None:
            module.train()
            for rows in batches:
                optimizer.zero_grad(set_to_none=True)
                loss_fn(module(x_t[rows]), y_t[rows]).backward()
                optimizer.step()

    return Case(name, 1, urgence_steps, torch_steps)


def inference_case(
    name: str, threads: int, batch: int, calls: int, rng, *, fold: bool = True
) -> Case:
    x = rng.standard_normal((batch, *KWS_SHAPE), dtype=np.float32)
    network = "bcres" if name.startswith("bcres") else "dscnn"
    model = urgence_model(network)
    if fold:
        # what the product runs (urgence.kws.model.KeywordModel): BatchNormalization folded
        # into the convolutions; PyTorch's eager mode runs its BatchNorm2d layers as they are
        model = fold_batch_norm(model)

    def urgence_calls() -> None:
        for _ in range(calls):
            model.predict_proba(x, batch_size=batch)

    torch_calls = None
    if torch is not None:
        module = torch_module(network).eval()
        x_t = torch.from_numpy(x)

        def torch_calls() -> None:
            with torch.inference_mode():
                for _ in range(calls):
                    module(x_t)

    return Case(name, threads, urgence_calls, torch_calls)


def _in_engine_threads(run: Callable[[], object]) -> Callable[[], object]:
    from urgence.nn.layers._parallel import engine_threads

    def run_owning_threads() -> object:
        with engine_threads():
            return run()

    return run_owning_threads


def run_with_threads(threads: int, run: Callable[[], object]) -> Timing:
    if torch is not None:
        torch.set_num_threads(threads)
    with threadpool_limits(limits=threads, user_api="blas"):
        return timed(run)


def blas_description() -> str:
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            kernel = pool.get("architecture")
            return f"{pool.get('internal_api')} {pool.get('version')}, kernel {kernel}"
    return "no BLAS found by threadpoolctl"


def warning_for(timings: list[Timing], threads: int) -> str | None:
    """Why this case's pairs may not mean much, or None."""
    notes = []
    cpu_wall = statistics.median(t.cpu / t.wall for t in timings)
    if threads == 1 and cpu_wall < 0.85:
        notes.append(f"cpu/wall {cpu_wall:.2f} with 1 thread: the process was descheduled")
    if threads == 2 and cpu_wall < 1.2:
        notes.append(
            f"cpu/wall {cpu_wall:.2f} with 2 threads: the second thread was mostly idle "
            "(busy machine, or too little work per call)"
        )
    others = [t.others / t.wall for t in timings if t.others is not None]
    if others and statistics.median(others) > 0.25:
        notes.append(
            f"other processes used {statistics.median(others):.2f} CPU on average: machine busy"
        )
    return "; ".join(notes) or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="6,000 samples, fewer calls")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved pairs per case")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--cases", default=",".join(TARGETS), help="comma-separated subset")
    parser.add_argument("--dscnn-threads", type=int, default=2, choices=(1, 2))
    parser.add_argument(
        "--one-thread",
        action="store_true",
        help="run every case on 1 thread (on a busy machine, compare urgence_cpu_s/torch_cpu_s)",
    )
    parser.add_argument(
        "--engine-threads",
        action="store_true",
        help="experiment: urgence runs its threads itself, BLAS on one thread, element-wise "
        "work and the convolutions' GEMMs split (urgence.nn.layers._parallel.engine_threads)",
    )
    parser.add_argument(
        "--no-fold",
        action="store_true",
        help="for comparison: DS-CNN inference with its BatchNormalization layers run as "
        "layers, not folded into the convolutions (urgence.nn.fusion)",
    )
    parser.add_argument(
        "--direct-conv",
        action="store_true",
        help="for comparison: 3x3 convolutions by im2col, not Winograd "
        "(urgence.nn.layers.conv.WINOGRAD_MIN_CHANNELS set out of reach)",
    )
    args = parser.parse_args(argv)
    if args.direct_conv:
        from urgence.nn.layers import conv

        conv.WINOGRAD_MIN_CHANNELS = sys.maxsize
    names = [name for name in args.cases.split(",") if name]
    unknown = sorted(set(names) - set(TARGETS))
    if unknown or args.repeats < 1:
        parser.error(f"unknown cases {unknown}" if unknown else "--repeats must be >= 1")
    n = 6_000 if args.quick else 60_000
    calls_b1, calls_b32 = (20, 3) if args.quick else (200, 20)
    train_steps = 5 if args.quick else 30
    rng = np.random.default_rng(0)
    log = sys.stderr
    for variable in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if variable in os.environ:
            print(
                f"warning: {variable}={os.environ[variable]} is set and slows NumPy; rerun "
                "with env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE",
                file=log,
            )
    print(
        f"numpy {np.__version__} ({blas_description()}); "
        + (f"torch {torch.__version__}" if torch else "torch not installed: urgence only"),
        file=log,
    )
    builders = {
        "softmax": lambda: training_case("softmax", 2, n, rng),
        "mlp": lambda: training_case("mlp", 2, n, rng),
        "cnn_2t": lambda: training_case("cnn_2t", 2, n, rng),
        "cnn_1t": lambda: training_case("cnn_1t", 1, n, rng),
        "dscnn_b1": lambda: inference_case(
            "dscnn_b1", args.dscnn_threads, 1, calls_b1, rng, fold=not args.no_fold
        ),
        "dscnn_b32": lambda: inference_case(
            "dscnn_b32", args.dscnn_threads, 32, calls_b32, rng, fold=not args.no_fold
        ),
        "bcres_b1": lambda: inference_case("bcres_b1", 1, 1, calls_b1, rng, fold=not args.no_fold),
        "bcres_t64": lambda: keyword_training_case("bcres_t64", train_steps, rng),
    }
    cases = [builders[name]() for name in names]
    if args.engine_threads:
        for case in cases:
            case.urgence_run = _in_engine_threads(case.urgence_run)
    if args.one_thread:
        for case in cases:
            case.threads = 1
    per_call = {
        "dscnn_b1": calls_b1,
        "dscnn_b32": calls_b32,
        "bcres_b1": calls_b1,
        "bcres_t64": train_steps,
    }
    timings: dict[str, dict[str, list[Timing]]] = {
        c.name: {"urgence": [], "torch": []} for c in cases
    }
    for repeat in range(args.repeats):
        for case in cases:
            runs = [("urgence", case.urgence_run), ("torch", case.torch_run)]
            if repeat % 2:
                runs.reverse()
            for framework, run in runs:
                if run is None:
                    continue
                timing = run_with_threads(case.threads, run)
                timings[case.name][framework].append(timing)
                print(
                    f"  repeat {repeat + 1}/{args.repeats} {case.name:9s} {framework:7s} "
                    f"{timing.wall:8.3f} s  cpu/wall {timing.cpu / timing.wall:.2f}",
                    file=log,
                )
    results = {}
    for case in cases:
        scale = per_call.get(case.name, 1)
        own, theirs = timings[case.name]["urgence"], timings[case.name]["torch"]
        urgence_s = statistics.median(t.wall for t in own) / scale
        torch_s = statistics.median(t.wall for t in theirs) / scale if theirs else None
        ratio = urgence_s / torch_s if torch_s else None
        results[case.name] = {
            "urgence_s": urgence_s,
            "torch_s": torch_s,
            "ratio": ratio,
            "target": TARGETS[case.name],
            "meets_target": None if ratio is None else ratio <= TARGETS[case.name],
            "threads": case.threads,
            "pairs": len(own),
            # CPU seconds: with 1 thread, a ratio that a busy machine distorts less than wall
            "urgence_cpu_s": statistics.median(t.cpu for t in own) / scale,
            "torch_cpu_s": statistics.median(t.cpu for t in theirs) / scale if theirs else None,
            "cpu_ratio": (
                statistics.median(t.cpu for t in own) / statistics.median(t.cpu for t in theirs)
                if theirs
                else None
            ),
            "urgence_cpu_wall": statistics.median(t.cpu / t.wall for t in own),
            "torch_cpu_wall": statistics.median(t.cpu / t.wall for t in theirs) if theirs else None,
            "warning": warning_for(own + theirs, case.threads),
        }
    print_table(results, sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


def print_table(results: dict[str, dict], stream) -> None:
    unit = {
        "dscnn_b1": "s/call",
        "dscnn_b32": "s/call",
        "bcres_b1": "s/call",
        "bcres_t64": "s/step",
    }
    print(
        f"{'case':10s} {'thr':>3s} {'urgence':>10s} {'torch':>10s} {'ratio':>6s} "
        f"{'target':>6s} {'cpu/wall u':>10s} {'cpu/wall t':>10s} {'cpu ratio':>9s}",
        file=stream,
    )
    for name, r in results.items():
        torch_text = f"{r['torch_s']:10.4f}" if r["torch_s"] else f"{'-':>10s}"
        ratio_text = f"{r['ratio']:6.2f}" if r["ratio"] else f"{'-':>6s}"
        mark = "" if r["meets_target"] is None else (" ok" if r["meets_target"] else " MISSED")
        torch_cpu = f"{r['torch_cpu_wall']:10.2f}" if r["torch_cpu_wall"] else f"{'-':>10s}"
        cpu_ratio = f"{r['cpu_ratio']:9.2f}" if r["cpu_ratio"] else f"{'-':>9s}"
        print(
            f"{name:10s} {r['threads']:3d} {r['urgence_s']:10.4f} {torch_text} {ratio_text} "
            f"{r['target']:6.2f} {r['urgence_cpu_wall']:10.2f} {torch_cpu} {cpu_ratio}{mark}"
            + (f"  ({unit[name]})" if name in unit else "  (s/epoch)"),
            file=stream,
        )
        if r["warning"]:
            print(f"  warning: {r['warning']}", file=stream)


if __name__ == "__main__":
    sys.exit(main())

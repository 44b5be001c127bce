"""Training steps of the shipped keyword model's architecture on one process and on several.

The model is what ``urgence train`` fine-tunes: a network of ``urgence.kws.architectures``
(``--architecture``: ``bcresnet``, the shipped one, width 40 and time stride 4 by default;
``dscnn``, width 80 by default) after a mean-normalisation layer, 14 classes, Adam, on random
1 x 40 x 98 windows, batch 64 (``--batch``). Three ways to run a step, interleaved so that
each repeat meets the same machine:

    1 process, 1 BLAS thread    the reference (the ratio column divides by it)
    1 process, 2 BLAS threads   what threads inside one process give
    DataParallel, 2 processes   urgence.nn.data_parallel: the batch split in two, 1 thread each

Each repeat times ``--steps`` steps after 3 warm-up steps; the figures are the median and
the range over ``--repeats``. The machine should be otherwise idle: the script prints the
load average before and after. As ``urgence train`` does, the process first tells glibc to
keep freed memory (``urgence.nn.memory``); ``--default-malloc`` leaves glibc's defaults.

usage: benchmarks/training_processes.py [--architecture bcresnet|dscnn] [--width W]
                                        [--batch 64] [--steps 30] [--repeats 5]
                                        [--default-malloc]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from urgence.kws import architectures
from urgence.nn.data_parallel import DataParallel
from urgence.nn.memory import keep_freed_memory
from urgence.nn.optimizers import Adam

# the recipe's options (scripts/train-from-nothing.sh) besides the width
OPTIONS = {"bcresnet": {"time_stride": 4}, "dscnn": {}}
DEFAULT_WIDTH = {"bcresnet": 40, "dscnn": 80}


def _model(architecture: str, width: int):
    model = architectures.build(
        architecture, 14, seed=0, width=width, cmn=True, **OPTIONS[architecture]
    )
    return model.compile("cross_entropy", Adam(0.001))


def _time_steps(trainer, x: np.ndarray, y: np.ndarray, batch: int, steps: int) -> float:
    """Milliseconds per step over ``steps`` steps after 3 warm-up steps."""
    for i in range(3):
        trainer.train_on_batch(x[i * batch : (i + 1) * batch], y[i * batch : (i + 1) * batch])
    start = time.perf_counter()
    for i in range(steps):
        rows = slice(i * batch, (i + 1) * batch)
        trainer.train_on_batch(x[rows], y[rows])
    return (time.perf_counter() - start) / steps * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--architecture", choices=sorted(OPTIONS), default="bcresnet")
    parser.add_argument("--width", type=int, help="default: 40 for bcresnet, 80 for dscnn")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--default-malloc", action="store_true", help="glibc's defaults")
    args = parser.parse_args(argv)
    width = args.width or DEFAULT_WIDTH[args.architecture]

    def model():
        return _model(args.architecture, width)

    if not args.default_malloc:
        keep_freed_memory()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch * args.steps, 1, 40, 98)).astype(np.float32)
    y = rng.integers(0, 14, len(x))
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    times: dict[str, list[float]] = {"1 process, 1 thread": [], "1 process, 2 threads": []}
    times["DataParallel, 2 processes"] = []
    for _ in range(args.repeats):
        with threadpool_limits(1, user_api="blas"):
            times["1 process, 1 thread"].append(_time_steps(model(), x, y, args.batch, args.steps))
        with threadpool_limits(2, user_api="blas"):
            times["1 process, 2 threads"].append(_time_steps(model(), x, y, args.batch, args.steps))
        with threadpool_limits(1, user_api="blas"):
            with DataParallel(model(), processes=2, max_batch=args.batch) as trainer:
                times["DataParallel, 2 processes"].append(
                    _time_steps(trainer, x, y, args.batch, args.steps)
                )
    reference = statistics.median(times["1 process, 1 thread"])
    shape = f"{args.architecture} width {width}, batch {args.batch}"
    print(f"{shape}, {args.steps} steps x {args.repeats}")
    print(f"{'way':28s} {'ms/step':>8s} {'range':>13s} {'speed-up':>9s}")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"{name:28s} {median:8.1f} {min(values):6.1f}-{max(values):<6.1f} "
            f"{reference / median:8.2f}x"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``urgence demo NAME``: run one of the seed project's experiments, reproduced and beaten.

Each demo is a module of this package exposing ``MODELS`` (its model names, the default
first), ``DEFAULT_EPOCHS`` (model -> epochs, None for demos that do not train),
``DATA_SET`` for the demos that read one (``--limit`` and ``--data`` apply to those only) and
``run(config: DemoConfig) -> dict``. This command resolves the options, times the run, and
prints either a short summary or, with ``--json``, exactly one JSON object on stdout (progress
and anything else the run prints go to stderr). ``seconds`` is wall time; ``cpu_seconds`` is
the CPU time of the process (all its threads), which says more on a shared machine.

Exit status: 0 on success; 2 for an option that does not fit the demo or missing data (the
message says how to install it); 1 for a data file that is present but unreadable, or
figures that cannot be written.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from urgence.demos.common import DemoConfig, DemoError

DEMOS: dict[str, tuple[str, str]] = {
    "gradient-descent": ("urgence.demos.gradient_descent",
                         "gradient descent on (x - 0.75)^2: learning rates, momentum"),
    "xor": ("urgence.demos.xor", "a 2-2-1 sigmoid network learns XOR"),
    "mnist": ("urgence.demos.mnist", "handwritten digits: softmax, MLP, CNN"),
    "fashion-mnist": ("urgence.demos.fashion_mnist", "clothes: the seed's CNN and a better one"),
    "convolution": ("urgence.demos.convolution", "edge detection through the engine's Conv2D"),
    "activations": ("urgence.demos.activations", "sigmoid, tanh, ReLU and their derivatives"),
}

DEFAULT_OUT = Path("docs/figures")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = "Run one of the seed project's experiments. " + "; ".join(
        f"{name}: {text}" for name, (_, text) in DEMOS.items()
    )
    parser.add_argument("name", choices=list(DEMOS), help="the demo to run")
    parser.add_argument("--model", help="model variant (default: the demo's first; "
                        "mnist: softmax, mlp, cnn; fashion-mnist: seed, cnn)")
    parser.add_argument("--epochs", type=int, help="training epochs (default: per model)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"folder for the PNG figures (default {DEFAULT_OUT})")
    parser.add_argument("--limit", type=int,
                        help="train and test on at most N images (quick runs)")
    parser.add_argument("--data", type=Path,
                        help="data file (mnist.pkl.gz) or folder (Fashion-MNIST IDX files) "
                        "instead of the installed one")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object on stdout instead of a summary")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _demo_config(module: Any, args: argparse.Namespace) -> DemoConfig:
    model = args.model or module.MODELS[0]
    if model not in module.MODELS:
        raise DemoError(f"demo {args.name} has no model {model!r}; choose from "
                        f"{', '.join(module.MODELS)}")
    epochs = module.DEFAULT_EPOCHS[model]
    if args.epochs is not None:
        if epochs is None:
            raise DemoError(f"demo {args.name} does not train: --epochs does not apply")
        if args.epochs < 1:
            raise DemoError(f"--epochs must be at least 1, got {args.epochs}")
        epochs = args.epochs
    if getattr(module, "DATA_SET", None) is None and (args.limit or args.data):
        raise DemoError(f"demo {args.name} reads no data set: --limit and --data do not apply")
    if args.limit is not None and args.limit < 1:
        raise DemoError(f"--limit must be at least 1, got {args.limit}")
    return DemoConfig(model=model, epochs=epochs, seed=args.seed, out=args.out,
                      limit=args.limit, data=args.data, verbose=not args.quiet)


def _summary(result: dict[str, Any]) -> str:
    lines = [f"{result['demo']} ({result['model']}): {result['seconds']:.1f} s "
             f"({result['cpu_seconds']:.1f} s CPU)"
             + (f", epochs: {result['epochs']}" if result["epochs"] else "")]
    for key, value in result.items():
        if key in ("demo", "model", "epochs", "seconds", "cpu_seconds", "figures", "history"):
            continue
        if isinstance(value, float):
            value = f"{value:.4f}"
        lines.append(f"  {key}: {value}")
    lines += [f"  figure: {path}" for path in result.get("figures", [])]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from urgence.demos.data import DataFormatError, DataUnavailableError

    module = importlib.import_module(DEMOS[args.name][0])
    try:
        config = _demo_config(module, args)
        start, cpu_start = time.perf_counter(), time.process_time()
        # Whatever the run prints (the engine's progress bars) must not pollute the JSON.
        with contextlib.redirect_stdout(sys.stderr):
            fields = module.run(config)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    except (DemoError, DataUnavailableError) as exc:
        print(f"urgence demo {args.name}: {exc}", file=sys.stderr)
        return 2
    except DataFormatError as exc:
        print(f"urgence demo {args.name}: unreadable data: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # figures: --out not writable, disk full
        print(f"urgence demo {args.name}: cannot write figures: {exc}", file=sys.stderr)
        return 1
    result = {"demo": args.name, "model": config.model, "epochs": config.epochs,
              "seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2), **fields}
    print(json.dumps(result, ensure_ascii=False) if args.json else _summary(result))
    return 0

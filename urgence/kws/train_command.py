"""``urgence train``: train a keyword model (see ``urgence.kws.train``)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields


def configure(parser: argparse.ArgumentParser) -> None:
    from urgence.kws.train import TrainConfig

    parser.add_argument("--config", help="JSON file of training settings")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting (repeatable); settings: "
        + ", ".join(f.name for f in fields(TrainConfig)),
    )
    parser.add_argument("--data", help="corpus folder (or Speech Commands folder)")
    parser.add_argument("--out", help="where to write the model (stem: OUT.npz + OUT.json)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--run-dir", help="checkpoints and state, for --resume")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    from urgence.corpus.dataset import DatasetError
    from urgence.kws.train import TrainConfig, train
    from urgence.nn import ModelFileError
    from urgence.nn.memory import keep_freed_memory

    overrides = list(args.overrides)
    for key in ("data", "out", "epochs", "run_dir"):
        value = getattr(args, key)
        if value is not None:
            overrides.append(f"{key}={value}" if key != "epochs" else f"epochs={int(value)}")
    keep_freed_memory()
    try:
        config = TrainConfig.from_sources(args.config, overrides)
        out = train(config, resume=args.resume, verbose=0 if args.quiet else 1)
    except (ValueError, DatasetError, ModelFileError, FileNotFoundError) as exc:
        print(f"urgence train: {exc}", file=sys.stderr)
        return 2
    print(f"model written to {out}.npz and {out}.json")
    return 0

"""The ``urgence`` command line.

Each subcommand lives beside the code it drives, in a module exposing
``configure(parser: argparse.ArgumentParser) -> None`` and ``run(args) -> int``.
Heavy imports stay inside ``run`` so that ``urgence --help`` and ``urgence triage`` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from urgence import __version__

# name -> (module, one-line help). A module that does not exist yet is left out.
COMMANDS: dict[str, tuple[str, str]] = {
    "triage": ("urgence.triage.command", "triage call recordings to 15 / 17 / 18"),
    "serve": ("urgence.app.serve_command", "run the dispatcher console (web)"),
    "demo": ("urgence.demos.command", "run one of the seed project's experiments"),
    "plot": ("urgence.audio.command", "plot the waveform and spectrogram of an audio file"),
    "corpus": ("urgence.corpus.command", "build the keyword training corpus"),
    "train": ("urgence.kws.train_command", "train a keyword model"),
    "evaluate": ("urgence.kws.evaluate_command", "evaluate a keyword model on clips"),
    "evaluate-calls": (
        "urgence.triage.evaluate_command",
        "evaluate call triage on generated calls",
    ),
}


def _load(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="urgence",
        description="Offline speech triage for French emergency calls (15 SAMU, 17 Police, "
        "18 Pompiers).",
    )
    parser.add_argument("--version", action="version", version=f"urgence {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = _load(module_name)
        if module is None:
            continue
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        module.configure(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

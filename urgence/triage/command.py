"""``urgence triage FILE... [--json] [--model PATH]``: route call recordings to 15 / 17 / 18.

One line per file, in the order given: a short French summary, or with ``--json`` one JSON
object (``urgence.triage.pipeline``). The model is loaded once. A file that cannot be read
gets an error line and the others are still processed; the exit status is then 1. A model
that cannot be loaded is exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="call recordings (wav, flac...)")
    parser.add_argument("--json", action="store_true", help="one JSON object per file and line")
    parser.add_argument(
        "--model",
        metavar="PATH",
        help="keyword model (stem of PATH.npz + PATH.json); default: $URGENCE_MODEL, "
        "else the shipped models/kws",
    )


def run(args: argparse.Namespace) -> int:
    from urgence.kws.model import KeywordModel, ModelFileError
    from urgence.triage.pipeline import summary_line, triage_file

    try:
        model = KeywordModel.load(args.model)
    except ModelFileError as exc:
        print(f"urgence triage: {exc}", file=sys.stderr)
        return 2
    status = 0
    for path in args.files:
        result = triage_file(path, model)
        if "error" in result:
            status = 1
        if args.json:
            print(json.dumps(result, ensure_ascii=False), flush=True)
        else:
            print(summary_line(result), flush=True)
    return status

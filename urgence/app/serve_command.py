"""``urgence serve``: run the dispatcher console (web page, REST API, live WebSocket).

    urgence serve [--host 127.0.0.1] [--port 8000] [--db PATH] [--data-dir PATH] [--model PATH]

Open ``http://HOST:PORT/`` for the console, ``/enrolement`` to record a speaker, ``/docs``
for the API. The console is meant for the dispatch room's own network: bind to another
address than loopback only behind the room's access control. Exit status 2 if the model or
the call log cannot be opened.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (%(default)s)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="PATH",
        help="enrolment recordings go to PATH/recordings/<speaker>/<keyword>/<n>.wav "
        "(default: ./data)",
    )
    parser.add_argument(
        "--db", type=Path, metavar="PATH", help="call log, SQLite (default: DATA_DIR/calls.db)"
    )
    parser.add_argument(
        "--model",
        metavar="PATH",
        help="keyword model (stem of PATH.npz + PATH.json); default: $URGENCE_MODEL, "
        "else the shipped models/kws",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        metavar="MB",
        help="largest accepted upload in MiB, larger ones get 413 (default: 50)",
    )
    parser.add_argument(
        "--max-call-s",
        type=float,
        metavar="S",
        help="longest live call, in seconds of audio (default: 3600)",
    )
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        metavar="N",
        help="BLAS threads per network call (%(default)s); the server runs one network copy "
        "per core instead",
    )


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from urgence.app.server import create_app
    from urgence.app.store import StoreError
    from urgence.kws.model import ModelFileError

    if not 0 < args.port < 65536:
        print(f"urgence serve: invalid port {args.port}", file=sys.stderr)
        return 2
    if args.blas_threads < 1:
        print("urgence serve: --blas-threads must be >= 1", file=sys.stderr)
        return 2
    limits = {}  # options not given keep create_app's defaults
    if args.max_upload_mb is not None:
        limits["max_upload_bytes"] = int(args.max_upload_mb * 2**20)
    if args.max_call_s is not None:
        limits["max_call_s"] = args.max_call_s
    try:
        app = create_app(db_path=args.db, data_dir=args.data_dir, model_path=args.model, **limits)
    except (ModelFileError, StoreError, ValueError) as exc:
        print(f"urgence serve: {exc}", file=sys.stderr)
        return 2
    print(f"urgence: console on http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
    with _blas_threads(args.blas_threads):
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _blas_threads(n: int) -> contextlib.AbstractContextManager:
    """Limit BLAS threads for this server process.

    Why: live calls send one window per 100 ms, so network calls are small; a multi-threaded
    BLAS spends more time waking and spinning its threads than computing (measured on the
    2-core machine: 50-200 ms per single-window call with 2 BLAS threads, 3-4 ms with one).
    The server gets its parallelism from one network copy per core instead.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("urgence serve: threadpoolctl not installed, BLAS threads left as they are",
              file=sys.stderr)
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")

"""``urgence serve``: options, clear failures, and a real server process killed mid-call."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from websockets.sync.client import connect

from urgence.app.cli import build_parser
from urgence.app.serve_command import run
from urgence.app.store import STATUS_INTERRUPTED

from .conftest import free_port
from .fakes import RATE, tone_call

FAKE_SERVER = Path(__file__).with_name("fake_server.py")


def test_options_and_defaults():
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.db, args.data_dir, args.model) == (
        "127.0.0.1", 8000, None, None, None)
    args = build_parser().parse_args(
        ["serve", "--port", "9000", "--db", "x.db", "--data-dir", "d", "--model", "m"])
    assert (args.port, str(args.db), str(args.data_dir), args.model) == (9000, "x.db", "d", "m")


def test_missing_model_is_exit_status_2(tmp_path, capsys):
    args = build_parser().parse_args(
        ["serve", "--model", str(tmp_path / "none"), "--data-dir", str(tmp_path)])
    assert run(args) == 2
    assert "no keyword model" in capsys.readouterr().err


@pytest.mark.parametrize(("option", "message"),
                         [(["--port", "0"], "invalid port"), (["--max-call-s", "0"], "positive"),
                          (["--blas-threads", "0"], "blas-threads")])
def test_bad_option_is_exit_status_2(tmp_path, capsys, option, message):
    args = build_parser().parse_args(["serve", *option, "--data-dir", str(tmp_path)])
    assert run(args) == 2
    assert message in capsys.readouterr().err


def _start(port: int, data_dir: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, str(FAKE_SERVER), str(port), str(data_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx2.get(f"http://127.0.0.1:{port}/api/calls", timeout=1).raise_for_status()
            return process
        except httpx2.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"server did not start: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)


@pytest.mark.slow
def test_killed_server_keeps_what_was_detected(tmp_path):
    """SIGKILL a real server mid-call: after a restart, the call is "interrompu" and holds
    the detections made before the kill."""
    port, data_dir = free_port(), tmp_path / "data"
    server = _start(port, data_dir)
    try:
        call = tone_call([("incendie", 0.5), ("malaise", 8.0)], 10.0)
        with connect(f"ws://127.0.0.1:{port}/api/stream") as ws:
            call_id = json.loads(ws.recv())["call_id"]
            detection = None
            for start in range(0, 4 * RATE, RATE // 10):  # 4 s: "incendie", not "malaise"
                ws.send((call[start : start + RATE // 10] * 32767).astype("<i2").tobytes())
            while detection is None:
                message = json.loads(ws.recv(timeout=10))
                if message["type"] == "detection":
                    detection = message
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=10)
    finally:
        server.kill()
        server.wait()
    assert detection["keyword"] == "incendie"

    server = _start(port, data_dir)
    try:
        calls = httpx2.get(f"http://127.0.0.1:{port}/api/calls").json()
        logged = httpx2.get(f"http://127.0.0.1:{port}/api/calls/{call_id}").json()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
    assert [c["status"] for c in calls] == [STATUS_INTERRUPTED]
    assert logged["status"] == STATUS_INTERRUPTED
    assert [d["keyword"] for d in logged["detections"]] == ["incendie"]
    assert logged["service"] == "18"

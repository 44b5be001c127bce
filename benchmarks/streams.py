"""How many live calls one console sustains: ``.venv/bin/python benchmarks/streams.py``.

Starts ``urgence serve`` on a free 127.0.0.1 port (or uses ``--url``, loopback only), then for
N = 10, 20, 50, 80, ... runs N concurrent live calls over WebSockets: each client (the
``websockets`` library) sends an example call in 100 ms Int16 frames, one every 100 ms of
wall time, ``--repeats`` times over. Client starts are spread over the first second (seeded).

Detection delay = arrival of the ``detection`` message - the wall time at which the audio
it was decided on (its ``audio_s``) had been sent: the time the server took, queueing
included. The keyword-to-screen delay (arrival - when the end of the word was sent) adds the
detector's own look-ahead and is printed beside it, and so is the time from "stop" to the
final result (the backlog left at the end of a call). Meanwhile an HTTP probe times
``GET /api/calls`` to show whether the event loop stays free.

Prints one row per N and the largest N whose median detection delay is <= ``--max-delay``
(0.5 s), with no detection missing and the server keeping up (median stop->final <=
``--max-backlog``, 1 s; a delay measured on early detections alone would hide a growing
backlog). Target: >= 50 on a 2-core machine. Stops at the first N
that fails. Clients and server share the machine's cores: the figure is a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx2
import numpy as np
import websockets

from urgence.audio.io import load_audio

REPO = Path(__file__).resolve().parents[1]
RATE = 16000
FRAME = RATE // 10  # 100 ms
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class CallResult:
    delays: list[float] = field(default_factory=list)  # server delay per detection, s
    word_delays: list[float] = field(default_factory=list)  # end of word -> screen, s
    detections: int = 0
    stop_to_final: float | None = None  # backlog left when the call ends, s
    error: str | None = None


async def live_call(url: str, frames: list[bytes], start_delay: float, repeats: int,
                    timeout_s: float) -> CallResult:
    """One client: real-time frames, then "stop"; collects detection delays."""
    result = CallResult()
    await asyncio.sleep(start_delay)
    try:
        async with websockets.connect(url, max_size=2**22, open_timeout=timeout_s) as ws:
            json.loads(await ws.recv())  # "started"
            t0 = time.monotonic()
            stopped_at = float("inf")
            call_frames = frames * repeats

            async def sender() -> None:
                nonlocal stopped_at
                for k, frame in enumerate(call_frames):
                    await asyncio.sleep(max(0.0, t0 + k * 0.1 - time.monotonic()))
                    await ws.send(frame)
                await ws.send("stop")
                stopped_at = time.monotonic()

            async def receiver() -> None:
                async for raw in ws:
                    message = json.loads(raw)
                    now = time.monotonic()
                    if message["type"] == "detection":
                        result.detections += 1
                        # frame k (audio up to (k + 1) * 0.1 s) was sent at t0 + k * 0.1
                        result.delays.append(now - (t0 + message["audio_s"] - 0.1))
                        result.word_delays.append(now - (t0 + message["end_s"]))
                    elif message["type"] == "final":
                        result.stop_to_final = now - stopped_at
                        return
                    elif message["type"] == "error":
                        result.error = message["message"]
                        return

            await asyncio.wait_for(asyncio.gather(sender(), receiver()), timeout_s)
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    return result


async def probe_http(base_url: str, stop: asyncio.Event) -> list[float]:
    """GET /api/calls every 0.5 s until ``stop``; returns latencies in seconds."""
    latencies = []
    async with httpx2.AsyncClient(base_url=base_url, timeout=10) as client:
        while not stop.is_set():
            start = time.monotonic()
            await client.get("/api/calls", params={"limit": 5})
            latencies.append(time.monotonic() - start)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    return latencies


async def run_round(base_url: str, frames: list[bytes], n: int, repeats: int,
                    rng: np.random.Generator) -> tuple[list[CallResult], list[float]]:
    ws_url = base_url.replace("http://", "ws://") + "/api/stream?format=s16"
    call_s = len(frames) * repeats * 0.1
    starts = rng.uniform(0.0, 1.0, size=n)
    stop = asyncio.Event()
    probe = asyncio.create_task(probe_http(base_url, stop))
    results = await asyncio.gather(*(
        live_call(ws_url, frames, float(s), repeats, timeout_s=call_s + 60) for s in starts
    ))
    stop.set()
    return list(results), await probe


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def console_server(model: str | None):
    """``urgence serve`` on a free loopback port, with a throw-away call log."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="urgence-bench-") as data_dir:
        command = [sys.executable, "-m", "urgence", "serve", "--port", str(port),
                   "--data-dir", data_dir]
        if model:
            command += ["--model", model]
        process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        base_url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"urgence serve exited: {process.stderr.read().strip()}")
                with contextlib.suppress(httpx2.HTTPError):
                    httpx2.get(base_url + "/api/calls", timeout=1).raise_for_status()
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("urgence serve did not start within 60 s")
                time.sleep(0.2)
            yield base_url
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def call_frames(path: Path) -> list[bytes]:
    samples = load_audio(path)
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    return [pcm[i : i + FRAME].tobytes() for i in range(0, len(pcm), FRAME)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--call", type=Path, default=REPO / "examples" / "appel-cambriolage.wav",
                        help="the call every client sends (%(default)s)")
    parser.add_argument("--model", help="keyword model for the server (default: shipped)")
    parser.add_argument("--url", help="use this running console (http://127.0.0.1:PORT)")
    parser.add_argument("--counts", default="10,20,50,80,120,160",
                        help="numbers of concurrent calls to try, increasing (%(default)s)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="times each client sends the call (%(default)s)")
    parser.add_argument("--max-delay", type=float, default=0.5,
                        help="median detection delay allowed, s (%(default)s)")
    parser.add_argument("--max-backlog", type=float, default=1.0,
                        help="median stop->final allowed, s: the server keeps up (%(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    if not all(0 < c <= 400 for c in counts) or not 1 <= args.repeats <= 10:
        parser.error("counts must be in 1..400 and repeats in 1..10")
    if args.url and urlparse(args.url).hostname not in LOOPBACK:
        parser.error("--url must be a loopback address (127.0.0.1, localhost, ::1)")
    frames = call_frames(args.call)
    rng = np.random.default_rng(args.seed)
    print(f"call {args.call.name}: {len(frames) / 10:.1f} s x {args.repeats}, "
          f"{os.cpu_count()} CPUs, max median delay {args.max_delay} s")
    print(f"{'N':>5} {'detections':>11} {'median':>8} {'p90':>7} {'max':>7} "
          f"{'word->screen':>13} {'stop->final':>12} {'HTTP median/max':>16}  errors")
    best = 0
    with contextlib.ExitStack() as stack:
        base_url = args.url.rstrip("/") if args.url else stack.enter_context(
            console_server(args.model))
        expected = None
        for n in counts:
            results, http = asyncio.run(run_round(base_url, frames, n, args.repeats, rng))
            delays = [d for r in results for d in r.delays]
            words = [d for r in results for d in r.word_delays]
            finals = [r.stop_to_final for r in results if r.stop_to_final is not None]
            errors = [r.error for r in results if r.error]
            per_call = [r.detections for r in results if not r.error]
            if expected is None and per_call:
                expected = statistics.mode(per_call)  # what one uncontended round finds
            missing = sum(max(0, (expected or 0) - d) for d in per_call) + len(errors)
            median = statistics.median(delays) if delays else float("inf")
            p90 = float(np.percentile(delays, 90)) if delays else float("inf")
            print(f"{n:>5} {sum(per_call):>6}/{(expected or 0) * n:<4} {median:>8.3f} "
                  f"{p90:>7.3f} {max(delays, default=float('inf')):>7.3f} "
                  f"{statistics.median(words) if words else float('nan'):>13.3f} "
                  f"{statistics.median(finals) if finals else float('nan'):>12.3f} "
                  f"{statistics.median(http):>7.3f}/{max(http):<7.3f}  "
                  f"{len(errors)}{': ' + errors[0] if errors else ''}", flush=True)
            if expected == 0:
                print("the model detects nothing in this call: choose another --call")
                return 1
            backlog = statistics.median(finals) if finals else float("inf")
            if median > args.max_delay or backlog > args.max_backlog or missing:
                break
            best = n
    print(f"largest N with median detection delay <= {args.max_delay} s "
          f"(and stop->final <= {args.max_backlog} s, no detection missing): {best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

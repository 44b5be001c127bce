"""Real-time factor of call triage on one core: ``.venv/bin/python benchmarks/realtime.py``.

A long call (``--seconds``, synthetic speech from held-out voices) goes through the full
pipeline twice: whole-file (``triage_samples``: features, one batched model call, detector,
router) and live (``StreamingDetector`` fed 100 ms chunks, routed at the end). BLAS is
limited to one thread (threadpoolctl, when installed). RTF = processing time / audio
duration; one core sustains 1 / RTF live calls. Target: RTF <= 0.02. The RTF is measured in
CPU time of this process (``time.process_time``): on a shared machine, wall-clock time also
counts other programs' turns on the core; both are printed.

Without a trained model (``models/kws`` or ``--model``) an untrained network of the same
architecture (``--architecture``) is timed instead: the cost is the same, and the output
says so.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np

from urgence.audio.features import log_mel
from urgence.corpus.vocabulary import LABELS
from urgence.kws.architectures import build, count_macs
from urgence.kws.detector import StreamingDetector
from urgence.kws.model import KeywordModel, ModelFileError
from urgence.triage.calls import heldout_voices, plan_call, speak_plan
from urgence.triage.pipeline import triage_samples
from urgence.triage.router import route

TARGET_RTF = 0.02


class Timer:
    """CPU time of this process and wall-clock time of a block."""

    def __enter__(self) -> Timer:
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = time.process_time() - self._cpu
        self.wall = time.perf_counter() - self._wall


def one_thread() -> contextlib.AbstractContextManager:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("threadpoolctl not installed: BLAS may use several threads")
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def long_call(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """(n,) float32 16 kHz: generated calls (speech, keywords and pauses) end to end."""
    voices = heldout_voices()
    pieces, total = [], 0
    while total < seconds * 16000:
        keyword = ("incendie",) if len(pieces) % 3 == 0 else ()
        samples, _ = speak_plan(plan_call(f"part{len(pieces)}", keyword, rng, voices=voices))
        pieces.append(samples)
        total += samples.size
    return np.concatenate(pieces)[: round(seconds * 16000)]


def load_model(path: str | None, architecture: str) -> tuple[KeywordModel, str]:
    try:
        model = KeywordModel.load(path)
        return model, f"{model.source}"
    except ModelFileError as exc:
        if path is not None:
            raise
        from urgence.audio.features import FeatureConfig

        network = build(architecture, len(LABELS))
        model = KeywordModel(network, labels=LABELS, feature_config=FeatureConfig())
        return model, f"untrained {architecture} (no shipped model: {exc})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="keyword model stem (default: the shipped models/kws)")
    parser.add_argument("--architecture", default="compact_cnn", help="fallback architecture")
    parser.add_argument("--seconds", type=float, default=300.0, help="length of the call")
    parser.add_argument("--chunk-ms", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    model, description = load_model(args.model, args.architecture)
    samples = long_call(args.seconds, np.random.default_rng(args.seed))
    duration = samples.size / 16000
    network = model.network
    macs = count_macs(network) if hasattr(network, "layers") else None
    print(f"model: {description}")
    if macs:
        print(f"  {macs / 1e6:.1f} M multiply-accumulates per 1 s window, 10 windows per second")
    print(f"call: {duration:.0f} s of synthetic speech, chunks of {args.chunk_ms:g} ms")

    with one_thread():
        with Timer() as features:
            log_mel(samples, config=model.feature_config)
        with Timer() as whole_timer:
            whole = triage_samples(samples, model, name="benchmark")
        detector = StreamingDetector(model)
        chunk = round(args.chunk_ms / 1000 * 16000)
        worst_chunk_s = 0.0
        found = []
        with Timer() as stream_timer:
            for start in range(0, samples.size, chunk):
                chunk_started = time.perf_counter()
                found += detector.feed(samples[start : start + chunk])
                worst_chunk_s = max(worst_chunk_s, time.perf_counter() - chunk_started)
            found += detector.finish()
            streamed = route(found).to_dict()

    print(f"features alone: RTF {features.cpu / duration:.4f}")
    for mode, timer in (("whole file", whole_timer), ("streaming", stream_timer)):
        rtf = timer.cpu / duration
        verdict = "meets" if rtf <= TARGET_RTF else "misses"
        print(
            f"{mode:>10}: {timer.cpu:.2f} s CPU ({timer.wall:.2f} s wall) for {duration:.0f} s "
            f"-> RTF {rtf:.4f} ({verdict} the {TARGET_RTF} target); one core sustains "
            f"{1 / rtf:.0f} live calls"
        )
    print(f"slowest {args.chunk_ms:g} ms chunk: {1000 * worst_chunk_s:.1f} ms wall")
    same = [d["keyword"] for d in whole["detections"]] == [
        d["keyword"] for d in streamed["detections"]
    ]
    print(f"detections: {len(whole['detections'])} whole, {len(found)} streamed, same: {same}")


if __name__ == "__main__":
    main()

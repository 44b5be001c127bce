"""``urgence evaluate-calls``: end-to-end triage on generated calls and on real speech.

Generates ``--calls`` calls (``urgence.triage.calls``: held-out voices, real background noise,
half through a telephone channel, ~20% without keyword, some with two services), streams
each through the detector in 100 ms chunks, routes it, and reports:

- routing accuracy: the chosen service is one the call needs, or None for a call without
  keyword; also whether every needed service is listed;
- per-service precision and recall over the services listed for each call;
- keyword recall and the median delay from the end of a spoken keyword to the moment its
  detection is emitted;
- false alarms per hour on real French speech without keywords (every Asterisk prompt WAV)
  and on the generated calls without keyword;
- the real-time factor of the run (CPU time of streaming detection and routing, BLAS limited
  to one thread when threadpoolctl is installed).

``--tune`` instead chooses the per-keyword thresholds on calls of the validation voices and on
the real speech outside its test split, and stores them in the model file
(``urgence.triage.tuning``; ``--objective f1``: ``urgence.kws.detector.tune_thresholds``).

``--calls-audio PATH`` keeps the generated calls: the first run writes them to PATH, later
runs with the same ``--calls``, ``--seed`` and ``--tune`` read them back. espeak-ng is not
bit-for-bit repeatable, and two syntheses of the same 300 calls routed up to 6 points
apart with one model (session 12): two models are compared on one saved set.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import urgence

DEFAULT_SHARED = Path(urgence.__file__).resolve().parents[2] / "shared"
ASTERISK_SOUNDS = Path("/usr/share/asterisk/sounds")
MATCH_SLACK_S = 0.5  # a detection within this of a spoken keyword is that keyword's
TARGETS = {"routing_accuracy": 0.95, "median_delay_s": 0.5, "false_alarms_per_hour": 1.0}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calls", type=int, default=300, help="generated calls (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated calls")
    parser.add_argument("--model", metavar="PATH", help="keyword model (default: shipped)")
    parser.add_argument(
        "--shared",
        metavar="PATH",
        default=str(DEFAULT_SHARED),
        help="shared data folder holding data/background_noise (default: %(default)s)",
    )
    parser.add_argument(
        "--speech",
        metavar="PATH",
        default=str(ASTERISK_SOUNDS),
        help="folder of real speech without keywords, searched for *.wav (default: the "
        "Asterisk French prompts, %(default)s; '' to skip)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--tune",
        action="store_true",
        help="instead of evaluating, choose per-keyword thresholds on generated calls of the "
        "validation voices (use another --seed than for evaluation) and on --speech "
        "outside its test split, and store them in the model file",
    )
    parser.add_argument(
        "--voices",
        choices=("test", "val"),
        help="whose voices speak the generated calls: the test voices (default), or the "
        "validation voices (the default with --tune): to compare models on the calls their "
        "thresholds were tuned on, without looking at the test calls",
    )
    parser.add_argument(
        "--objective",
        choices=("routing", "f1"),
        default="routing",
        help="with --tune: maximise the calls routed right minus false alarms on real speech "
        "(routing, default; urgence.triage.tuning) or each keyword's F1 score (f1)",
    )
    parser.add_argument(
        "--false-alarm-cost",
        type=float,
        default=10.0,
        metavar="CALLS",
        help="with --tune --objective routing: how many calls routed right one false alarm "
        "on --speech is worth (default: %(default)s)",
    )
    parser.add_argument(
        "--calls-audio",
        metavar="PATH",
        help="keep the generated calls in PATH (.npz): written if missing, read if present, so "
        "that models are compared on the very same audio (it must have been made with the "
        "same --calls, --seed, --tune and background noises)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="with --tune: processes computing the model's posteriors (default: %(default)s; "
        "the thresholds do not depend on it)",
    )


@dataclass
class Tally:
    """Counts accumulated over calls."""

    calls: int = 0
    routed: int = 0
    all_listed: int = 0
    # (kind, value) -> calls and calls routed right, kind one of GROUPS
    groups: Counter = field(default_factory=Counter)
    groups_ok: Counter = field(default_factory=Counter)
    true_pos: Counter = field(default_factory=Counter)
    false_pos: Counter = field(default_factory=Counter)
    false_neg: Counter = field(default_factory=Counter)
    keywords: Counter = field(default_factory=Counter)
    keywords_found: Counter = field(default_factory=Counter)
    delays: list[float] = field(default_factory=list)
    stray_detections: int = 0  # detections matching no spoken keyword
    quiet_seconds: float = 0.0  # duration of the calls without keyword
    quiet_false_alarms: int = 0
    audio_seconds: float = 0.0
    errors: list[dict[str, Any]] = field(default_factory=list)


def _matches(detection, keyword: str, start: float, end: float) -> bool:
    return (
        detection.keyword == keyword
        and detection.start_s < end + MATCH_SLACK_S
        and detection.end_s > start - MATCH_SLACK_S
    )


def _snr_band(snr_db: float) -> str:
    low = 5 * int(snr_db // 5)
    return f"{low}-{low + 5} dB"


# what routing accuracy is broken down by: report key -> the call's value
GROUPS = {
    "channel": lambda call: call.channel,
    "voice": lambda call: call.voice,
    "snr": lambda call: _snr_band(call.snr_db),
    "noise": lambda call: call.noise,
}


def _group_order(item: tuple[tuple[str, str], int]) -> tuple[str, float, str]:
    (kind, value), _ = item
    number = value.split("-")[0]
    return kind, float(number) if number.isdigit() else 0.0, value  # 5-10 dB before 10-15 dB


def _groups_of(call) -> list[tuple[str, str]]:
    return [(kind, value(call)) for kind, value in GROUPS.items()]


def score_call(call, emitted, tally: Tally) -> None:
    """Add one call's streamed detections [(Detection, emitted_s)] to the tally."""
    from urgence.triage.router import route

    triage = route([d for d, _ in emitted])
    needed = set(call.services)
    listed = {s.service for s in triage.services}
    ok = triage.service in needed if needed else triage.service is None
    tally.calls += 1
    tally.audio_seconds += call.duration_s
    tally.routed += ok
    tally.all_listed += listed == needed
    for key in _groups_of(call):
        tally.groups[key] += 1
        tally.groups_ok[key] += ok
    for service in listed | needed:
        tally.true_pos[service] += service in listed and service in needed
        tally.false_pos[service] += service in listed and service not in needed
        tally.false_neg[service] += service in needed and service not in listed
    if not ok:
        tally.errors.append(
            {
                "call": call.name,
                "needed": sorted(needed),
                "routed": triage.service,
                "heard": [d.keyword for d, _ in emitted],
                "text": call.text,
                "voice": call.voice,
                "channel": call.channel,
            }
        )
    for keyword, start, end in call.keywords:
        tally.keywords[keyword] += 1
        hits = [t for d, t in emitted if _matches(d, keyword, start, end)]
        if hits:
            tally.keywords_found[keyword] += 1
            tally.delays.append(min(hits) - end)
    stray = sum(not any(_matches(d, k, s, e) for k, s, e in call.keywords) for d, _ in emitted)
    tally.stray_detections += stray
    if not call.keywords:
        tally.quiet_seconds += call.duration_s
        tally.quiet_false_alarms += stray


def false_alarms_on_speech(model, folder: Path) -> dict[str, Any]:
    """Detections on every *.wav under ``folder`` (speech that holds no keyword).

    The corpus trains its `_unknown_` class on some of the Asterisk prompts (those whose id
    ``asterisk:<folder>/<name>`` falls in the ``train`` split) and ``--tune`` sets thresholds
    on those of the ``train`` and ``val`` splits: ``held_out`` counts only the ``test`` split,
    which neither training nor tuning has heard."""
    from urgence.audio.io import AudioError, load_audio
    from urgence.kws.detector import detect

    paths = sorted(folder.rglob("*.wav"))
    rate = model.feature_config.sample_rate
    seconds, heard, unreadable = 0.0, Counter(), 0
    held_seconds, held_heard, held_files = 0.0, Counter(), 0
    for path in paths:
        try:
            samples = load_audio(path, sr=rate)
        except AudioError:
            unreadable += 1
            continue
        found = Counter(d.keyword for d in detect(model, samples))
        seconds += samples.shape[0] / rate
        heard.update(found)
        if _speech_split(path) == "test":
            held_files += 1
            held_seconds += samples.shape[0] / rate
            held_heard.update(found)

    def per_hour(count: int, secs: float) -> float | None:
        return round(count / (secs / 3600), 2) if secs else None

    total, held_total = sum(heard.values()), sum(held_heard.values())
    return {
        "folder": str(folder),
        "files": len(paths) - unreadable,
        "unreadable": unreadable,
        "minutes": round(seconds / 60, 1),
        "false_alarms": total,
        "false_alarms_per_hour": per_hour(total, seconds),
        "keywords": dict(heard.most_common()),
        "held_out": {
            "files": held_files,
            "minutes": round(held_seconds / 60, 1),
            "false_alarms": held_total,
            "false_alarms_per_hour": per_hour(held_total, held_seconds),
        },
    }


def _speech_split(path: Path) -> str:
    """The corpus split of a real-speech recording (as the corpus build names its speaker)."""
    from urgence.corpus.splits import split_of

    return split_of(f"asterisk:{path.parent.name}/{path.stem}")


def _tuning_speech(folder: str) -> list[np.ndarray]:
    """The recordings of the real-speech folder outside its ``test`` split: keyword-free audio
    for tuning, so that thresholds also answer for real voices (not only for generated calls).
    The ``train`` split is included: the model has heard it as `_unknown_`, yet it fired on
    some of it at thresholds tuned without it (3 false alarms in 26 min)."""
    from urgence.audio.io import AudioError, load_audio

    if not folder or not Path(folder).is_dir():
        return []
    recordings = []
    for path in sorted(Path(folder).rglob("*.wav")):
        if _speech_split(path) == "test":
            continue
        try:
            recordings.append(load_audio(path))
        except AudioError:
            continue
    return recordings


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def report(tally: Tally, speech: dict[str, Any] | None, seconds: float) -> dict[str, Any]:
    services = {}
    for service in sorted(set(tally.true_pos) | set(tally.false_pos) | set(tally.false_neg)):
        tp, fp, fn = tally.true_pos[service], tally.false_pos[service], tally.false_neg[service]
        services[service] = {
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
            "support": tp + fn,
        }
    quiet_hours = tally.quiet_seconds / 3600
    speech_hours = speech["minutes"] / 60 if speech else 0.0
    speech_alarms = speech["false_alarms"] if speech else 0
    all_hours = quiet_hours + speech_hours
    return {
        "calls": tally.calls,
        "audio_minutes": round(tally.audio_seconds / 60, 1),
        "routing_accuracy": _ratio(tally.routed, tally.calls),
        "routed": tally.routed,
        "all_services_listed": _ratio(tally.all_listed, tally.calls),
        **{
            f"routing_accuracy_by_{kind}": {
                value: _ratio(tally.groups_ok[(k, value)], n)
                for (k, value), n in sorted(tally.groups.items(), key=_group_order)
                if k == kind
            }
            for kind in GROUPS
        },
        "services": services,
        "keyword_recall": _ratio(sum(tally.keywords_found.values()), sum(tally.keywords.values())),
        "keyword_recall_by_keyword": {
            k: _ratio(tally.keywords_found[k], n) for k, n in sorted(tally.keywords.items())
        },
        "median_delay_s": round(float(np.median(tally.delays)), 3) if tally.delays else None,
        "delay_p90_s": round(float(np.percentile(tally.delays, 90)), 3) if tally.delays else None,
        "stray_detections": tally.stray_detections,
        "generated_no_keyword": {
            "minutes": round(tally.quiet_seconds / 60, 1),
            "false_alarms": tally.quiet_false_alarms,
            "false_alarms_per_hour": (
                round(tally.quiet_false_alarms / quiet_hours, 2) if quiet_hours else None
            ),
        },
        "real_speech": speech,
        "false_alarms_per_hour": (
            round((tally.quiet_false_alarms + speech_alarms) / all_hours, 2) if all_hours else None
        ),
        "real_time_factor": round(seconds / tally.audio_seconds, 4)
        if tally.audio_seconds
        else None,
        "targets": TARGETS,
        "misrouted": tally.errors,
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def print_report(result: dict[str, Any]) -> None:
    from urgence.corpus.vocabulary import SERVICES

    print(f"calls: {result['calls']} ({result['audio_minutes']} min of audio)")
    print(
        f"routing accuracy: {_pct(result['routing_accuracy'])} "
        f"({result['routed']}/{result['calls']})  target >= 95%"
    )
    by_channel = ", ".join(
        f"{c} {_pct(v)}" for c, v in result["routing_accuracy_by_channel"].items()
    )
    print(f"  by channel: {by_channel}")
    by_voice = ", ".join(
        f"{v} {_pct(r)}"
        for v, r in sorted(result["routing_accuracy_by_voice"].items(), key=lambda item: item[1])
    )
    print(f"  by voice, worst first: {by_voice}")
    for kind, title in (("snr", "noise SNR"), ("noise", "background")):
        rates = ", ".join(
            f"{v} {_pct(r)}" for v, r in result[f"routing_accuracy_by_{kind}"].items()
        )
        print(f"  by {title}: {rates}")
    print(f"  every needed service listed: {_pct(result['all_services_listed'])}")
    print("service       precision  recall  calls")
    for service, row in result["services"].items():
        print(
            f"  {SERVICES[service].label:<11} {_pct(row['precision']):>9} "
            f"{_pct(row['recall']):>7} {row['support']:>6}"
        )
    print(f"keyword recall: {_pct(result['keyword_recall'])}")
    print(
        "  " + ", ".join(f"{k} {_pct(v)}" for k, v in result["keyword_recall_by_keyword"].items())
    )
    print(
        f"median delay, end of keyword -> detection (100 ms chunks): "
        f"{result['median_delay_s']} s (90th percentile {result['delay_p90_s']} s)  "
        "target <= 0.5 s"
    )
    quiet = result["generated_no_keyword"]
    print(
        f"false alarms, generated calls without keyword ({quiet['minutes']} min): "
        f"{quiet['false_alarms']} = {quiet['false_alarms_per_hour']} /h"
    )
    speech = result["real_speech"]
    if speech:
        print(
            f"false alarms, real speech without keyword ({speech['files']} files, "
            f"{speech['minutes']} min): {speech['false_alarms']} = "
            f"{speech['false_alarms_per_hour']} /h  target <= 1/h  {speech['keywords']}"
        )
    if speech:
        held = speech["held_out"]
        print(
            f"  of which never trained nor tuned on ({held['files']} files, "
            f"{held['minutes']} min): {held['false_alarms']} = {held['false_alarms_per_hour']} /h"
        )
    print(f"false alarms per hour, all speech without keyword: {result['false_alarms_per_hour']}")
    print(f"stray detections in all calls: {result['stray_detections']}")
    print(f"real-time factor of this run (CPU time, streaming): {result['real_time_factor']}")
    for error in result["misrouted"][:20]:
        print(
            f"  misrouted {error['call']} ({error['voice']}, {error['channel']}): needs "
            f"{error['needed'] or 'operator'}, routed {error['routed']}, heard {error['heard']}"
        )


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """For the duration of the run: the real-time factor is that of one core (a 100 ms chunk
    is one window, too small for threads; idle BLAS threads spinning would count as CPU)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def tune(model, args: argparse.Namespace, calls) -> int:
    """Tune the thresholds on ``calls`` and store them with the model."""
    from urgence.kws.detector import tune_thresholds
    from urgence.kws.model import store_tuning
    from urgence.triage.tuning import tune_for_routing

    speech = _tuning_speech(args.speech)
    if args.objective == "routing":
        thresholds = tune_for_routing(
            model,
            [(c.samples, c.services) for c in calls],
            speech,
            false_alarm_cost=args.false_alarm_cost,
            workers=args.workers,
        )
    else:
        recordings = [(c.samples, c.keywords) for c in calls]
        thresholds = tune_thresholds(model, recordings + [(s, []) for s in speech])
    tuned = store_tuning(model.source, thresholds=thresholds, detector=model.detector_config)
    if args.json:
        print(
            json.dumps({"model": tuned.source, "thresholds": tuned.thresholds}, ensure_ascii=False)
        )
    else:
        print(f"thresholds stored in {tuned.source}:")
        for keyword, value in tuned.thresholds.items():
            print(f"  {keyword:<14} {value:.2f}")
    return 0


def run(args: argparse.Namespace) -> int:
    from urgence.audio.io import AudioError
    from urgence.kws.detector import detect_streaming
    from urgence.kws.model import KeywordModel, ModelFileError
    from urgence.triage.calls import (
        CallsFileError,
        generate_calls,
        heldout_voices,
        load_background_noises,
        load_calls,
        save_calls,
    )

    if args.calls < 1:
        print("urgence evaluate-calls: --calls must be >= 1", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("urgence evaluate-calls: --workers must be >= 1", file=sys.stderr)
        return 2
    try:
        model = KeywordModel.load(args.model)
        noises = load_background_noises(Path(args.shared) / "data" / "background_noise")
    except (ModelFileError, AudioError) as exc:
        print(f"urgence evaluate-calls: {exc}", file=sys.stderr)
        return 2
    split = args.voices or ("val" if args.tune else "test")
    if args.tune and split != "val":
        print("urgence evaluate-calls: --tune uses the validation voices only", file=sys.stderr)
        return 2
    recipe = {"calls": args.calls, "seed": args.seed, "voices": split, "noises": sorted(noises)}
    if args.calls_audio and Path(args.calls_audio).exists():
        try:
            calls = load_calls(args.calls_audio, recipe=recipe)
        except CallsFileError as exc:
            print(f"urgence evaluate-calls: {exc}", file=sys.stderr)
            return 2
    else:
        rng = np.random.default_rng(args.seed)
        calls = generate_calls(args.calls, rng, noises=noises, voices=heldout_voices(split))
        if args.calls_audio:
            try:
                save_calls(args.calls_audio, calls, recipe=recipe)
            except OSError as exc:  # the evaluation goes on without the saved copy
                print(f"urgence evaluate-calls: calls not saved: {exc}", file=sys.stderr)
    if args.tune:
        return tune(model, args, calls)
    tally = Tally()
    with _one_blas_thread():
        started = time.process_time()  # CPU time: other programs on the machine do not count
        for call in calls:
            score_call(call, detect_streaming(model, call.samples, chunk_s=0.1), tally)
        seconds = time.process_time() - started
    speech = None
    if args.speech:
        folder = Path(args.speech)
        if folder.is_dir():
            speech = false_alarms_on_speech(model, folder)
        else:
            print(f"no real-speech folder at {folder}: false alarms on it skipped", file=sys.stderr)
    result = {"model": model.source, "seed": args.seed, **report(tally, speech, seconds)}
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print_report(result)
    return 0

"""Experiments on cached window posteriors of the generated calls (MODEL_CARD.md, session 9).

The keyword model runs once per recording; ensembles and tuning rules then only re-run the
post-processing, in seconds instead of minutes.

  cache MODEL... --out-root DIR   posteriors of each model (DIR/<model name>/) on the 300
                                  validation calls (seed 1), the tuning prompts, the 300
                                  test calls (seed 7) and the held-out prompts; the calls are
                                  synthesised once and kept in DIR/audio/ (val1.npz and
                                  test7.npz, as `evaluate-calls --calls-audio` writes them),
                                  so that models cached later hear the very same calls
                                  (espeak-ng is not bit-for-bit repeatable: two syntheses
                                  of the same calls differ, and their figures by up to 6
                                  points)
  ensemble SYSTEM... --out-root DIR
                                  each SYSTEM is model names joined by "+" (a prefix "geo:"
                                  takes the geometric mean instead of the arithmetic one):
                                  thresholds tuned on the validation calls and tuning prompts
                                  as `evaluate-calls --tune` does, then the test calls routed
  snr-thresholds NAME --out-root DIR [--cut-db 12]
                                  one threshold set against one per noise band (the calls'
                                  true SNR below / above the cut), each tuned on the
                                  validation calls of its band

usage (models runs/a/kws and runs/b/kws are cached as a and b):
  .venv/bin/python scripts/posterior-experiments.py cache runs/a/kws runs/b/kws
  .venv/bin/python scripts/posterior-experiments.py ensemble a b a+b geo:a+b
  .venv/bin/python scripts/posterior-experiments.py snr-thresholds a --cut-db 12
"""

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from urgence.audio.io import load_audio
from urgence.corpus.synth import SAMPLE_RATE
from urgence.kws.detector import detections_from_posteriors, window_posteriors
from urgence.kws.model import KeywordModel
from urgence.triage.calls import (
    generate_calls,
    heldout_voices,
    load_background_noises,
    load_calls,
    save_calls,
)
from urgence.triage.evaluate_command import ASTERISK_SOUNDS, _speech_split, _tuning_speech
from urgence.triage.router import route
from urgence.triage.tuning import thresholds_from_posteriors

SETS = {"val": ("val_calls", "tune_speech", 1), "test": ("test_calls", "test_speech", 7)}


def _speech(split: str) -> list[np.ndarray]:
    """The prompts `evaluate-calls --tune` reads (val), or those it never reads (test)."""
    if split == "val":
        return _tuning_speech(str(ASTERISK_SOUNDS))
    prompts = sorted(ASTERISK_SOUNDS.rglob("*.wav"))
    return [load_audio(p) for p in prompts if _speech_split(p) == "test"]


def _calls_once(split: str, args: argparse.Namespace) -> list[tuple[np.ndarray, list, float]]:
    """The split's 300 calls as (samples, services, SNR): read from OUT_ROOT/audio/ where an
    earlier `cache` kept them (the files of `evaluate-calls --calls-audio`, interchangeable
    with them), else synthesised and kept there, so that models cached later hear the same
    calls."""
    noises = load_background_noises(args.noise_dir)
    seed = SETS[split][2]
    recipe = {"calls": 300, "seed": seed, "voices": split, "noises": sorted(noises)}
    path = Path(args.out_root) / "audio" / f"{split}{seed}.npz"
    if path.exists():
        calls = load_calls(path, recipe=recipe)
    else:
        rng = np.random.default_rng(seed)
        calls = generate_calls(300, rng, noises=noises, voices=heldout_voices(split))
        save_calls(path, calls, recipe=recipe)
    return [(c.samples, c.services, c.snr_db) for c in calls]


def cache(args: argparse.Namespace) -> None:
    models = {
        Path(m).name if Path(m).name != "kws" else Path(m).parent.name: m for m in args.models
    }
    for split, (calls_name, speech_name, _) in SETS.items():
        items = {
            calls_name: _calls_once(split, args),
            speech_name: [(s, [], None) for s in _speech(split)],
        }
        for name, path in models.items():
            model = KeywordModel.load(path)
            folder = Path(args.out_root) / name
            folder.mkdir(parents=True, exist_ok=True)
            for set_name, recordings in items.items():
                arrays, meta = {}, []
                for i, (samples, services, snr_db) in enumerate(recordings):
                    arrays[f"p{i}"] = window_posteriors(model, samples)
                    meta.append(
                        {"services": services, "dur": len(samples) / SAMPLE_RATE, "snr": snr_db}
                    )
                np.savez(folder / f"{set_name}.npz", meta=json.dumps(meta), **arrays)
            print(f"{name}: {split} cached", flush=True)


def _load(folder: Path, set_name: str) -> list[tuple[np.ndarray, dict]]:
    with np.load(folder / f"{set_name}.npz", allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        return [(data[f"p{i}"], m) for i, m in enumerate(meta)]


def _system(root: Path, names: list[str], set_name: str, geometric: bool):
    parts = [_load(root / name, set_name) for name in names]
    out = []
    for rows in zip(*parts, strict=True):
        stack = np.stack([p for p, _ in rows])
        if geometric:
            mean = np.exp(np.log(stack + 1e-7).mean(axis=0))
            mean /= mean.sum(axis=1, keepdims=True)
        else:
            mean = stack.mean(axis=0)
        meta = rows[0][1]
        out.append((mean, meta["dur"], meta["services"], meta["snr"]))
    return out


def _routed(items, thresholds_of, labels, config) -> tuple[int, Counter]:
    right, errors = 0, Counter()
    for posteriors, duration_s, needed, snr_db in items:
        thresholds = thresholds_of(snr_db)
        detections = detections_from_posteriors(
            posteriors, labels=labels, thresholds=thresholds, duration_s=duration_s, config=config
        )
        service = route(detections).service
        ok = service in needed if needed else service is None
        right += ok
        if not ok:
            errors[
                "missed" if service is None else "wrong service" if needed else "false alarm"
            ] += 1
    return right, errors


def _tune(items, speech, labels, config):
    return thresholds_from_posteriors(
        [(p, d, needed) for p, d, needed, _ in items],
        [(p, d) for p, d, _, _ in speech],
        labels=labels,
        config=config,
    )


def ensemble(args: argparse.Namespace) -> None:
    reference = KeywordModel.load(args.model)
    labels, config, root = list(reference.labels), reference.detector_config, Path(args.out_root)
    for system in args.systems:
        geometric = system.startswith("geo:")
        names = system.removeprefix("geo:").split("+")
        val, tune_speech, test, test_speech = (
            _system(root, names, set_name, geometric)
            for set_name in ("val_calls", "tune_speech", "test_calls", "test_speech")
        )
        thresholds = _tune(val, tune_speech, labels, config)
        right, errors = _routed(test, lambda _, chosen=thresholds: chosen, labels, config)
        alarms = sum(
            len(
                detections_from_posteriors(
                    p, labels=labels, thresholds=thresholds, duration_s=d, config=config
                )
            )
            for p, d, _, _ in test_speech
        )
        print(
            f"{system}: {right}/{len(test)} test calls routed right "
            f"({100 * right / len(test):.1f}%) "
            f"{dict(errors)}; false alarms on the held-out prompts: {alarms}",
            flush=True,
        )


def snr_thresholds(args: argparse.Namespace) -> None:
    reference = KeywordModel.load(args.model)
    labels, config, root = list(reference.labels), reference.detector_config, Path(args.out_root)
    val, speech, test = (
        _system(root, [args.name], set_name, False)
        for set_name in ("val_calls", "tune_speech", "test_calls")
    )
    one = _tune(val, speech, labels, config)
    low = _tune([c for c in val if c[3] < args.cut_db], speech, labels, config)
    high = _tune([c for c in val if c[3] >= args.cut_db], speech, labels, config)
    right_one, _ = _routed(test, lambda _: one, labels, config)
    right_two, _ = _routed(test, lambda snr: low if snr < args.cut_db else high, labels, config)
    print(
        f"one threshold set: {right_one}/{len(test)}; "
        f"one per band (cut {args.cut_db} dB): {right_two}/{len(test)}"
    )


def main() -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out-root", default="runs/cache", help="folder of the cached posteriors")
    common.add_argument("--model", default="models/kws", help="labels and detector settings")
    common.add_argument("--noise-dir", default="../shared/data/background_noise")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("cache", parents=[common]).add_argument("models", nargs="+")
    commands.add_parser("ensemble", parents=[common]).add_argument("systems", nargs="+")
    snr = commands.add_parser("snr-thresholds", parents=[common])
    snr.add_argument("name")
    snr.add_argument("--cut-db", type=float, default=12.0)
    args = parser.parse_args()
    {"cache": cache, "ensemble": ensemble, "snr-thresholds": snr_thresholds}[args.command](args)


if __name__ == "__main__":
    main()

"""``urgence evaluate MODEL DATA``: accuracy, per-class precision/recall, confusion matrix,
accuracy per speaker or voice, on a corpus split or a folder of labelled clips."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model stem or file (.npz / .json)")
    parser.add_argument(
        "data",
        help="a corpus folder (with features_<split>.npz), or a folder of clips: labels.csv, "
        "<speaker>/<keyword>/*.wav, or Speech Commands' <word>/<speaker>_nohash_<n>.wav",
    )
    parser.add_argument("--split", default="test", help="corpus split (default: test)")
    parser.add_argument(
        "--no-thresholds",
        action="store_true",
        help="answer the arg-max (ignore the model's per-keyword thresholds)",
    )
    parser.add_argument(
        "--snr-db", type=float, help="add real background noise at this SNR before scoring"
    )
    parser.add_argument(
        "--telephone", action="store_true", help="pass the clips through a telephone channel"
    )
    parser.add_argument(
        "--noise-dir",
        default="../shared/data/background_noise",
        help="noise recordings for --snr-db (their second halves: never used in training)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise choices")
    parser.add_argument("--figure", help="confusion-matrix PNG to write")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")


def _print_report(report: dict, title: str) -> None:
    def pct(value):
        return "—" if value is None else f"{100 * value:.1f}%"

    print(title)
    print(f"  accuracy            {pct(report['accuracy'])}  ({report['n']} clips)")
    if report["keyword_clips"]:
        print(
            f"  keywords right      {pct(report['keyword_accuracy'])}  "
            f"({report['keyword_correct']}/{report['keyword_clips']}, rejection allowed)"
        )
    if report.get("forced_choice_accuracy") is not None:
        print(f"  forced choice       {pct(report['forced_choice_accuracy'])}")
    if report["non_keyword_clips"]:
        print(
            f"  false accepts       {pct(report['false_accept_rate'])}  "
            f"({report['false_accepts']}/{report['non_keyword_clips']} non-keyword clips)"
        )
    print(f"  {'class':16s} {'support':>7s} {'precision':>9s} {'recall':>7s}")
    for label, row in report["per_class"].items():
        print(
            f"  {label:16s} {row['support']:7d} {pct(row['precision']):>9s} "
            f"{pct(row['recall']):>7s}"
        )
    if report.get("per_group"):
        print(f"  {'speaker / voice':24s} {'clips':>5s} {'accuracy':>8s}")
        for group, row in report["per_group"].items():
            print(f"  {group:24s} {row['n']:5d} {pct(row['accuracy']):>8s}")


def _condition(args: argparse.Namespace) -> str:
    parts = [f"noise {args.snr_db:g} dB"] if args.snr_db is not None else []
    return " + ".join(parts + (["telephone"] if args.telephone else []))


def _degrade(args: argparse.Namespace, clips: list) -> list:
    import numpy as np

    from urgence.corpus.recordings import load_noise
    from urgence.kws.evaluate import degrade

    noises = []
    if args.snr_db is not None:
        # the validation halves: the corpus trains on the other halves only
        noises = [halves[1] for halves in load_noise(args.noise_dir).values()]
    rng = np.random.default_rng(args.seed)
    return degrade(clips, rng=rng, noises=noises, snr_db=args.snr_db, telephone=args.telephone)


def run(args: argparse.Namespace) -> int:
    from urgence.audio.io import AudioError
    from urgence.corpus.dataset import DatasetError, load_clips, load_split
    from urgence.corpus.recordings import CorpusSourceError
    from urgence.corpus.vocabulary import LABELS
    from urgence.kws.evaluate import (
        ClipClassifier,
        evaluate_probs,
        load_labelled_clips,
        plot_confusion,
        score_clips,
    )
    from urgence.nn import ModelFileError

    try:
        model = ClipClassifier.load(args.model)
    except (ModelFileError, ValueError) as exc:
        print(f"urgence evaluate: {exc}", file=sys.stderr)
        return 2
    labels = list(model.labels)
    thresholds = None if args.no_thresholds else model.thresholds
    data = Path(args.data)
    skipped: list[str] = []
    degraded = args.snr_db is not None or args.telephone
    try:
        if degraded and (data / "clips").is_dir():
            # the clean clips, degraded here: the cached features carry random augmentations
            audio, y, speakers, _ = load_clips(data, args.split)
            probs = score_clips(model, _degrade(args, list(audio)))
            true = [LABELS[i] for i in y]
            groups = [str(s) for s in speakers]
            title = f"{args.model} on {data} ({args.split}, {_condition(args)})"
        elif (data / f"features_{args.split}.npz").exists():
            x, y, speakers, _ = load_split(data, args.split)
            probs = model.predict_proba(x)
            true = [LABELS[i] for i in y]
            groups = [str(s) for s in speakers]
            title = f"{args.model} on {data} ({args.split})"
        else:
            clips = load_labelled_clips(data, known_labels=labels)
            skipped = clips.skipped
            if not clips.samples:
                print(f"urgence evaluate: no usable clip in {data}", file=sys.stderr)
                return 2
            samples = _degrade(args, clips.samples) if degraded else clips.samples
            probs = score_clips(model, samples)
            true, groups = clips.labels, clips.groups
            title = f"{args.model} on {data}" + (f" ({_condition(args)})" if degraded else "")
    except (DatasetError, FileNotFoundError, AudioError, CorpusSourceError) as exc:
        print(f"urgence evaluate: {exc}", file=sys.stderr)
        return 2
    report = evaluate_probs(probs, true, labels=labels, thresholds=thresholds, groups=groups)
    report["skipped"] = skipped
    if args.figure:
        plot_confusion(report, args.figure, title=Path(args.data).name)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        _print_report(report, title)
        for line in skipped:
            print(f"  skipped: {line}", file=sys.stderr)
    return 0

"""Transfer learning, measured: from scratch vs a pretrained base, at equal keyword data.

The seed pretrained an 8-word Speech Commands model, froze it and trained a new head on its
12 keywords (3 speakers x 6 clips). Here the base is pretrained on the real-human English
words of Speech Commands (``task=speech_commands``), then three ways of learning the
keywords are compared at each keyword data budget:

- ``scratch``: the same architecture, randomly initialised;
- ``frozen``: the pretrained base frozen, only a new classifier trained (the seed's way);
- ``finetune``: the pretrained base as initialisation, every layer trained.

Each model is scored on the corpus test split (voices never trained on) and on a folder of
labelled clips from other synthesisers. Run::

    python -m urgence.kws.experiments --corpus data/corpus \\
        --speech-commands ../shared/data/speech_commands_v002_test \\
        --clips ../shared/data/validation_other_voices --out runs/transfer

It prints a Markdown table and writes ``results.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from urgence.corpus.dataset import load_split
from urgence.corpus.vocabulary import LABELS
from urgence.kws.evaluate import ClipClassifier, evaluate_probs, load_labelled_clips, score_clips
from urgence.kws.train import TrainConfig, train

# name -> (keyword voices, clean clips per voice and keyword); None: no limit
BUDGETS: dict[str, tuple[int | None, int | None]] = {
    "seed (3 voices x 6 clips)": (3, 6),
    "20 voices x 6 clips": (20, 6),
    "full corpus": (None, None),
}
METHODS = ("scratch", "frozen", "finetune")


def _score(model_path: Path, corpus: str, clips) -> dict:
    model = ClipClassifier.load(model_path)
    x, y, _, _ = load_split(corpus, "test")
    test = evaluate_probs(model.predict_proba(x), [LABELS[i] for i in y], labels=model.labels)
    result = {"test_accuracy": test["accuracy"], "test_keyword_accuracy": test["keyword_accuracy"]}
    if clips is not None:
        other = evaluate_probs(score_clips(model, clips.samples), clips.labels, labels=model.labels)
        result["other_voices_keyword_accuracy"] = other["keyword_accuracy"]
        result["other_voices_forced_choice"] = other["forced_choice_accuracy"]
    meta = model.network.metadata
    result["training_rows"] = meta["training_rows"]
    result["training_seconds"] = meta["training_seconds"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--speech-commands", default="../shared/data/speech_commands_v002_test")
    parser.add_argument("--clips", help="labelled clips of other voices (validation only)")
    parser.add_argument("--out", default="runs/transfer")
    parser.add_argument("--base", help="an already pretrained base (skips pretraining)")
    parser.add_argument("--budgets", nargs="*", default=list(BUDGETS), choices=list(BUDGETS))
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    parser.add_argument("--epochs", type=int, default=6, help="epochs of each keyword run")
    parser.add_argument("--pretrain-epochs", type=int, default=8)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = TrainConfig.from_sources(None, args.overrides)

    base = args.base
    if base is None:
        base_config = replace(
            common,
            task="speech_commands",
            data=args.speech_commands,
            epochs=args.pretrain_epochs,
            out=str(out / "base"),
            run_dir=str(out / "base_run"),
        )
        base = str(train(base_config, verbose=1))
    base_model = ClipClassifier.load(base)
    pretrain = base_model.network.metadata["history"][-1]
    print(
        f"base: Speech Commands val accuracy {pretrain['val_accuracy']:.3f} "
        f"({len(base_model.labels)} words)",
        file=sys.stderr,
    )

    clips = load_labelled_clips(args.clips, known_labels=LABELS) if args.clips else None
    results: dict[str, dict[str, dict]] = {}
    results_path = out / "results.json"
    if results_path.exists():
        results = json.loads(results_path.read_text(encoding="utf-8"))
    for budget in args.budgets:
        voices, per_voice = BUDGETS[budget]
        for method in args.methods:
            if method in results.get(budget, {}):
                continue  # resumable: a finished cell is kept
            tag = f"{budget.split(' ')[0]}_{method}"
            config = replace(
                common,
                data=args.corpus,
                epochs=args.epochs,
                keyword_voices=voices,
                clips_per_voice_keyword=per_voice,
                init_from=None if method == "scratch" else base,
                freeze_base=method == "frozen",
                out=str(out / tag),
                run_dir=str(out / f"{tag}_run"),
            )
            path = train(config, verbose=1)
            results.setdefault(budget, {})[method] = _score(path, args.corpus, clips)
            results_path.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(markdown_table(results))
    return 0


def markdown_table(results: dict[str, dict[str, dict]]) -> str:
    def pct(value) -> str:
        return "—" if value is None else f"{100 * value:.1f}"

    lines = [
        "| keyword data | method | training rows | test split (held-out espeak voices) % "
        "| other voices, keyword right % | other voices, forced choice % |",
        "|---|---|---|---|---|---|",
    ]
    for budget, by_method in results.items():
        for method, r in by_method.items():
            lines.append(
                f"| {budget} | {method} | {r['training_rows']} | {pct(r['test_accuracy'])} "
                f"| {pct(r.get('other_voices_keyword_accuracy'))} "
                f"| {pct(r.get('other_voices_forced_choice'))} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

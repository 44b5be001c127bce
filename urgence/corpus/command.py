"""``urgence corpus``: build the keyword training corpus, or check a folder of recordings."""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="corpus_action", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build",
        help="synthesise, collect and augment the training corpus (resumable)",
        description="Build clean 1 s clips and cached log-mel features (features_<split>.npz) "
        "for the 12 keywords, _unknown_ and _silence_. Rerunning the same command skips the "
        "finished shards.",
    )
    build.add_argument("--out", required=True, help="output folder (created if needed)")
    build.add_argument("--voices", type=int, default=None, help="number of espeak voices (all)")
    build.add_argument(
        "--random-voices",
        type=int,
        default=None,
        help="espeak voices of random settings, beside the shipped ones, all training voices (0)",
    )
    build.add_argument(
        "--jittered-voices",
        type=int,
        default=None,
        help="espeak voices made by jittering the settings of training-split variants, "
        "all training voices (0)",
    )
    build.add_argument(
        "--muffle",
        type=float,
        default=None,
        help="share of augmented training copies with a muffled voice (0)",
    )
    build.add_argument(
        "--train-snr-db",
        type=float,
        nargs=2,
        default=None,
        metavar=("LOW", "HIGH"),
        help="noise SNR range in dB of augmented training copies (0 30)",
    )
    build.add_argument(
        "--natural-running",
        type=float,
        default=None,
        metavar="SHARE",
        help="share of running-speech sentences with words drawn at their French frequency (0)",
    )
    build.add_argument(
        "--call-sentences",
        type=float,
        default=None,
        metavar="SHARE",
        help="share of running speech and keyword phrases (corpus and mining) made by the "
        "call-like grammar (0)",
    )
    build.add_argument(
        "--pairs-per-keyword",
        type=int,
        default=None,
        metavar="N",
        help="minimal pairs per voice and keyword: its phrases with a close word in its place (0)",
    )
    build.add_argument(
        "--pico-voices",
        type=int,
        default=None,
        help="pseudo-speakers of the second synthesiser, SVOX Pico (40; 0 to build without)",
    )
    build.add_argument(
        "--mbrola-shards",
        type=int,
        default=None,
        metavar="N",
        help="shards per installed MBROLA voice (diphones of real people; 0, none)",
    )
    build.add_argument("--seed", type=int, default=None, help="build seed (0)")
    build.add_argument(
        "--augment-copies", type=int, default=None, help="augmented copies per training clip (4)"
    )
    build.add_argument(
        "--shared",
        default="../shared",
        help="folder holding data/ (Speech Commands, background noise); default ../shared",
    )
    build.add_argument(
        "--no-shared", action="store_true", help="build without the shared data folder"
    )
    build.add_argument("--recordings", help="user recordings: <root>/<speaker>/<keyword>/*.wav")
    build.add_argument(
        "--holdout",
        action="append",
        default=[],
        metavar="PATTERN",
        help="speaker ids to put in test, shell pattern, repeatable (e.g. 'espeak:fr+f*')",
    )
    build.add_argument("--workers", type=int, default=None, help="worker processes (2)")
    build.add_argument(
        "--small", action="store_true", help="a tiny corpus in seconds (other options still apply)"
    )
    build.add_argument("--quiet", action="store_true", help="no progress bar")

    mine = actions.add_parser(
        "mine",
        help="hard examples for a second training, picked out by a first model",
        description="Synthesise fresh running speech and keyword phrases with the corpus's "
        "training voices, cut them into the detector's windows, and keep the windows a first "
        "model gets wrong: non-keywords it scores as keywords (hard negatives) and keywords it "
        "misses (hard positives). Writes <corpus>/features_mined.npz; train on it with "
        "--set extra_train='[\"<corpus>/features_mined.npz\"]'.",
    )
    mine.add_argument("--corpus", required=True, help="corpus folder (urgence corpus build)")
    mine.add_argument("--model", required=True, help="first keyword model (.npz + .json stem)")
    mine.add_argument("--out", help="output file (default <corpus>/features_mined.npz)")
    mine.add_argument(
        "--sentences-per-voice", type=int, default=12, help="running-speech sentences (12)"
    )
    mine.add_argument(
        "--phrases-per-keyword", type=int, default=2, help="phrases per voice and keyword (2)"
    )
    mine.add_argument(
        "--pairs-per-keyword",
        type=int,
        default=0,
        help="minimal-pair phrases per voice and keyword, mined for hard negatives (0)",
    )
    mine.add_argument(
        "--pair-keywords",
        type=_keyword_list,
        default=(),
        metavar="KW,KW",
        help="the keywords that get minimal-pair phrases, comma-separated (all)",
    )
    mine.add_argument(
        "--call-sentences",
        type=float,
        default=None,
        metavar="SHARE",
        help="share of sentences made by the call-like grammar (the corpus's own share)",
    )
    mine.add_argument(
        "--words-per-voice",
        type=int,
        default=0,
        metavar="N",
        help="words of the unknown vocabulary each training voice speaks alone, mined for "
        "hard negatives like the running speech (0)",
    )
    mine.add_argument(
        "--min-negative-score",
        type=float,
        default=0.25,
        metavar="P",
        help="a window of running speech becomes a hard negative when the model gives some "
        "keyword at least P (0.25)",
    )
    mine.add_argument(
        "--max-positive-score",
        type=float,
        default=0.5,
        metavar="P",
        help="a window holding a keyword becomes a hard positive when the model gives the "
        "keyword less than P (0.5)",
    )
    mine.add_argument("--seed", type=int, default=0, help="mining seed (0)")
    mine.add_argument(
        "--workers",
        type=int,
        default=2,
        help="processes sharing the voices (2; the rows do not depend on it)",
    )
    mine.add_argument("--quiet", action="store_true", help="no progress")

    words = actions.add_parser(
        "words",
        help="synthesise a French word-recognition corpus (pretraining: train --set task=words)",
        description="Every training and validation voice of the keyword corpus speaks every "
        "word once (the keywords, their closest words, then frequent words; each word a "
        "class); test voices speak nothing. Writes features_train.npz, features_val.npz and "
        "words.json.",
    )
    words.add_argument("--out", required=True, help="output folder (created if needed)")
    words.add_argument("--words", type=int, default=200, help="number of words (classes) (200)")
    words.add_argument(
        "--augment-copies", type=int, default=1, help="augmented copies per training clip (1)"
    )
    words.add_argument(
        "--no-keywords",
        action="store_true",
        help="leave the 12 keywords out of the classes (a base for transfer experiments)",
    )
    words.add_argument(
        "--frequent-only",
        action="store_true",
        help="frequent words only: no keyword, none of their closest words (a control)",
    )
    words.add_argument("--pico-voices", type=int, default=40, help="Pico pseudo-speakers (40)")
    words.add_argument("--shared", default="../shared", help="folder holding data/ (../shared)")
    words.add_argument("--seed", type=int, default=0)
    words.add_argument("--workers", type=int, default=2, help="processes sharing the voices (2)")
    words.add_argument("--quiet", action="store_true", help="no progress")

    check = actions.add_parser(
        "recordings",
        help="check a folder of user recordings (<root>/<speaker>/<keyword>/*.wav)",
        description="List the usable recordings per speaker and keyword and every problem.",
    )
    check.add_argument("root", help="recordings folder")


def _keyword_list(text: str) -> tuple[str, ...]:
    """Keywords named in a comma-separated list, with or without accents."""
    from urgence.corpus.vocabulary import KEYWORDS, keyword_from_name

    try:
        names = [keyword_from_name(name) for name in text.split(",") if name.strip()]
    except KeyError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not all(name in KEYWORDS for name in names):
        raise argparse.ArgumentTypeError(f"only keywords get minimal pairs, not {text!r}")
    return tuple(names)


def run(args: argparse.Namespace) -> int:
    if args.corpus_action == "recordings":
        return _check_recordings(args.root)
    if args.corpus_action == "mine":
        return _mine(args)
    if args.corpus_action == "words":
        return _words(args)
    from urgence.corpus.build import BuildConfig, BuildError, build_corpus

    given = {
        "voices": args.voices,
        "random_voices": args.random_voices,
        "jittered_voices": args.jittered_voices,
        "muffle": args.muffle,
        "train_snr_db": tuple(args.train_snr_db) if args.train_snr_db else None,
        "natural_running": args.natural_running,
        "call_sentences": args.call_sentences,
        "pairs_per_keyword": args.pairs_per_keyword,
        "pico_voices": args.pico_voices,
        "mbrola_shards": args.mbrola_shards,
        "seed": args.seed,
        "augment_copies": args.augment_copies,
        "workers": args.workers,
    }
    options = {name: value for name, value in given.items() if value is not None}
    options["shared"] = None if args.no_shared else args.shared
    options["recordings"] = args.recordings
    options["holdout"] = tuple(args.holdout)
    config = BuildConfig.small(**options) if args.small else BuildConfig(**options)
    try:
        summary = build_corpus(args.out, config, verbose=not args.quiet)
    except BuildError as exc:
        print(f"urgence corpus build: {exc}", file=sys.stderr)
        return 2
    for problem in summary.problems:
        print(f"warning: {problem}", file=sys.stderr)
    print(summary.table())
    print(
        f"{summary.shards_built} shards built, {summary.shards_skipped} already done, "
        f"{summary.seconds:.1f} s -> {args.out}"
    )
    return 0


def _check_recordings(root: str) -> int:
    from collections import Counter

    from urgence.corpus.recordings import CorpusSourceError, import_recordings

    try:
        result = import_recordings(root)
    except CorpusSourceError as exc:
        print(f"urgence corpus recordings: {exc}", file=sys.stderr)
        return 2
    counts = Counter((clip.speaker, clip.label) for clip in result.clips)
    for (speaker, label), count in sorted(counts.items()):
        print(f"{speaker}\t{label}\t{count}")
    for problem in result.problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(f"{len(result.clips)} usable recordings, {len(result.problems)} problems")
    return 0 if result.clips else 1


def _mine(args: argparse.Namespace) -> int:
    from pathlib import Path

    from urgence.corpus.mining import MINED_FILE, MiningConfig, mine_hard_examples, save_mined
    from urgence.corpus.mining import summary as mined_summary
    from urgence.kws.model import KeywordModel
    from urgence.nn.memory import keep_freed_memory

    keep_freed_memory()  # the model's batches of windows, as in training
    corpus = Path(args.corpus)
    if not (corpus / "build.json").is_file():
        print(
            f"urgence corpus mine: {corpus} is not a built corpus (no build.json)", file=sys.stderr
        )
        return 2
    try:
        model = KeywordModel.load(args.model)
        config = MiningConfig(
            sentences_per_voice=args.sentences_per_voice,
            phrases_per_keyword=args.phrases_per_keyword,
            pairs_per_keyword=args.pairs_per_keyword,
            pair_keywords=args.pair_keywords,
            words_per_voice=args.words_per_voice,
            call_sentences=args.call_sentences,
            min_negative_score=args.min_negative_score,
            max_positive_score=args.max_positive_score,
            seed=args.seed,
        )
        mined = mine_hard_examples(
            model, corpus, config, workers=args.workers, verbose=not args.quiet
        )
    except (OSError, ValueError) as exc:
        print(f"urgence corpus mine: {exc}", file=sys.stderr)
        return 2
    path = save_mined(mined, args.out or corpus / MINED_FILE)
    print(mined_summary(mined))
    print(f"written {path}")
    return 0


def _words(args: argparse.Namespace) -> int:
    from urgence.corpus.words import WordsConfig, build_words

    if args.words < 12 or args.augment_copies < 0 or args.workers < 1:
        print(
            "urgence corpus words: --words must be >= 12, --augment-copies >= 0 and --workers >= 1",
            file=sys.stderr,
        )
        return 2
    config = WordsConfig(
        words=args.words,
        keywords=not (args.no_keywords or args.frequent_only),
        closest=not args.frequent_only,
        augment_copies=args.augment_copies,
        pico_voices=args.pico_voices,
        shared=args.shared,
        seed=args.seed,
        workers=args.workers,
    )
    log = (lambda message: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    try:
        rows = build_words(args.out, config, log=log)
    except (OSError, ValueError) as exc:
        print(f"urgence corpus words: {exc}", file=sys.stderr)
        return 2
    print(f"{rows['train']} training rows, {rows['val']} validation rows -> {args.out}")
    return 0

"""A French word-recognition corpus for pretraining: many words, each its own class.

The keyword model's base was pretrained on Speech Commands' English words: real voices, but
neither French sounds nor the distinctions the keywords need. Here the base learns to tell
French words apart, and first of all the keywords from the words closest to them ("gaz",
"gare", "garde", "regarde" are four classes): the 12 keywords, each keyword's sound-alikes
and nearest phonetic neighbours (``build.pair_words``), then frequent words up to ``words``.

Every training and validation voice of the keyword corpus (espeak-ng variants and Pico
pseudo-speakers, split by ``splits.split_of`` exactly as there) speaks every word once,
alone or cut out of a generic phrase; the test voices speak nothing, so the calls and clips
the model is judged on stay unheard. Training clips get ``augment_copies`` augmented copies
(the corpus's chains: real noise, telephone, reverberation...).

Layout of the folder: ``features_train.npz`` and ``features_val.npz`` (``x`` (N, 40, 98)
float16, ``label`` (N,) int64 index into ``labels``, ``speaker`` (N,) str) and
``words.json`` (``labels``, the build settings, counts).
"""

from __future__ import annotations

import json
import multiprocessing
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from urgence.corpus import phrases
from urgence.corpus.build import (
    BuildConfig,
    ShardSpec,
    espeak_voices,
    featurize,
    pair_words,
    pico_shards,
    shard_rng,
    shared_resources,
    synthesiser,
)
from urgence.corpus.clips import ClipError, cut_word, make_clip, to_int16
from urgence.corpus.dataset import DatasetError, read_npz, save_npz_atomically
from urgence.corpus.neighbours import confusable_words
from urgence.corpus.pico import pico_available
from urgence.corpus.splits import split_of
from urgence.corpus.synth import SynthesisError
from urgence.corpus.unknown_words import french_vocabulary, is_keyword_derivative
from urgence.corpus.vocabulary import KEYWORDS

WORDS_FORMAT_VERSION = 1
# share of words cut out of a generic phrase (coarticulated, as in running speech); the rest
# are spoken alone
PHRASE_SHARE = 0.5


@dataclass(frozen=True)
class WordsConfig:
    words: int = 200  # classes: the keywords, their closest words, then frequent words
    # False: no keyword among the classes (a base for transfer experiments at a fixed keyword
    # data budget, which a base that heard every voice say the keywords would break)
    keywords: bool = True
    # False: no keyword's closest words either, frequent words only (a control: how much of a
    # base's value is knowing the keywords' sound-alikes)
    closest: bool = True
    augment_copies: int = 1  # per training clip, beside the clean one
    pico_voices: int = 40  # as the keyword corpus (the same pseudo-speakers and splits)
    shared: str | None = "../shared"  # for the background noises of the augmented copies
    seed: int = 0
    voices: int | None = None  # espeak voices (None: all; a few for tests)
    workers: int = 2


def word_list(count: int, *, keywords: bool = True, closest: bool = True) -> list[str]:
    """The ``count`` class words: the 12 keywords (unless ``keywords`` is False), then each
    keyword's closest words taken in turn (its first, then every keyword's second...; unless
    ``closest`` is False), then the most frequent French words (never a keyword's derivative
    when both are off)."""
    if count < len(KEYWORDS):
        raise ValueError(f"need at least {len(KEYWORDS)} words, got {count}")
    confusables = confusable_words()
    chosen: dict[str, str] = {}  # lower case -> spelling
    excluded = set() if keywords else {keyword.lower() for keyword in KEYWORDS}

    def take(word: str) -> None:
        if len(chosen) < count and word.lower() not in excluded:
            chosen.setdefault(word.lower(), word)

    for keyword in KEYWORDS:
        take(keyword)
    per_keyword = [pair_words(confusables, keyword) for keyword in KEYWORDS] if closest else [[]]
    if not (keywords or closest):
        excluded |= {w.lower() for k in KEYWORDS for w in pair_words(confusables, k)}
    for rank in range(max(map(len, per_keyword))):
        for words in per_keyword:
            if rank < len(words):
                take(words[rank])
    for word in french_vocabulary(max(count * 4, 1000)):
        if keywords or closest or not is_keyword_derivative(word):
            take(word)
    if len(chosen) < count:
        raise ValueError(f"only {len(chosen)} distinct words available, asked for {count}")
    return list(chosen.values())


def _speakers(config: WordsConfig) -> list[ShardSpec]:
    """Training and validation voices of the keyword corpus, as shards of one voice."""
    voices = espeak_voices(config.voices)
    specs = [ShardSpec(f"espeak-{voice}", "espeak", (voice,)) for voice in voices]
    if pico_available():
        specs += pico_shards(config.pico_voices)
    return specs


def _build_config(config: WordsConfig) -> BuildConfig:
    return BuildConfig(
        shared=config.shared,
        pico_voices=config.pico_voices,
        augment_copies=config.augment_copies,
        seed=config.seed,
    )


def _speak_words(job: tuple[ShardSpec, WordsConfig, tuple[str, ...]]) -> dict[str, np.ndarray]:
    """Features of every word spoken by one voice (none for a test voice)."""
    spec, config, words = job
    build_config = _build_config(config)
    rng = shard_rng(config.seed, f"words-{spec.name}")
    speaker, _engine, speak = synthesiser(spec, build_config, rng)
    split = split_of(speaker)
    audio, labels = [], []
    if split != "test":
        for label, word in enumerate(words):
            phrase = " " not in word and rng.random() < PHRASE_SHARE
            try:
                if phrase:
                    clip = make_clip(
                        cut_word(speak(phrases.generic_phrase(word, rng), word), word), rng=rng
                    )
                else:
                    clip = make_clip(speak(word, None).samples, rng=rng)
            except (ClipError, SynthesisError):
                continue  # a word too long at this rate: one clip fewer
            audio.append(clip)
            labels.append(label)
    clips = {
        "audio": to_int16(np.stack(audio)) if audio else np.zeros((0, 16000), np.int16),
        "label": np.asarray(labels, dtype=np.int64),
        # np.full with dtype=np.str_ would cut every string to one character
        "speaker": np.asarray([speaker] * len(labels), dtype=np.str_),
        "source": np.asarray(["words"] * len(labels), dtype=np.str_),
        "split": np.asarray([split] * len(labels), dtype=np.str_),
    }
    noise, _vocabulary, _confusables = shared_resources(build_config)
    return featurize(clips, build_config, rng, noise)


def build_words(out: str | Path, config: WordsConfig, *, log=print) -> dict[str, int]:
    """Write the word corpus to ``out``; returns the rows per split."""
    out = Path(out)
    words = tuple(word_list(config.words, keywords=config.keywords, closest=config.closest))
    jobs = [(spec, config, words) for spec in _speakers(config)]
    start = time.perf_counter()
    parts = []
    if config.workers > 1:
        # spawn: each worker starts its own espeak-ng instead of inheriting the parent's
        context = multiprocessing.get_context("spawn")
        with context.Pool(config.workers) as pool:
            for i, part in enumerate(pool.imap(_speak_words, jobs), 1):
                parts.append(part)
                if i % 20 == 0:
                    log(f"  {i}/{len(jobs)} voices, {time.perf_counter() - start:.0f} s")
    else:
        parts = [_speak_words(job) for job in jobs]
    rows = {}
    for split in ("train", "val"):
        keep = [{k: p[k][p["split"] == split] for k in ("x", "label", "speaker")} for p in parts]
        arrays = {k: np.concatenate([p[k] for p in keep]) for k in ("x", "label", "speaker")}
        save_npz_atomically(out / f"features_{split}.npz", arrays)
        rows[split] = len(arrays["label"])
    manifest = {
        "format_version": WORDS_FORMAT_VERSION,
        "labels": list(words),
        "config": asdict(config),
        "rows": rows,
        "seconds": round(time.perf_counter() - start, 1),
    }
    (out / "words.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), "utf-8")
    return rows


def load_words(
    folder: str | Path, split: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """x (N, 40, 98) float32, y (N,) int64, speakers (N,) str and the labels of a word corpus.
    Raises DatasetError."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / "words.json").read_text("utf-8"))
        labels = [str(word) for word in manifest["labels"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{folder}: not a word corpus (urgence corpus words): {exc}") from None
    data = read_npz(folder / f"features_{split}.npz", ("x", "label", "speaker"))
    return data["x"].astype(np.float32), data["label"].astype(np.int64), data["speaker"], labels

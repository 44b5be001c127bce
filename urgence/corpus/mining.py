"""Hard examples mined with a first keyword model, as extra training rows for a second one.

In calls the first model fires on running speech (false alarms) and misses short keywords
said inside a sentence ("un vol à l'arraché"). Both come from windows the corpus holds too
few of, so a first model picks them out of fresh speech of the corpus's *training* voices
(espeak-ng and Pico; validation and test voices are never read), cut into the detector's
windows (1 s every 100 ms) so that they are what the detector meets in a call:

- hard negatives: sentences of random non-keyword words and numbers (as ``espeak-running``);
  windows on which the model gives some keyword at least ``min_negative_score`` become
  `_unknown_` rows (``<engine>-mined``);
- hard negatives among single words (``words_per_voice``): words of the `_unknown_`
  vocabulary spoken alone, mined the same way (``<engine>-mined-word``);
- hard positives: keyword phrases (as ``espeak-context``); windows that hold the whole
  keyword, with ``margin_s`` to spare on both sides, on which the model gives it less than
  ``max_positive_score`` become rows of that keyword (``<engine>-mined-positive``).

Each sentence is featurised clean and through ``copies`` noise / telephone chains (no speed
change: the word's timing must stay known). The rows go to ``features_mined.npz`` beside the
corpus's own features; ``urgence train --set extra_train='["<corpus>/features_mined.npz"]'``
adds them to the training rows.
"""

from __future__ import annotations

import json
import multiprocessing
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from urgence.audio import augment
from urgence.audio.features import FeatureConfig, log_mel
from urgence.audio.features import windows as cut_windows
from urgence.corpus.build import (
    FEATURE_DTYPE,
    SYNTHESISED_KINDS,
    BuildConfig,
    ShardSpec,
    keyword_text,
    minimal_pairs,
    neutral_text,
    plan_shards,
    shared_resources,
    synthesiser,
)
from urgence.corpus.clips import ClipError, speech_bounds, word_span
from urgence.corpus.dataset import save_npz_atomically
from urgence.corpus.splits import split_of
from urgence.corpus.synth import SynthesisError
from urgence.corpus.vocabulary import KEYWORDS, LABELS, UNKNOWN

MINED_FILE = "features_mined.npz"
# pitch shift keeps the timing; speed changes and time shifts would move the word
_CHAIN_P = {"shift": 0.0, "speed": 0.0, "pitch": 0.2}


class ProbabilityModel(Protocol):
    labels: Sequence[str]

    def predict_proba(self, windows: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class MiningConfig:
    sentences_per_voice: int = 12  # running-speech sentences per training voice
    phrases_per_keyword: int = 2  # keyword phrases per training voice and keyword
    # minimal-pair phrases (``build.minimal_pair_phrase``) per training voice and keyword,
    # mined for hard negatives like the running speech
    pairs_per_keyword: int = 0
    # the keywords that get minimal pairs (empty: all). Only "gaz" and "vol" have hundreds
    # of neighbours (475, 367), each heard about once in a corpus; the others have 5-40.
    pair_keywords: tuple[str, ...] = ()
    # words of the `_unknown_` vocabulary per training voice, each spoken alone and mined
    # like the running speech: the model is asked about words one at a time, so the frequent
    # words it takes for a keyword ("entendu" for incendie, "malheur" for malaise) are found
    # even though a random sentence holds each of 5,000 words only now and then
    words_per_voice: int = 0
    # share of running-speech sentences and keyword phrases made by the call-like grammar
    # (``dialogue``); None: the corpus's own share (``BuildConfig.call_sentences``)
    call_sentences: float | None = None
    copies: int = 2  # noisy / telephone copies of each sentence, beside the clean one
    min_negative_score: float = 0.25
    max_positive_score: float = 0.5
    margin_s: float = 0.05
    hop_s: float = 0.1
    edge_s: float = 0.5  # silence around each sentence, as the detector pads a call
    seed: int = 0

    def __post_init__(self) -> None:
        # checked here, not in a worker process, where a bad name would end in a KeyError
        unknown = [k for k in self.pair_keywords if k not in KEYWORDS]
        if unknown:
            raise ValueError(f"pair_keywords must be keywords, not {unknown}")
        if self.words_per_voice < 0:
            raise ValueError(f"words_per_voice must be >= 0, got {self.words_per_voice}")
        if self.call_sentences is not None and not 0.0 <= self.call_sentences <= 1.0:
            raise ValueError(f"call_sentences must be a share in [0, 1], got {self.call_sentences}")
        for name in ("min_negative_score", "max_positive_score"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")


def _corpus_build_config(corpus: Path) -> BuildConfig:
    saved = json.loads((corpus / "build.json").read_text(encoding="utf-8"))["config"]
    fields = BuildConfig.__dataclass_fields__
    return BuildConfig(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in fields}
    )


def mine_hard_examples(
    model: ProbabilityModel,
    corpus: str | Path,
    config: MiningConfig = MiningConfig(),
    *,
    workers: int = 1,
    verbose: bool = False,
) -> dict[str, np.ndarray]:
    """Mined rows (module docstring) for the corpus at ``corpus``: ``x`` (M, 40, 98) float16,
    ``label`` (M,) int64 (indices into LABELS), ``speaker``, ``source``, ``augmented`` (all
    False: each row is its own example) and ``score`` (the model's posterior that made the
    row hard). The corpus's ``build.json`` says which voices and noises it was built with.

    ``workers`` > 1 shares the voices among forked processes; each voice draws from its own
    generator and the rows come back in voice order, so the result does not depend on it."""
    if list(model.labels) != list(LABELS):
        raise ValueError(f"the model's labels {list(model.labels)} are not the corpus's")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    build_config = _corpus_build_config(Path(corpus))
    if config.call_sentences is not None:
        build_config = replace(build_config, call_sentences=config.call_sentences)
    specs = [spec for spec in plan_shards(build_config) if spec.kind in SYNTHESISED_KINDS]
    job = (model, build_config, config)
    started = time.perf_counter()
    parts: list[dict[str, np.ndarray]] = []

    def progress(name: str) -> None:
        if verbose:
            rows = sum(len(part["label"]) for part in parts)
            print(
                f"\r{name}: {rows} rows, {time.perf_counter() - started:.0f} s", end="", flush=True
            )

    if workers == 1 or len(specs) < 2:
        _start_worker(*job)
        for spec in specs:
            parts.append(_mine_voice(spec))
            progress(spec.name)
    else:
        # forked, so the model needs no pickling; each worker makes its own synthesisers
        context = multiprocessing.get_context("fork")
        with context.Pool(min(workers, len(specs)), _start_worker, job) as pool:
            for spec, part in zip(specs, pool.imap(_mine_voice, specs), strict=True):
                parts.append(part)
                progress(spec.name)
    if verbose:
        print()
    return (
        {key: np.concatenate([part[key] for part in parts]) for key in _EMPTY_ROWS}
        if parts
        else {key: value.copy() for key, value in _EMPTY_ROWS.items()}
    )


_FEATURES = FeatureConfig()
_EMPTY_ROWS: dict[str, np.ndarray] = {
    "x": np.zeros((0, _FEATURES.n_mels, _FEATURES.n_frames), FEATURE_DTYPE),
    "label": np.zeros(0, np.int64),
    "speaker": np.zeros(0, np.str_),
    "source": np.zeros(0, np.str_),
    "augmented": np.zeros(0, bool),
    "score": np.zeros(0, np.float32),
}
# what a mining process works with (set by _start_worker, in each worker of a pool)
_job: dict = {}


def _start_worker(model: ProbabilityModel, build_config: BuildConfig, config: MiningConfig) -> None:
    noise, vocabulary, confusables = shared_resources(build_config)
    _job.update(
        model=model,
        build_config=build_config,
        config=config,
        noises=[halves[0] for halves in noise.values()],  # training halves only
        vocabulary=vocabulary,
        confusables=confusables,
    )


def _mine_voice(spec: ShardSpec) -> dict[str, np.ndarray]:
    """The mined rows of one voice (a corpus shard), as ``mine_hard_examples`` returns them."""
    model: ProbabilityModel = _job["model"]
    build_config: BuildConfig = _job["build_config"]
    config: MiningConfig = _job["config"]
    noises, vocabulary, confusables = _job["noises"], _job["vocabulary"], _job["confusables"]
    features = _FEATURES
    hop = round(config.hop_s * features.sample_rate)
    edge = round(config.edge_s * features.sample_rate)
    margin = round(config.margin_s * features.sample_rate)
    hop_frames = hop // features.hop_length
    keyword_columns = [LABELS.index(k) for k in KEYWORDS]
    rows: dict[str, list] = {"x": [], "label": [], "speaker": [], "source": [], "score": []}

    def variants(samples: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        padded = np.concatenate([np.zeros(edge, np.float32), samples, np.zeros(edge, np.float32)])
        chains = [
            augment.random_chain(
                padded,
                rng=rng,
                noises=noises,
                p={**_CHAIN_P, "muffle": build_config.muffle},
                snr_db=build_config.train_snr_db,
            )
            for _ in range(config.copies)
        ]
        return [padded, *chains]

    def keep(window: np.ndarray, label: int, speaker: str, source: str, score: float) -> None:
        for key, value in zip(rows, (window, label, speaker, source, score), strict=True):
            rows[key].append(value)

    rng = np.random.default_rng([config.seed, zlib.crc32(spec.name.encode("utf-8"))])
    speaker, engine, speak = synthesiser(spec, build_config, rng)
    if split_of(speaker, holdout=build_config.holdout) != "train":
        return {key: value.copy() for key, value in _EMPTY_ROWS.items()}

    def mine_negatives(text: str, source: str) -> None:
        try:
            speech = speak(text, None)
        except SynthesisError:
            return
        for samples in variants(speech.samples, rng):
            windows = cut_windows(
                log_mel(samples, config=features), config=features, hop_frames=hop_frames
            )
            if not len(windows):
                continue
            best = model.predict_proba(windows)[:, keyword_columns].max(axis=1)
            for i in np.flatnonzero(best >= config.min_negative_score):
                keep(windows[i], LABELS.index(UNKNOWN), speaker, source, best[i])

    for _ in range(config.sentences_per_voice):
        text = neutral_text(vocabulary, rng, confusables, build_config)
        mine_negatives(text, f"{engine}-mined")
    for keyword in KEYWORDS:
        column = LABELS.index(keyword)
        for _ in range(config.phrases_per_keyword):
            text = keyword_text(keyword, vocabulary, rng, build_config.call_sentences)
            try:
                speech = speak(text, keyword)
                start_s, end_s, _, _ = word_span(speech, keyword)
            except (ClipError, SynthesisError):
                continue
            start = round(start_s * features.sample_rate)
            first, last = speech_bounds(speech.samples[start : round(end_s * features.sample_rate)])
            if last - first < features.hop_length * 5:
                continue
            word_start, word_end = edge + start + first, edge + start + last
            for samples in variants(speech.samples, rng):
                windows = cut_windows(
                    log_mel(samples, config=features), config=features, hop_frames=hop_frames
                )
                begins = np.arange(len(windows)) * hop
                holding = np.flatnonzero(
                    (begins <= word_start - margin)
                    & (begins + features.clip_samples >= word_end + margin)
                )
                if not len(holding):
                    continue
                scores = model.predict_proba(windows[holding])[:, column]
                for i, score in zip(holding, scores, strict=True):
                    if score < config.max_positive_score:
                        keep(windows[i], column, speaker, f"{engine}-mined-positive", score)
    for keyword in config.pair_keywords or KEYWORDS:
        pairs = minimal_pairs(keyword, config.pairs_per_keyword, confusables, vocabulary, rng)
        for _, text in pairs:
            mine_negatives(text, f"{engine}-mined-pair")
    if config.words_per_voice:
        count = min(config.words_per_voice, len(vocabulary))
        for word in rng.choice(vocabulary, count, replace=False):
            mine_negatives(str(word), f"{engine}-mined-word")
    if not rows["x"]:
        return {key: value.copy() for key, value in _EMPTY_ROWS.items()}
    return {
        "x": np.stack(rows["x"]).astype(FEATURE_DTYPE),
        "label": np.asarray(rows["label"], dtype=np.int64),
        "speaker": np.asarray(rows["speaker"], dtype=np.str_),
        "source": np.asarray(rows["source"], dtype=np.str_),
        "augmented": np.zeros(len(rows["x"]), dtype=bool),
        "score": np.asarray(rows["score"], dtype=np.float32),
    }


def summary(mined: dict[str, np.ndarray]) -> str:
    """One line per kind: how many rows, and per label."""
    counts = Counter(LABELS[i] for i in mined["label"])
    negatives = counts.pop(UNKNOWN, 0)
    positives = ", ".join(f"{k} {counts[k]}" for k in KEYWORDS if counts[k])
    total = sum(counts.values())
    return f"hard negatives ({UNKNOWN}): {negatives}\nhard positives: {total} ({positives})"


def save_mined(mined: dict[str, np.ndarray], path: str | Path) -> Path:
    save_npz_atomically(path, mined)
    return Path(path)

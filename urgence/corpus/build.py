"""Build the keyword training corpus: clean 1 s clips and cached, augmented log-mel features.

The work is cut into shards (one per espeak voice, plus shards of real speech, noise and
user recordings). Each shard has its own generator seeded from the build seed and the
shard's name, so a shard's content does not depend on which worker built it or in which
order; a finished shard (its clip and feature files both present) is skipped on rerun, and
every file is written atomically. The per-split feature caches are assembled at the end.

Sources and labels:

- espeak-ng, every French voice variant and ``random_voices`` variants of random settings
  (``voice_variants``): keywords spoken alone (``espeak-isolated``), cut
  out of carrier phrases (``espeak-phrase``) or kept with the 1 s of the phrase around them
  (``espeak-context``, neighbouring words included); `_unknown_` words alone or cut out of generic
  phrases (``espeak-unknown``, a third of them sound-alikes of the keywords), 1 s windows
  of sentences of random words and numbers (``espeak-running``), and 1 s of a keyword
  phrase that misses the keyword (``espeak-neighbours``: its neighbours, the hardest
  negatives).
- SVOX Pico, a second synthesiser made into ``pico_voices`` pseudo-speakers (``pico.py``):
  the same kinds of clips as espeak-ng, sources ``pico-isolated`` ... ``pico-neighbours``.
- MBROLA, diphones of real people (``mbrola.py``), ``mbrola_shards`` shards per installed
  voice, each voice one speaker: the same kinds of clips, sources ``mbrola-isolated`` ...
- Speech Commands (real English speakers): `_unknown_` (``speech-commands``).
- asterisk French prompts (one real speaker, telephone quality): `_unknown_` (``asterisk``).
- background noise, train/val halves: `_silence_` (``noise``).
- user recordings ``<root>/<speaker>/<keyword>/*.wav`` (``user``).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import re
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from urgence.audio import augment
from urgence.audio.features import FeatureConfig, log_mel
from urgence.audio.io import AudioError, load_audio
from urgence.corpus import dialogue, phrases, recordings, voice_variants
from urgence.corpus.clips import (
    CLIP_SAMPLES,
    ClipError,
    context_clip,
    context_negative,
    cut_word,
    make_clip,
    to_int16,
)
from urgence.corpus.dataset import read_npz, save_npz_atomically
from urgence.corpus.mbrola import corpus_voices, speak_mbrola
from urgence.corpus.mbrola import speaker_id as mbrola_speaker
from urgence.corpus.neighbours import confusable_words
from urgence.corpus.pico import pico_available, pico_voices, speak_pico
from urgence.corpus.splits import SPLITS, split_of
from urgence.corpus.synth import Speech, SynthesisError, french_voices, synthesize
from urgence.corpus.unknown_words import natural_vocabulary, unknown_words
from urgence.corpus.vocabulary import KEYWORDS, LABELS, SILENCE, UNKNOWN
from urgence.nn.progress import ProgressBar

# espeak parameter ranges sampled per clip (rate in words per minute, others 0-100)
RATE_RANGE = (120, 260)
PITCH_RANGE = (15, 85)
PITCH_RANGE_RANGE = (10, 90)
# share of espeak `_unknown_` clips drawn from the keywords' sound-alikes and phonetic
# neighbours (hard negatives; a keyword drawn first, then one of its words)
SOUND_ALIKE_SHARE = 0.35
# share of espeak `_unknown_` clips that are windows of running speech rather than one word
RUNNING_SPEECH_SHARE = 0.5
# words per sentence of random words, and 1 s windows kept per sentence
RUNNING_SPEECH_WORDS = (6, 13)
RUNNING_SPEECH_WINDOWS = 2
# share of keyword phrases that also give a `_unknown_` clip of their other words (corpus
# v2 had none: in calls the model fired on the words around keywords, 30 false alarms /h)
NEIGHBOURS_SHARE = 0.75
# share of running-speech sentences holding numbers (phone numbers, ages, street numbers,
# times: callers say many, and corpus v3 fired on them: "cinquante-six" as intoxication)
NUMBERS_SHARE = 0.35
# share of running-speech sentences holding one or two of the keywords' phonetic neighbours
# (corpus v7: the session-5 model heard "gaz" in "je regarde" at 0.99 in calls)
CONFUSABLE_SHARE = 0.5
# share of keyword phrases whose words around the keyword are random (the rest are the fixed
# carrier phrases): the model is to hear the keyword, not learn its neighbours
RANDOM_CONTEXT_SHARE = 0.5
# share of keyword phrases kept as the 1 s around the keyword, neighbouring words included
# (a call's windows never hold a keyword in silence; trained on words in silence only, the
# model answered `_unknown_` to keywords in running speech)
CONTEXT_SHARE = 0.5
# minimal pairs: a keyword's words drawn for them are the first this many single words of its
# confusable list (the hand-written sound-alikes, then the most frequent phonetic neighbours).
# Drawn from hundreds of neighbours, each word was spoken about once in a corpus, and a model
# trained on it heard "gaz" in "gare" and "garde", "violences" in "silence", "vol" in "Paul"
# (MODEL_CARD.md, session 10)
PAIR_NEIGHBOURS = 16
# augmentation: noise SNR range for training copies, and for the one val/test copy
TRAIN_SNR_DB = (0.0, 30.0)
EVAL_SNR_DB = (5.0, 25.0)
# pitch shift is a slow phase vocoder: applied to a share of training copies only
TRAIN_CHAIN_P = {"shift": 0.0, "pitch": 0.2}
EVAL_CHAIN_P = {"shift": 0.0, "speed": 0.0, "pitch": 0.0}
# `_silence_` clips: level of the noise window, in dB RMS, and the share of near-digital silence
SILENCE_LEVEL_DB = (-65.0, -15.0)
DIGITAL_SILENCE_SHARE = 0.1
SPEECH_COMMANDS_PER_SHARD = 200
ASTERISK_PER_SHARD = 100
SILENCE_PER_SHARD = 200
FEATURE_DTYPE = np.float16
FORMAT_VERSION = 11
_ITEM_SEPARATOR = "\t"  # between the fields of a shard item ("path<TAB>word<TAB>speaker")


class BuildError(RuntimeError):
    """The build cannot proceed (bad options, missing data, a mismatched existing corpus)."""


@dataclass(frozen=True)
class BuildConfig:
    """What to build. ``shared`` is the folder holding ``data/`` (DATA.md); None skips the
    real speech and noise sources (silence is then generated)."""

    voices: int | None = None  # None: every French espeak voice
    # espeak voices made of random settings (voice_variants), beside the shipped ones; all
    # training voices. 0 here; the shipped recipe asks for 24 (MODEL_CARD.md, session 19)
    random_voices: int = 0
    # espeak voices made by jittering training-split variants' settings (voice_variants);
    # training voices too
    jittered_voices: int = 0
    # share of augmented training copies through ``augment.muffle`` (a muffled voice), in the
    # corpus and in mining; off by default: a run with 0.25 did not route more calls
    muffle: float = 0.0
    # noise SNR range (dB) of augmented training copies, in the corpus and in mining; a run at
    # 0-20 dB routed no more calls, not even those at 5-10 dB (MODEL_CARD.md, session 9)
    train_snr_db: tuple[float, float] = TRAIN_SNR_DB
    # share of running-speech sentences (corpus and mining) whose words are drawn as often as
    # French uses them, function words included (``natural_vocabulary``)
    natural_running: float = 0.0
    # share of running-speech sentences and of keyword phrases (corpus and mining) made by
    # the call-like grammar of ``dialogue`` instead of random words or carrier phrases
    call_sentences: float = 0.0
    # per voice and keyword: `_unknown_` clips of the keyword's phrases with one of its closest
    # words in its place ("une fuite de garde"): minimal pairs (``minimal_pair_phrase``)
    pairs_per_keyword: int = 0
    pico_voices: int = 40  # pseudo-speakers of the second synthesiser, SVOX Pico (pico.py)
    # shards per installed MBROLA voice (mbrola.py: diphones of real people; each voice one
    # speaker, split like the others; never the two of validation_other_voices); 0: none
    mbrola_shards: int = 0
    seed: int = 0
    augment_copies: int = 4  # augmented copies per training clip, beside the clean one
    isolated_per_keyword: int = 3  # per voice and keyword
    phrase_per_keyword: int = 4  # per voice and keyword
    unknown_per_voice: int = 24
    vocabulary_size: int = 5000
    speech_commands_clips: int = 600
    asterisk_clips: int = 400
    silence_clips: int = 500
    shared: str | None = "../shared"
    recordings: str | None = None
    holdout: tuple[str, ...] = ()
    workers: int = 2

    @classmethod
    def small(cls, **overrides: Any) -> BuildConfig:
        """A tiny corpus that builds in seconds (for tests and smoke runs)."""
        tiny = cls(
            voices=2,
            augment_copies=1,
            isolated_per_keyword=1,
            phrase_per_keyword=1,
            unknown_per_voice=3,
            random_voices=1,
            pico_voices=1 if pico_available() else 0,
            vocabulary_size=300,
            speech_commands_clips=6,
            asterisk_clips=4,
            silence_clips=6,
            workers=1,
        )
        return replace(tiny, **overrides)

    def content_key(self) -> dict[str, Any]:
        """The parameters that define the corpus content (not how it is built)."""
        key = asdict(self)
        del key["workers"]
        for name, value in key.items():
            if isinstance(value, tuple):  # as JSON gives them back
                key[name] = list(value)
        for folder in ("shared", "recordings"):
            if key[folder] is not None:
                key[folder] = str(Path(key[folder]).resolve())
        key["format_version"] = FORMAT_VERSION
        return key


# shard kinds whose speech a synthesiser makes (``synthesiser``): the voices mining reads
SYNTHESISED_KINDS: tuple[str, ...] = ("espeak", "pico", "mbrola")


@dataclass(frozen=True)
class ShardSpec:
    """One unit of work: ``kind`` selects the generator, ``items`` its inputs."""

    name: str
    kind: str  # "espeak", "pico", "mbrola", "speech-commands", "asterisk", "silence", "user"
    items: tuple[str, ...] = ()


@dataclass
class ClipBatch:
    """Clean clips of one shard, as lists (turned into arrays when saved)."""

    audio: list[np.ndarray] = field(default_factory=list)
    label: list[int] = field(default_factory=list)
    speaker: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    split: list[str] = field(default_factory=list)

    def add(
        self, clip: np.ndarray, label: str, speaker: str, source: str, text: str, split: str
    ) -> None:
        self.audio.append(clip)
        self.label.append(LABELS.index(label))
        self.speaker.append(speaker)
        self.source.append(source)
        self.text.append(text)
        self.split.append(split)

    def arrays(self) -> dict[str, np.ndarray]:
        audio = np.stack(self.audio) if self.audio else np.zeros((0, CLIP_SAMPLES), np.float32)
        return {
            "audio": to_int16(audio),
            "label": np.asarray(self.label, dtype=np.int64),
            "speaker": np.asarray(self.speaker, dtype=np.str_),
            "source": np.asarray(self.source, dtype=np.str_),
            "text": np.asarray(self.text, dtype=np.str_),
            "split": np.asarray(self.split, dtype=np.str_),
        }


def shard_rng(seed: int, name: str) -> np.random.Generator:
    """The generator of one shard: depends on the build seed and the shard name only."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


def _data(config: BuildConfig, name: str) -> Path | None:
    return None if config.shared is None else Path(config.shared) / "data" / name


# -- planning ------------------------------------------------------------------------------


def _check_synthesiser_option(option: str, count: int, available: bool, needs: str) -> None:
    """Refuse a negative count, or a positive one for a synthesiser this machine lacks."""
    if count < 0:
        raise BuildError(f"{option} must be >= 0, got {count}")
    if count and not available:
        raise BuildError(
            f"{option} needs {needs} (scripts/setup-system.sh does), or pass {option} 0"
        )


def plan_shards(config: BuildConfig) -> list[ShardSpec]:
    """Every shard of the build, in a fixed order. Raises BuildError for bad options."""
    if config.voices is not None and config.voices <= 0:
        raise BuildError(f"--voices must be positive, got {config.voices}")
    if config.augment_copies < 0:
        raise BuildError(f"--augment-copies must be >= 0, got {config.augment_copies}")
    if config.shared is not None and not Path(config.shared).is_dir():
        raise BuildError(
            f"{config.shared}: shared data folder not found (pass --shared PATH, or --no-shared "
            "to build from espeak-ng and the asterisk prompts only)"
        )
    voices = espeak_voices(config.voices)
    if not 0 <= config.random_voices <= voice_variants.COUNT:
        raise BuildError(
            f"--random-voices must be between 0 and {voice_variants.COUNT}, "
            f"got {config.random_voices}"
        )
    voices += voice_variants.names(config.random_voices)
    if not 0 <= config.jittered_voices <= voice_variants.JITTER_COUNT:
        raise BuildError(
            f"--jittered-voices must be between 0 and {voice_variants.JITTER_COUNT}, "
            f"got {config.jittered_voices}"
        )
    voices += voice_variants.jittered_names(config.jittered_voices)
    if config.jittered_voices and config.holdout:
        # a jittered voice is a relative of its source: a held-out source would leak
        variants = [v[3:] for v in espeak_voices(None) if v.startswith("fr+")]
        used = set(voice_variants.jitter_sources(variants, config.jittered_voices))
        leaked = sorted(
            v for v in used if split_of(f"espeak:fr+{v}", holdout=config.holdout) == "test"
        )
        if leaked:
            raise BuildError(f"--holdout matches the sources of jittered voices: {leaked}")
    shards = [ShardSpec(f"espeak-{voice}", "espeak", (voice,)) for voice in voices]
    if not 0.0 <= config.muffle <= 1.0:
        raise BuildError(f"--muffle must be a share between 0 and 1, got {config.muffle}")
    if not 0.0 <= config.natural_running <= 1.0:
        raise BuildError(
            f"--natural-running must be a share between 0 and 1, got {config.natural_running}"
        )
    if not 0.0 <= config.call_sentences <= 1.0:
        raise BuildError(
            f"--call-sentences must be a share between 0 and 1, got {config.call_sentences}"
        )
    if config.pairs_per_keyword < 0:
        raise BuildError(f"--pairs-per-keyword must be >= 0, got {config.pairs_per_keyword}")
    low, high = config.train_snr_db
    if not low < high:
        raise BuildError(f"--train-snr-db needs LOW < HIGH, got {low} {high}")
    _check_synthesiser_option(
        "--pico-voices",
        config.pico_voices,
        pico_available(),
        "pico2wave: install Debian's libttspico-utils",
    )
    shards += pico_shards(config.pico_voices)
    mbrola = corpus_voices() if config.mbrola_shards > 0 else []
    _check_synthesiser_option(
        "--mbrola-shards",
        config.mbrola_shards,
        bool(mbrola),
        "MBROLA voices: install Debian's espeak-ng, mbrola and mbrola-fr2 ...",
    )
    shards += [
        ShardSpec(f"mbrola-{voice}-{index}", "mbrola", (voice,))
        for voice in mbrola
        for index in range(config.mbrola_shards)
    ]
    rng = shard_rng(config.seed, "plan")

    commands_root = _data(config, "speech_commands_v002_test")
    if commands_root is not None and commands_root.is_dir() and config.speech_commands_clips:
        files = recordings.speech_commands_files(commands_root)
        chosen = sorted(
            rng.choice(len(files), min(config.speech_commands_clips, len(files)), replace=False)
        )
        items = [_ITEM_SEPARATOR.join(map(str, files[i])) for i in chosen]
        shards += _chunked("speech-commands", "speech-commands", items, SPEECH_COMMANDS_PER_SHARD)

    prompts = recordings.asterisk_files()
    if prompts and config.asterisk_clips:
        chosen = sorted(
            rng.choice(len(prompts), min(config.asterisk_clips, len(prompts)), replace=False)
        )
        paths = [str(prompts[i]) for i in chosen]
        shards += _chunked("asterisk", "asterisk", paths, ASTERISK_PER_SHARD)

    n_silence_shards = math.ceil(config.silence_clips / SILENCE_PER_SHARD)
    for index in range(n_silence_shards):
        count = min(SILENCE_PER_SHARD, config.silence_clips - index * SILENCE_PER_SHARD)
        shards.append(ShardSpec(f"silence-{index:03d}", "silence", (str(count),)))

    if config.recordings is not None:
        root = Path(config.recordings)
        if not root.is_dir():
            raise BuildError(f"{root}: recordings folder not found")
        speakers = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name[0] != ".")
        shards += [ShardSpec(f"user-{s}", "user", (s,)) for s in speakers]
    return shards


def espeak_voices(count: int | None) -> list[str]:
    """espeak-ng's French voices, or ``count`` of them evenly spread over the sorted list, so
    that a small build still mixes voice families."""
    voices = french_voices()
    if count is not None and count < len(voices):
        picks = np.linspace(0, len(voices) - 1, count).round().astype(int)
        voices = [voices[i] for i in picks]
    return voices


def pico_shards(count: int) -> list[ShardSpec]:
    """One shard per Pico pseudo-speaker."""
    return [ShardSpec(v.name.replace(":", "-"), "pico", (v.name,)) for v in pico_voices(count)]


def _chunked(prefix: str, kind: str, items: list[str], size: int) -> list[ShardSpec]:
    return [
        ShardSpec(f"{prefix}-{i // size:03d}", kind, tuple(items[i : i + size]))
        for i in range(0, len(items), size)
    ]


# -- clip generation -----------------------------------------------------------------------


def _espeak_settings(rng: np.random.Generator) -> dict[str, int]:
    return {
        "rate": int(rng.integers(RATE_RANGE[0], RATE_RANGE[1] + 1)),
        "pitch": int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
        "pitch_range": int(rng.integers(PITCH_RANGE_RANGE[0], PITCH_RANGE_RANGE[1] + 1)),
    }


def running_text(
    vocabulary: list[str],
    rng: np.random.Generator,
    confusables: Mapping[str, Sequence[str]] | None = None,
    natural_share: float = 0.0,
) -> str:
    """Random words; in ``NUMBERS_SHARE`` of sentences groups of digits among them
    (espeak-ng speaks "06 12 34" as French numbers), and with ``confusables`` (keyword ->
    words that sound close), in ``CONFUSABLE_SHARE`` of sentences one or two of those.
    In ``natural_share`` of sentences the words are drawn as often as French uses them
    (``natural_vocabulary``: "de", "vous"...), in the others uniformly from ``vocabulary``."""
    n_words = int(rng.integers(*RUNNING_SPEECH_WORDS))
    if natural_share > 0 and rng.random() < natural_share:
        natural, probabilities = natural_vocabulary()
        words = list(rng.choice(natural, n_words, p=probabilities))
    else:
        words = list(rng.choice(vocabulary, n_words))
    if rng.random() < NUMBERS_SHARE:
        groups = [str(int(rng.integers(0, 100))).zfill(2) for _ in range(rng.integers(1, 5))]
        if rng.random() < 0.3:
            groups = [str(int(rng.integers(1, 2000)))]
        at = int(rng.integers(len(words) + 1))
        words[at:at] = groups
    if confusables and rng.random() < CONFUSABLE_SHARE:
        for _ in range(int(rng.integers(1, 3))):
            words.insert(int(rng.integers(len(words) + 1)), confusable_word(confusables, rng))
    return " ".join(words)


def neutral_text(
    vocabulary: list[str],
    rng: np.random.Generator,
    confusables: Mapping[str, Sequence[str]],
    config: BuildConfig,
) -> str:
    """A keyword-free sentence: in ``config.call_sentences`` of them a call-like sentence
    (``dialogue``), in the others ``running_text``."""
    if config.call_sentences > 0 and rng.random() < config.call_sentences:
        return dialogue.call_sentence(rng)
    return running_text(vocabulary, rng, confusables, config.natural_running)


def keyword_text(
    keyword: str, vocabulary: list[str], rng: np.random.Generator, call_share: float = 0.0
) -> str:
    """A sentence holding ``keyword``: in ``call_share`` of them a call-like sentence
    (``dialogue``), in the others a carrier phrase or the keyword among random words."""
    if call_share > 0 and rng.random() < call_share:
        return dialogue.call_sentence(rng, keyword)
    if rng.random() < RANDOM_CONTEXT_SHARE:
        return phrases.random_context_phrase(keyword, vocabulary, rng)
    return phrases.keyword_phrase(keyword, rng)


def confusable_word(confusables: Mapping[str, Sequence[str]], rng: np.random.Generator) -> str:
    """A keyword drawn uniformly, then one of its sound-alikes or neighbours: each keyword
    gets the same share, however many neighbours it has. (Drawing the words by Zipf rank
    instead, the frequent ones such as "garde" and "regarde" for "gaz" most often, routed no
    more calls: MODEL_CARD.md, session 8.)"""
    keywords = [k for k in confusables if confusables[k]]
    words = confusables[keywords[int(rng.integers(len(keywords)))]]
    return words[int(rng.integers(len(words)))]


def pair_words(confusables: Mapping[str, Sequence[str]], keyword: str) -> list[str]:
    """The words that may stand in for ``keyword`` in a minimal pair: its first
    ``PAIR_NEIGHBOURS`` single-word confusables, one spelling each ("Paul", not "paul")."""
    words: dict[str, str] = {}
    for word in confusables.get(keyword, ()):
        if word.isalpha():
            words.setdefault(word.lower(), word)
    return list(words.values())[:PAIR_NEIGHBOURS]


def minimal_pair_phrase(
    keyword: str, word: str, vocabulary: list[str], rng: np.random.Generator
) -> str:
    """A phrase of ``keyword`` (a carrier phrase or random context, as keyword clips draw
    them) with ``word`` in the keyword's place: the same neighbours and prosody, a different
    word, so the model has to hear the keyword itself."""
    text = keyword_text(keyword, vocabulary, rng)
    return re.sub(rf"(?<!\w){re.escape(keyword)}(?!\w)", word, text, count=1)


def minimal_pairs(
    keyword: str,
    count: int,
    confusables: Mapping[str, Sequence[str]],
    vocabulary: list[str],
    rng: np.random.Generator,
) -> Iterator[tuple[str, str]]:
    """``count`` minimal pairs of ``keyword`` as (word, phrase), each word drawn from
    ``pair_words``; none for a keyword without confusables."""
    candidates = pair_words(confusables, keyword)
    for _ in range(count if candidates else 0):
        word = candidates[int(rng.integers(len(candidates)))]
        yield word, minimal_pair_phrase(keyword, word, vocabulary, rng)


# speak(text, target) -> Speech: one synthesiser and voice; target is the word whose span
# the caller needs (a synthesiser without word timings speaks around it in pieces)
Speaker = Callable[[str, "str | None"], Speech]


def synthesiser(
    spec: ShardSpec, config: BuildConfig, rng: np.random.Generator
) -> tuple[str, str, Speaker]:
    """(speaker id, engine name, speak) of an "espeak", "pico" or "mbrola" shard."""
    if spec.kind == "mbrola":
        mbrola_voice = spec.items[0]

        def speak_mbrola_voice(text: str, target: str | None) -> Speech:
            return speak_mbrola(text, target, voice=mbrola_voice, rng=rng)

        return mbrola_speaker(mbrola_voice), "mbrola", speak_mbrola_voice
    if spec.kind == "espeak":
        voice = spec.items[0]

        def speak_espeak(text: str, target: str | None) -> Speech:
            return synthesize(text, voice=voice, **_espeak_settings(rng))

        return f"espeak:{voice}", "espeak", speak_espeak
    pico_voice = {v.name: v for v in pico_voices(config.pico_voices)}[spec.items[0]]

    def speak_pico_voice(text: str, target: str | None) -> Speech:
        return speak_pico(text, target, voice=pico_voice, rng=rng)

    return pico_voice.name, "pico", speak_pico_voice


def _synthesised_clips(
    speaker: str,
    engine: str,
    speak: Speaker,
    config: BuildConfig,
    rng: np.random.Generator,
    batch: ClipBatch,
    vocabulary: list[str],
    confusables: Mapping[str, Sequence[str]],
) -> None:
    """Every clip of one synthetic speaker; sources are named ``f"{engine}-<kind>"``."""
    split = split_of(speaker, holdout=config.holdout)

    def attempt(
        text: str,
        target: str | None,
        label: str,
        kind: str,
        context: bool = False,
        neighbours: bool = False,
    ) -> None:
        try:
            speech = speak(text, target)
            if context:
                clip = context_clip(speech, target, rng=rng)
            else:
                word = speech.samples if target is None else cut_word(speech, target)
                clip = make_clip(word, rng=rng)
            batch.add(clip, label, speaker, f"{engine}-{kind}", text, split)
            if neighbours:
                clip = context_negative(speech, target, rng=rng)
                batch.add(clip, UNKNOWN, speaker, f"{engine}-neighbours", text, split)
        except (ClipError, SynthesisError):
            pass  # a word too long at this rate, or a voice that fails: one clip fewer

    for keyword in KEYWORDS:
        for _ in range(config.isolated_per_keyword):
            attempt(keyword, None, keyword, "isolated")
        for _ in range(config.phrase_per_keyword):
            text = keyword_text(keyword, vocabulary, rng, config.call_sentences)
            context = bool(rng.random() < CONTEXT_SHARE)
            attempt(
                text,
                keyword,
                keyword,
                "context" if context else "phrase",
                context=context,
                neighbours=bool(rng.random() < NEIGHBOURS_SHARE),
            )
    for _ in range(config.unknown_per_voice):
        if rng.random() < RUNNING_SPEECH_SHARE:
            text = neutral_text(vocabulary, rng, confusables, config)
            try:
                speech = speak(text, None)
            except SynthesisError:
                continue
            for window in recordings.speech_windows(
                speech.samples, rng=rng, max_windows=RUNNING_SPEECH_WINDOWS
            ):
                batch.add(window, UNKNOWN, speaker, f"{engine}-running", text, split)
            continue
        if rng.random() < SOUND_ALIKE_SHARE:
            word = confusable_word(confusables, rng)
        else:
            word = vocabulary[int(rng.integers(len(vocabulary)))]
        if " " not in word and "-" not in word and rng.random() < 0.5:
            attempt(phrases.generic_phrase(word, rng), word, UNKNOWN, "unknown")
        else:
            attempt(word, None, UNKNOWN, "unknown")
    for keyword in KEYWORDS:
        pairs = minimal_pairs(keyword, config.pairs_per_keyword, confusables, vocabulary, rng)
        for word, text in pairs:
            attempt(text, word, UNKNOWN, "pairs", context=bool(rng.random() < CONTEXT_SHARE))


def _speech_commands_clips(
    paths: tuple[str, ...], config: BuildConfig, rng: np.random.Generator, batch: ClipBatch
) -> None:
    files = [(Path(path), word, speaker) for path, word, speaker in map(_unpack, paths)]
    clips, words, speakers = recordings.load_speech_commands(files[0][0].parent, files=files)
    for clip, word, speaker in zip(clips, words, speakers, strict=True):
        speaker_id = f"speech_commands:{speaker}"  # as urgence.kws.train names them
        try:
            clip = make_clip(clip, rng=rng)
        except ClipError:
            pass  # too quiet to find the word: keep the recording as it is
        split = split_of(speaker_id, holdout=config.holdout)
        batch.add(clip, UNKNOWN, speaker_id, "speech-commands", word, split)


def _unpack(item: str) -> tuple[str, str, str]:
    path, word, speaker = item.split(_ITEM_SEPARATOR)
    return path, word, speaker


def _asterisk_clips(
    paths: tuple[str, ...], config: BuildConfig, rng: np.random.Generator, batch: ClipBatch
) -> None:
    for path in map(Path, paths):
        # one speaker only: the prompt is the unit of the split, so no prompt is in two splits
        speaker_id = f"asterisk:{path.parent.name}/{path.stem}"
        try:
            y = load_audio(path)
        except AudioError:
            continue
        split = split_of(speaker_id, holdout=config.holdout)
        for window in recordings.speech_windows(y, rng=rng, max_windows=1):
            batch.add(window, UNKNOWN, speaker_id, "asterisk", path.stem, split)


def _silence_clips(
    count: int,
    noise: dict[str, tuple[np.ndarray, np.ndarray]],
    config: BuildConfig,
    rng: np.random.Generator,
    batch: ClipBatch,
) -> None:
    names = sorted(noise)
    for _ in range(count):
        split = SPLITS[int(rng.choice(3, p=[0.8, 0.1, 0.1]))]
        level = 10 ** (rng.uniform(*SILENCE_LEVEL_DB) / 20)
        if names and rng.random() >= DIGITAL_SILENCE_SHARE:
            name = names[int(rng.integers(len(names)))]
            train_half, val_half = noise[name]
            source = train_half if split == "train" else val_half
            start = int(rng.integers(0, len(source) - CLIP_SAMPLES + 1))
            y = source[start : start + CLIP_SAMPLES]
        else:
            # without noise recordings, white noise at a random level; with them, a share of
            # near-digital silence (a muted line)
            name = "digital" if names else "white"
            level = 10 ** (-80 / 20) if names else level
            y = rng.standard_normal(CLIP_SAMPLES).astype(np.float32)
        rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2))) or 1.0
        clip = (y * (level / rms)).astype(np.float32)
        batch.add(np.clip(clip, -1, 1), SILENCE, f"noise:{name}", "noise", name, split)


def _user_clips(
    speaker: str, config: BuildConfig, rng: np.random.Generator, batch: ClipBatch
) -> list[str]:
    """Clips of one user speaker; returns the import problems (not fatal)."""
    result = recordings.import_recordings(config.recordings, speakers=(speaker,))
    speaker_id = f"user:{speaker}"
    split = split_of(speaker_id, holdout=config.holdout)
    problems = list(result.problems)
    for clip in result.clips:
        text = clip.path.name
        if clip.label in KEYWORDS:
            try:
                batch.add(
                    make_clip(clip.samples, rng=rng), clip.label, speaker_id, "user", text, split
                )
            except ClipError as exc:
                problems.append(f"{clip.path}: {exc}; skipped")
            continue
        # `_unknown_` or `_silence_` recordings may be long: every 1 s window is a clip
        min_rms = 0.01 if clip.label == UNKNOWN else 0.0
        for window in recordings.speech_windows(
            clip.samples, rng=rng, max_windows=30, min_rms=min_rms
        ):
            batch.add(window, clip.label, speaker_id, "user", text, split)
    return problems


# -- shards --------------------------------------------------------------------------------

_resources_cache: dict[tuple[Any, ...], Any] = {}


def shared_resources(
    config: BuildConfig,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str], dict[str, tuple[str, ...]]]:
    """Noise halves, unknown vocabulary and keyword -> confusable words (sound-alikes and
    phonetic neighbours), loaded once per process."""
    key = (config.shared, config.vocabulary_size)
    if key not in _resources_cache:
        noise_root = _data(config, "background_noise")
        noise = recordings.load_noise(noise_root) if noise_root and noise_root.is_dir() else {}
        _resources_cache[key] = (noise, unknown_words(config.vocabulary_size), confusable_words())
    return _resources_cache[key]


def generate_clips(spec: ShardSpec, config: BuildConfig) -> tuple[ClipBatch, list[str]]:
    """The clean clips of one shard and the problems met (user recordings only)."""
    rng = shard_rng(config.seed, spec.name)
    noise, vocabulary, confusables = shared_resources(config)
    batch = ClipBatch()
    problems: list[str] = []
    if spec.kind in SYNTHESISED_KINDS:
        speaker, engine, speak = synthesiser(spec, config, rng)
        _synthesised_clips(speaker, engine, speak, config, rng, batch, vocabulary, confusables)
    elif spec.kind == "speech-commands":
        _speech_commands_clips(spec.items, config, rng, batch)
    elif spec.kind == "asterisk":
        _asterisk_clips(spec.items, config, rng, batch)
    elif spec.kind == "silence":
        _silence_clips(int(spec.items[0]), noise, config, rng, batch)
    elif spec.kind == "user":
        problems = _user_clips(spec.items[0], config, rng, batch)
    else:
        raise BuildError(f"unknown shard kind {spec.kind!r}")
    return batch, problems


def featurize(
    clips: dict[str, np.ndarray],
    config: BuildConfig,
    rng: np.random.Generator,
    noise: dict[str, tuple[np.ndarray, np.ndarray]],
) -> dict[str, np.ndarray]:
    """Log-mel features of each clean clip and of its augmented copies: ``augment_copies``
    random chains for training clips (training-half noise, 0-30 dB, VTLP on half), one
    realistic chain for val/test clips (validation-half noise, 5-25 dB, no speed change).

    clips: a shard's arrays (``audio`` (N, 16000) int16, ``label``, ``speaker``, ``source``,
    ``split``). Returns ``x`` (M, 40, 98) float16 and the per-row metadata (M,)."""
    feature_config = FeatureConfig()
    train_noises = [halves[0] for halves in noise.values()]
    eval_noises = [halves[1] for halves in noise.values()]
    rows: list[np.ndarray] = []
    index: list[int] = []
    augmented: list[bool] = []
    for i, clip in enumerate(clips["audio"].astype(np.float32) / np.float32(32768)):
        rows.append(log_mel(clip, config=feature_config))
        index.append(i)
        augmented.append(False)
        train = clips["split"][i] == "train"
        for _ in range(config.augment_copies if train else 1):
            if train:
                y = augment.random_chain(
                    clip,
                    rng=rng,
                    noises=train_noises,
                    p={**TRAIN_CHAIN_P, "muffle": config.muffle},
                    snr_db=config.train_snr_db,
                )
                features = augment.random_feature_chain(
                    log_mel(y, config=feature_config),
                    rng=rng,
                    config=feature_config,
                    p_spec_augment=0.0,  # masks are drawn afresh per epoch by the trainer
                )
            else:
                y = augment.random_chain(
                    clip, rng=rng, noises=eval_noises, p=EVAL_CHAIN_P, snr_db=EVAL_SNR_DB
                )
                features = log_mel(y, config=feature_config)
            rows.append(features)
            index.append(i)
            augmented.append(True)
    shape = (0, feature_config.n_mels, feature_config.n_frames)
    take = np.asarray(index, dtype=np.int64)
    return {
        "x": np.stack(rows).astype(FEATURE_DTYPE) if rows else np.zeros(shape, FEATURE_DTYPE),
        **{key: clips[key][take] for key in ("label", "speaker", "source", "split")},
        "augmented": np.asarray(augmented, dtype=bool),
    }


def shard_paths(out: Path, spec: ShardSpec) -> tuple[Path, Path]:
    return out / "clips" / f"{spec.name}.npz", out / "features" / f"{spec.name}.npz"


_CLIP_KEYS = ("audio", "label", "speaker", "source", "text", "split")
_FEATURE_KEYS = ("x", "label", "speaker", "source", "split", "augmented")


def build_shard(spec: ShardSpec, config: BuildConfig, out: Path) -> tuple[str, bool, list[str]]:
    """Build one shard unless both of its files exist. Returns (name, built, problems)."""
    clip_path, feature_path = shard_paths(out, spec)
    if clip_path.is_file() and feature_path.is_file():
        return spec.name, False, []
    problems: list[str] = []
    if clip_path.is_file():
        clips = read_npz(clip_path, _CLIP_KEYS)
    else:
        batch, problems = generate_clips(spec, config)
        clips = batch.arrays()
        save_npz_atomically(clip_path, clips)
    noise, _, _ = shared_resources(config)
    features = featurize(clips, config, shard_rng(config.seed, f"{spec.name}/features"), noise)
    save_npz_atomically(feature_path, features)
    return spec.name, True, problems


def _build_shard_job(job: tuple[ShardSpec, BuildConfig, Path]) -> tuple[str, bool, list[str]]:
    return build_shard(*job)


# -- the whole build -----------------------------------------------------------------------


@dataclass
class BuildSummary:
    """Clean clip counts per (label, split), feature rows per split, and what happened."""

    clips: dict[str, dict[str, int]]
    features: dict[str, int]
    shards_built: int
    shards_skipped: int
    seconds: float
    problems: list[str] = field(default_factory=list)

    def table(self) -> str:
        """A text table: one row per class, one column per split, clean clip counts."""
        header = f"{'class':<16}" + "".join(f"{s:>8}" for s in SPLITS) + f"{'total':>8}"
        lines = [header, "-" * len(header)]
        for label in LABELS:
            counts = [self.clips.get(label, {}).get(s, 0) for s in SPLITS]
            lines.append(f"{label:<16}" + "".join(f"{c:>8}" for c in counts) + f"{sum(counts):>8}")
        totals = [sum(self.clips.get(label, {}).get(s, 0) for label in LABELS) for s in SPLITS]
        lines.append("-" * len(header))
        lines.append(
            f"{'clean clips':<16}" + "".join(f"{c:>8}" for c in totals) + f"{sum(totals):>8}"
        )
        rows = [self.features.get(s, 0) for s in SPLITS]
        lines.append(f"{'feature rows':<16}" + "".join(f"{c:>8}" for c in rows) + f"{sum(rows):>8}")
        return "\n".join(lines)


def _check_existing(out: Path, config: BuildConfig) -> None:
    manifest = out / "build.json"
    if not manifest.is_file():
        return
    try:
        previous = json.loads(manifest.read_text(encoding="utf-8"))["config"]
    except (OSError, ValueError, KeyError) as exc:
        raise BuildError(f"{manifest}: unreadable ({exc}); delete the folder to rebuild") from exc
    if previous != config.content_key():
        changed = sorted(
            k for k in config.content_key() if previous.get(k) != config.content_key()[k]
        )
        raise BuildError(
            f"{out} holds a corpus built with other parameters ({', '.join(changed)}); "
            "choose another --out or delete it"
        )


def _write_manifest(out: Path, config: BuildConfig, summary: BuildSummary | None) -> None:
    document: dict[str, Any] = {
        "config": config.content_key(),
        "labels": list(LABELS),
        "feature_config": FeatureConfig().to_dict(),
    }
    if summary is not None:
        document["summary"] = asdict(summary)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    temporary = out / ".build.json.tmp"
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(out / "build.json")


def build_corpus(
    out: str | Path, config: BuildConfig, *, stream: TextIO | None = None, verbose: bool = True
) -> BuildSummary:
    """Build (or finish building) the corpus in ``out``; see the module docstring.

    Progress goes to ``stream`` (default stderr) when ``verbose``. Raises BuildError for bad
    options, a folder built with other parameters, or missing required data."""
    started = time.perf_counter()
    out = Path(out)
    if config.workers <= 0:
        raise BuildError(f"--workers must be positive, got {config.workers}")
    _check_existing(out, config)
    shards = plan_shards(config)
    out.mkdir(parents=True, exist_ok=True)
    _write_manifest(out, config, None)

    jobs = [(spec, config, out) for spec in shards]
    bar = ProgressBar(len(jobs), prefix="corpus shards ", stream=stream) if verbose else None
    built = skipped = 0
    problems: list[str] = []

    def record(result: tuple[str, bool, list[str]]) -> None:
        nonlocal built, skipped
        _, was_built, shard_problems = result
        built, skipped = built + was_built, skipped + (not was_built)
        problems.extend(shard_problems)
        if bar is not None:
            bar.update(built + skipped, {})

    pending = [job for job in jobs if not all(p.is_file() for p in shard_paths(out, job[0]))]
    skipped = len(jobs) - len(pending)
    if config.workers > 1 and len(pending) > 1:
        # spawn: each worker starts its own espeak-ng instead of inheriting the parent's
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(config.workers, len(pending))) as pool:
            for result in pool.imap_unordered(_build_shard_job, pending):
                record(result)
    else:
        for job in pending:
            record(_build_shard_job(job))
    if bar is not None:
        bar.close(built + skipped, {})

    features = _assemble_features(out, shards)
    summary = BuildSummary(
        _count_clips(out, shards),
        features,
        built,
        skipped,
        round(time.perf_counter() - started, 1),
        problems,
    )
    _write_manifest(out, config, summary)
    return summary


def _assemble_features(out: Path, shards: list[ShardSpec]) -> dict[str, int]:
    """Concatenate every shard's features into ``features_<split>.npz``; rows per split."""
    parts = [read_npz(shard_paths(out, spec)[1], _FEATURE_KEYS) for spec in shards]
    rows = {}
    for split in SPLITS:
        arrays = {}
        for key in _FEATURE_KEYS:
            arrays[key] = np.concatenate([part[key][part["split"] == split] for part in parts])
        del arrays["split"]
        save_npz_atomically(out / f"features_{split}.npz", arrays)
        rows[split] = len(arrays["label"])
    return rows


def _count_clips(out: Path, shards: list[ShardSpec]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {label: Counter() for label in LABELS}
    for spec in shards:
        data = read_npz(shard_paths(out, spec)[0], ("label", "split"))
        for label, split in zip(data["label"], data["split"], strict=True):
            counts[LABELS[label]][str(split)] += 1
    return {label: dict(counter) for label, counter in counts.items()}

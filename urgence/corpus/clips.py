"""Clip preparation: trim a word's silence, cut it out of a phrase, place it in a 1 s window.

The detector slides 1 s windows with a 100 ms hop, so a word is rarely centred in the
window it is detected in: training clips put the word at a random offset (entirely inside).
"""

from __future__ import annotations

import numpy as np
import soxr

from urgence.corpus.synth import SAMPLE_RATE, Speech
from urgence.corpus.vocabulary import fold

CLIP_SAMPLES = SAMPLE_RATE  # 1 s
# a word up to this much longer than the window is sped up to fit; longer ones are refused
MAX_SPEEDUP = 1.35
_FRAME = SAMPLE_RATE // 100  # 10 ms energy frames


class ClipError(ValueError):
    """A clip cannot be made from this audio (no speech, word too long, word not found)."""


def speech_bounds(
    y: np.ndarray, *, threshold_db: float = -35.0, margin_s: float = 0.02
) -> tuple[int, int]:
    """(start, end) sample indices of ``y`` without its leading and trailing frames quieter
    than ``threshold_db`` below the loudest 10 ms frame, keeping ``margin_s`` on each side;
    (0, 0) if ``y`` is silent. y: (n,) float32 at 16 kHz."""
    y = np.asarray(y, dtype=np.float32)
    n_frames = len(y) // _FRAME
    if n_frames == 0:
        return (0, len(y)) if np.any(y) else (0, 0)
    energy = np.sqrt(np.mean(y[: n_frames * _FRAME].reshape(n_frames, _FRAME) ** 2, axis=1))
    peak = energy.max()
    if peak <= 1e-5:
        return 0, 0
    loud = np.flatnonzero(energy >= peak * 10 ** (threshold_db / 20))
    margin = round(margin_s * SAMPLE_RATE)
    start = max(loud[0] * _FRAME - margin, 0)
    end = min((loud[-1] + 1) * _FRAME + margin, len(y))
    return int(start), int(end)


def trim_silence(
    y: np.ndarray, *, threshold_db: float = -35.0, margin_s: float = 0.02
) -> np.ndarray:
    """``y`` without its silent ends (see ``speech_bounds``).

    y: (n,) float32 at 16 kHz. Returns a (m,) float32 view, m <= n; empty if ``y`` is silent.
    """
    y = np.asarray(y, dtype=np.float32)
    start, end = speech_bounds(y, threshold_db=threshold_db, margin_s=margin_s)
    return y[start:end]


def squeeze_to_fit(y: np.ndarray, max_samples: int = CLIP_SAMPLES) -> np.ndarray:
    """``y`` unchanged if it fits in ``max_samples``, else sped up (resampled, so pitch rises
    slightly) to fit when that needs at most ``MAX_SPEEDUP``. Raises ClipError otherwise.

    y: (n,) float32. Returns (m,) float32 with m <= max_samples."""
    if len(y) <= max_samples:
        return y
    ratio = len(y) / max_samples
    if ratio > MAX_SPEEDUP:
        raise ClipError(f"word lasts {len(y) / SAMPLE_RATE:.2f} s, too long for a 1 s clip")
    # resampling from a higher nominal rate shortens the signal by `ratio`
    fitted = soxr.resample(y, SAMPLE_RATE * ratio, SAMPLE_RATE).astype(np.float32)
    return fitted[:max_samples]


def place_in_window(
    y: np.ndarray, *, rng: np.random.Generator, length: int = CLIP_SAMPLES
) -> np.ndarray:
    """Put the word ``y`` at a uniformly random offset inside a zero window of ``length``.

    y: (n,) float32 with n <= length (see ``squeeze_to_fit``). Returns (length,) float32."""
    if len(y) > length:
        raise ClipError(f"{len(y)} samples do not fit in a window of {length}")
    window = np.zeros(length, dtype=np.float32)
    offset = int(rng.integers(0, length - len(y) + 1))
    window[offset : offset + len(y)] = y
    return window


def word_span(speech: Speech, target: str) -> tuple[float, float, bool, bool]:
    """(start_s, end_s, first, last) of the words of ``target`` (one or more words) in
    ``speech``, compared without case or accents; ``first``/``last`` tell whether the span
    begins/ends the utterance. Raises ClipError if the words are not spoken in order."""
    tokens = [fold(t) for t in target.split()]
    spoken = [fold(w) for w, _, _ in speech.words]
    for i in range(len(spoken) - len(tokens) + 1):
        if spoken[i : i + len(tokens)] == tokens:
            j = i + len(tokens) - 1
            return speech.words[i][1], speech.words[j][2], i == 0, j == len(spoken) - 1
    raise ClipError(f"{target!r} not found among the spoken words {spoken}")


def cut_word(speech: Speech, target: str, *, pad_s: float = 0.02) -> np.ndarray:
    """The samples of ``target`` cut out of a phrase and trimmed of silence.

    The span runs from the word's start event to the next word's start event (pauses are
    trimmed afterwards); ``pad_s`` is added only at the ends of the utterance, since beyond
    the span's inner edges lies a neighbouring word, which would defeat the trimming.
    Returns (m,) float32 at 16 kHz. Raises ClipError if the word is missing or silent."""
    start_s, end_s, first, last = word_span(speech, target)
    start = max(round((start_s - (pad_s if first else 0.0)) * SAMPLE_RATE), 0)
    end = min(round((end_s + (pad_s if last else 0.0)) * SAMPLE_RATE), len(speech.samples))
    word = trim_silence(speech.samples[start:end])
    if len(word) < _FRAME * 5:
        raise ClipError(f"{target!r}: less than 50 ms of speech after trimming")
    return word


def make_clip(word: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    """A training clip from a word's samples: trim, fit, place at a random offset.

    word: (n,) float32 at 16 kHz. Returns (CLIP_SAMPLES,) float32. Raises ClipError."""
    trimmed = trim_silence(word)
    if len(trimmed) < _FRAME * 5:
        raise ClipError("less than 50 ms of speech")
    return place_in_window(squeeze_to_fit(trimmed), rng=rng)


def context_clip(speech: Speech, target: str, *, rng: np.random.Generator) -> np.ndarray:
    """The 1 s of a phrase around ``target``, neighbouring words included, with the word at
    a random offset: what the streaming detector's windows see in a call, where a keyword
    is never surrounded by silence. A word longer than the window gives the window centred
    on it. Returns (CLIP_SAMPLES,) float32 (zero-padded at the ends of the phrase)."""
    start_s, end_s, _, _ = word_span(speech, target)
    start, end = round(start_s * SAMPLE_RATE), round(end_s * SAMPLE_RATE)
    # espeak's span ends at the next word's start: drop the pause it may hold
    first, last = speech_bounds(speech.samples[start:end])
    if last - first < _FRAME * 5:
        raise ClipError(f"{target!r}: less than 50 ms of speech")
    word_start, word_length = start + first, last - first
    slack = CLIP_SAMPLES - word_length
    lead = int(rng.integers(0, slack + 1)) if slack > 0 else slack // 2
    padded = np.concatenate(
        [np.zeros(CLIP_SAMPLES, np.float32), speech.samples, np.zeros(CLIP_SAMPLES, np.float32)]
    )
    begin = word_start - lead + CLIP_SAMPLES
    return np.array(padded[begin : begin + CLIP_SAMPLES], dtype=np.float32)


def context_negative(
    speech: Speech, target: str, *, rng: np.random.Generator, margin_s: float = 0.05
) -> np.ndarray:
    """1 s of the same phrase that holds none of ``target``: the words before or after it.

    The hardest `_unknown_` material there is: the voice, the prosody and the neighbouring
    words of a keyword clip, without the keyword. Trained on keyword phrases alone, the model
    learnt that a phrase of this kind *is* a keyword and fired on its neighbours in calls.
    Returns (CLIP_SAMPLES,) float32 (zero-padded beyond the phrase). Raises ClipError when
    the phrase has no 200 ms of speech outside the word (with ``margin_s`` around it)."""
    start_s, end_s, _, _ = word_span(speech, target)
    start, end = round(start_s * SAMPLE_RATE), round(end_s * SAMPLE_RATE)
    first, last = speech_bounds(speech.samples[start:end])
    margin = round(margin_s * SAMPLE_RATE)
    word_start, word_end = start + first - margin, start + last + margin
    n = len(speech.samples)
    # window starts (in the unpadded phrase) whose window misses the word entirely
    ranges = [(-CLIP_SAMPLES + 1, word_start - CLIP_SAMPLES), (word_end, n - 1)]
    padded = np.concatenate(
        [np.zeros(CLIP_SAMPLES, np.float32), speech.samples, np.zeros(CLIP_SAMPLES, np.float32)]
    )
    for low, high in rng.permutation(np.array(ranges, dtype=np.int64)):
        if high < low:
            continue
        begin = int(rng.integers(low, high + 1))
        window = np.array(padded[begin + CLIP_SAMPLES : begin + 2 * CLIP_SAMPLES], np.float32)
        begin_speech, end_speech = speech_bounds(window)
        if end_speech - begin_speech >= SAMPLE_RATE // 5:
            return window
    raise ClipError(f"{target!r}: no 200 ms of speech outside the word")


def to_int16(clips: np.ndarray) -> np.ndarray:
    """(N, n) float32 in [-1, 1] -> (N, n) int16 (clipped), for compact storage."""
    return np.round(np.clip(clips, -1.0, 32767 / 32768) * 32768).astype(np.int16)


def from_int16(clips: np.ndarray) -> np.ndarray:
    """(N, n) int16 -> (N, n) float32 in [-1, 1)."""
    return clips.astype(np.float32) / np.float32(32768)

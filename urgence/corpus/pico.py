"""French speech from SVOX Pico, a second synthesiser, as pseudo-speakers.

espeak-ng alone does not teach a model other voices: more espeak settings added nothing
(FINDINGS.md), the variety has to come from another way of making speech. Pico is an
HMM-based synthesiser (statistical parametric, not formant rules like espeak-ng, nor
diphones like the synthesiser of ``validation_other_voices``) with one French voice. It is
Apache-2.0 (Debian's ``libttspico-utils``, non-free only because its voice data comes without
the sources that built it); ``scripts/setup-system.sh`` installs it.

One voice is made many by a fixed formant shift per pseudo-speaker: the audio is resampled as
if the vocal tract were shorter or longer (a factor of 0.80 gives roughly a male tract), while
Pico's own pitch and speed controls undo the shift's side effects and add prosodic variety.

Pico gives no word timings. A phrase around a target word is therefore spoken in three parts
(before, the word, after) joined by short pauses, so the word's span is known exactly; the
parts lose their coarticulation across the joins, a price worth the exact timing.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import soundfile as sf
import soxr

from urgence.corpus.synth import SAMPLE_RATE, Speech, SynthesisError
from urgence.corpus.vocabulary import fold

PICO_COMMAND = "pico2wave"
PICO_LANGUAGE = "fr-FR"
# formant factors of the pseudo-speakers (1 is Pico's own voice, an adult woman)
FORMANT_RANGE = (0.80, 1.12)
# Pico's controls, in percent of its defaults, after undoing the formant shift's side effects
PITCH_RANGE = (70, 140)
SPEED_RANGE = (80, 130)
# per-utterance variation around a pseudo-speaker's pitch and speed
JITTER = 0.08
# pause between the parts of a phrase spoken in pieces
JOIN_PAUSE_S = (0.03, 0.15)
_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class PicoVoice:
    """A pseudo-speaker: Pico's voice with a fixed formant factor, pitch and speed."""

    name: str  # "pico:NN"; also its speaker id
    formant: float
    pitch: float  # percent of Pico's default pitch, as heard
    speed: float  # percent of Pico's default speed, as heard


def pico_available() -> bool:
    return shutil.which(PICO_COMMAND) is not None


def pico_voices(count: int) -> list[PicoVoice]:
    """``count`` pseudo-speakers spread evenly over the formant range, with pitch and speed
    from a fixed low-discrepancy sequence: the same count always gives the same voices.
    Raises ValueError if count < 0."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    golden = (np.sqrt(5) - 1) / 2
    voices = []
    for i in range(count):
        position = (i + 0.5) / count
        formant = FORMANT_RANGE[0] + position * (FORMANT_RANGE[1] - FORMANT_RANGE[0])
        # a low formant (a longer tract) goes with a lower pitch, as in people, plus spread
        pitch_position = np.clip(0.6 * position + 0.4 * ((i * golden) % 1.0), 0.0, 1.0)
        speed_position = (i * golden * golden + 0.3) % 1.0
        voices.append(
            PicoVoice(
                name=f"pico:{i:02d}",
                formant=round(float(formant), 4),
                pitch=round(float(np.interp(pitch_position, (0, 1), PITCH_RANGE)), 1),
                speed=round(float(np.interp(speed_position, (0, 1), SPEED_RANGE)), 1),
            )
        )
    return voices


def _pico_raw(text: str, *, pitch: float, speed: float) -> np.ndarray:
    """Pico's 16 kHz audio of ``text`` at ``pitch``/``speed`` percent of its defaults."""
    if not pico_available():
        raise SynthesisError(
            f"{PICO_COMMAND} not found: install Debian's libttspico-utils "
            "(scripts/setup-system.sh does), or build without Pico voices (--pico-voices 0)"
        )
    markup = (
        f"<speed level='{round(speed)}'><pitch level='{round(pitch)}'>"
        f"{escape(text)}</pitch></speed>"
    )
    with tempfile.TemporaryDirectory(prefix="urgence-pico-") as folder:
        path = Path(folder) / "speech.wav"
        try:
            subprocess.run(
                [PICO_COMMAND, "-l", PICO_LANGUAGE, "-w", str(path), markup],
                check=True,
                capture_output=True,
                timeout=_TIMEOUT_S,
            )
            samples, rate = sf.read(path, dtype="float32")
        except (subprocess.SubprocessError, OSError, sf.LibsndfileError) as exc:
            raise SynthesisError(f"{PICO_COMMAND} failed on {text!r}: {exc}") from exc
    if rate != SAMPLE_RATE:
        samples = soxr.resample(samples, rate, SAMPLE_RATE)
    return np.asarray(samples, dtype=np.float32)


def synthesize_pico(
    text: str, *, voice: PicoVoice, rng: np.random.Generator | None = None
) -> np.ndarray:
    """``text`` spoken by ``voice``: (n,) float32 at 16 kHz. With ``rng``, pitch and speed
    vary by up to ``JITTER`` around the voice's. Raises ValueError for empty text,
    SynthesisError if Pico is missing or fails."""
    if not text or not text.strip():
        raise ValueError("text to synthesise is empty")
    jitter = (lambda: 1.0) if rng is None else (lambda: 1.0 + rng.uniform(-JITTER, JITTER))
    # resampling by the formant factor also scales pitch and speed: ask Pico for the inverse
    pitch = voice.pitch * jitter() / voice.formant
    samples = _pico_raw(text, pitch=pitch, speed=voice.speed * jitter() / voice.formant)
    if voice.formant != 1.0 and len(samples):
        # heard at SAMPLE_RATE, audio made at SAMPLE_RATE * formant has its spectrum scaled
        samples = soxr.resample(samples, SAMPLE_RATE * voice.formant, SAMPLE_RATE)
    return np.clip(samples, -1.0, 1.0).astype(np.float32)


def speak_pico(
    text: str, target: str | None, *, voice: PicoVoice, rng: np.random.Generator
) -> Speech:
    """``text`` as a ``Speech`` whose word list holds ``target`` with its exact span
    (``speak_in_pieces``). Raises SynthesisError if Pico fails, ValueError if ``target`` is
    not a word sequence of ``text``."""
    return speak_in_pieces(
        text, target, lambda piece: synthesize_pico(piece, voice=voice, rng=rng), rng
    )


def speak_in_pieces(
    text: str,
    target: str | None,
    synthesize: Callable[[str], np.ndarray],
    rng: np.random.Generator,
) -> Speech:
    """``text`` spoken by ``synthesize`` (text -> 16 kHz samples), a synthesiser that gives no
    word timings, as a ``Speech`` whose word list holds ``target`` with its exact span.

    Without a target (or when it is the whole text) the text is spoken in one piece and the
    word list has one entry per piece. Otherwise the text is spoken in up to three pieces (the
    words before ``target``, ``target``, the words after), joined by pauses of
    ``JOIN_PAUSE_S``. Raises ValueError if ``target`` is not a word sequence of ``text``."""
    if target is None or fold(text.strip(" .,!?;:")) == fold(target):
        samples = synthesize(text)
        return Speech(samples=samples, words=[(text, 0.0, len(samples) / SAMPLE_RATE)])
    before, word, after = _split_around(text, target)
    pieces = ((before, False), (word, True), (after, False))
    parts: list[np.ndarray] = []
    words: list[tuple[str, float, float]] = []
    cursor = 0
    for piece, is_target in pieces:
        if not piece.strip(" .,!?;:'"):
            continue
        if parts:
            pause = np.zeros(round(rng.uniform(*JOIN_PAUSE_S) * SAMPLE_RATE), np.float32)
            parts.append(pause)
            cursor += len(pause)
        samples = _trim(synthesize(piece))
        parts.append(samples)
        label = target if is_target else piece.strip()
        words.append((label, cursor / SAMPLE_RATE, (cursor + len(samples)) / SAMPLE_RATE))
        cursor += len(samples)
    return Speech(samples=np.concatenate(parts), words=words)


def _split_around(text: str, target: str) -> tuple[str, str, str]:
    """(before, target as written, after) for the first whole-word occurrence of ``target``
    in ``text``, compared without case or accents. Raises ValueError if absent."""
    tokens = text.split()
    wanted = [fold(t) for t in target.split()]
    stripped = [fold(t.strip('.,!?;:«»"')) for t in tokens]
    for i in range(len(tokens) - len(wanted) + 1):
        if stripped[i : i + len(wanted)] == wanted:
            j = i + len(wanted)
            return " ".join(tokens[:i]), " ".join(tokens[i:j]), " ".join(tokens[j:])
    raise ValueError(f"{target!r} is not a word sequence of {text!r}")


def _trim(samples: np.ndarray, threshold: float = 1e-3) -> np.ndarray:
    """Pico pads each utterance with silence: keep from the first to the last audible
    sample (the pause between pieces is then ours)."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    return samples if len(loud) == 0 else samples[loud[0] : loud[-1] + 1]

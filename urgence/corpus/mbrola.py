"""French speech from MBROLA voices: diphones cut from recordings of real people.

espeak-ng's voices are formant rules, Pico's one voice an HMM; the keywords go unheard most
often in voices unlike them (the model card's Known limits). MBROLA joins diphones recorded
from real speakers, so its nine French voices (fr1-fr7 from France and Belgium, ca1-ca2 from
Quebec) sound like nine different people; two of them speak validation_other_voices and are
kept out of every corpus (``VALIDATION_VOICES``). espeak-ng writes their phonemes, durations and
pitch; the ``mbrola`` program speaks them. Debian ships both: ``espeak-ng`` (main), ``mbrola``
(contrib) and the voices ``mbrola-fr1`` ... (non-free: free to use and to redistribute
without charge, not to sell; see the model card); ``scripts/setup-system.sh`` installs them.

The espeakng-loader wheel the corpus uses elsewhere is built without MBROLA support, so the
voices are spoken by Debian's ``espeak-ng`` command, one process per utterance (~30 ms).
It gives no word timings: a phrase around a target word is spoken in pieces
(``pico.speak_in_pieces``). Each voice is one speaker (``mbrola:fr1``), split into train,
validation and test like every other speaker, so the voices of the test split are never
heard in training; the speaking rate and pitch change with every utterance.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from urgence.corpus.pico import speak_in_pieces
from urgence.corpus.synth import SAMPLE_RATE, Speech, SynthesisError

ESPEAK_COMMAND = "espeak-ng"
MBROLA_COMMAND = "mbrola"
# Debian's packages mbrola-fr1 ... mbrola-ca2 put each voice's database here
VOICES_FOLDER = Path("/usr/share/mbrola")
MBROLA_VOICES: tuple[str, ...] = ("fr1", "fr2", "fr3", "fr4", "fr5", "fr6", "fr7", "ca1", "ca2")
# ../shared/data/validation_other_voices is spoken by these two (its v1 and v2: the same
# words at the same rate come out sample for sample the same). A corpus never holds them:
# trained on, they would make that measure of unheard voices a measure of heard ones.
VALIDATION_VOICES: tuple[str, ...] = ("fr1", "fr4")
# espeak-ng's words per minute and pitch (0-99), drawn for every utterance
RATE_RANGE = (130, 210)
PITCH_RANGE = (30, 70)
_TIMEOUT_S = 30.0


def mbrola_voices() -> list[str]:
    """The MBROLA voices installed on this machine, in ``MBROLA_VOICES`` order (none if
    espeak-ng or mbrola is missing)."""
    return list(_installed(ESPEAK_COMMAND, MBROLA_COMMAND, VOICES_FOLDER))


@functools.lru_cache(maxsize=4)
def _installed(espeak: str, mbrola: str, folder: Path) -> tuple[str, ...]:
    # looked up once per process, not once per utterance (every piece of every clip asks)
    if shutil.which(espeak) is None or shutil.which(mbrola) is None:
        return ()
    return tuple(v for v in MBROLA_VOICES if (folder / v / v).is_file())


def corpus_voices() -> list[str]:
    """The installed voices a corpus may hold: all but ``VALIDATION_VOICES``."""
    return [v for v in mbrola_voices() if v not in VALIDATION_VOICES]


def speaker_id(voice: str) -> str:
    return f"mbrola:{voice}"


def synthesize_mbrola(text: str, *, voice: str, rate: int = 175, pitch: int = 50) -> np.ndarray:
    """``text`` spoken by MBROLA voice ``voice`` ("fr1"): (n,) float32 at 16 kHz.

    Raises ValueError for empty text or an unknown voice name, SynthesisError if the voice
    is not installed or the synthesis fails."""
    if not text or not text.strip():
        raise ValueError("text to synthesise is empty")
    if voice not in MBROLA_VOICES:
        raise ValueError(f"unknown MBROLA voice {voice!r}; known: {', '.join(MBROLA_VOICES)}")
    if voice not in mbrola_voices():
        raise SynthesisError(
            f"MBROLA voice {voice} is not installed: install Debian's espeak-ng, mbrola and "
            f"mbrola-{voice} (scripts/setup-system.sh does), or build without MBROLA voices"
        )
    command = [ESPEAK_COMMAND, "-v", f"mb-{voice}", "-s", str(rate), "-p", str(pitch)]
    try:
        # the text goes through stdin: a text starting with "-" is not an option there
        done = subprocess.run(
            [*command, "--stdin", "--stdout"],
            input=text.encode("utf-8"),
            check=True,
            capture_output=True,
            timeout=_TIMEOUT_S,
        )
        samples, rate_hz = sf.read(io.BytesIO(done.stdout), dtype="float32")
    except (subprocess.SubprocessError, OSError, sf.LibsndfileError) as exc:
        raise SynthesisError(f"MBROLA voice {voice} failed on {text!r}: {exc}") from exc
    if samples.ndim != 1 or not len(samples):
        raise SynthesisError(f"MBROLA voice {voice} gave no audio for {text!r}")
    if rate_hz != SAMPLE_RATE:
        samples = soxr.resample(samples, rate_hz, SAMPLE_RATE)
    return np.clip(samples, -1.0, 1.0).astype(np.float32)


def speak_mbrola(text: str, target: str | None, *, voice: str, rng: np.random.Generator) -> Speech:
    """``text`` as a ``Speech`` whose word list holds ``target`` with its exact span, at a
    rate and pitch drawn from ``rng`` for the whole text. Raises SynthesisError if the
    synthesis fails, ValueError if ``target`` is not a word sequence of ``text``."""
    rate = int(rng.integers(RATE_RANGE[0], RATE_RANGE[1] + 1))
    pitch = int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1))
    return speak_in_pieces(
        text,
        target,
        lambda piece: synthesize_mbrola(piece, voice=voice, rate=rate, pitch=pitch),
        rng,
    )

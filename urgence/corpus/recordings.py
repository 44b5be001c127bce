"""Real audio: user recordings, Speech Commands (English), background noise, asterisk prompts.

User recordings are how a call centre adds real voices: a folder
``<root>/<speaker>/<keyword>/*.wav`` (keyword folder names with or without accents, any
case; ``_unknown_`` and ``_silence_`` too). A bad folder or file is reported, never fatal.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from urgence.audio.io import AudioError, load_audio
from urgence.corpus.clips import CLIP_SAMPLES, SAMPLE_RATE
from urgence.corpus.vocabulary import SILENCE, keyword_from_name

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
# a user clip longer than this is a mistake (a whole call?), not a keyword
MAX_USER_CLIP_S = 10.0
# The real French prompts shipped by Debian's asterisk-core-sounds-fr-wav (one speaker).
ASTERISK_FR = Path("/usr/share/asterisk/sounds/fr_CA_f_June")
# "<speaker>_nohash_<n>.wav", or "<word>_<speaker>_nohash_<n>.wav" in the _unknown_ folder
_SPEECH_COMMANDS_NAME = re.compile(
    r"^(?:(?P<word>[a-z]+)_)?(?P<speaker>[0-9a-f]{8})_nohash_\d+\.wav$"
)


class CorpusSourceError(ValueError):
    """A data folder is missing or holds nothing usable."""


@dataclass
class UserClip:
    """One user recording: ``samples`` (n,) float32 at 16 kHz, whole file."""

    samples: np.ndarray
    label: str
    speaker: str
    path: Path


@dataclass
class ImportResult:
    clips: list[UserClip] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one readable line per skipped item


def import_recordings(root: str | Path, *, speakers: Collection[str] | None = None) -> ImportResult:
    """Read ``<root>/<speaker>/<keyword>/*`` audio files (of ``speakers`` only, if given).

    Returns the readable clips and a list of problems (unknown keyword folder, unreadable,
    empty or too long file, stray file). Raises CorpusSourceError only if ``root`` is not a
    folder."""
    root = Path(root)
    if not root.is_dir():
        raise CorpusSourceError(f"{root}: recordings folder not found")
    result = ImportResult()
    for speaker_dir in sorted(p for p in root.iterdir() if not p.name.startswith(".")):
        if speakers is not None and speaker_dir.name not in speakers:
            continue
        if not speaker_dir.is_dir():
            result.problems.append(f"{speaker_dir}: not a speaker folder, skipped")
            continue
        for word_dir in sorted(p for p in speaker_dir.iterdir() if not p.name.startswith(".")):
            if not word_dir.is_dir():
                result.problems.append(f"{word_dir}: not a keyword folder, skipped")
                continue
            try:
                label = keyword_from_name(word_dir.name)
            except KeyError as exc:
                result.problems.append(f"{word_dir}: {exc.args[0]}; folder skipped")
                continue
            for path in sorted(word_dir.iterdir()):
                if path.name.startswith("."):
                    continue
                if path.suffix.lower() not in AUDIO_SUFFIXES:
                    result.problems.append(f"{path}: not an audio file, skipped")
                    continue
                try:
                    samples = load_audio(path, max_seconds=MAX_USER_CLIP_S)
                except AudioError as exc:
                    result.problems.append(f"{exc}; skipped")
                    continue
                result.clips.append(UserClip(samples, label, speaker_dir.name, path))
    return result


def _read_clip(path: Path) -> np.ndarray:
    """A 1 s clip, zero-padded or truncated to CLIP_SAMPLES: (CLIP_SAMPLES,) float32."""
    y = load_audio(path)
    clip = np.zeros(CLIP_SAMPLES, dtype=np.float32)
    clip[: min(len(y), CLIP_SAMPLES)] = y[:CLIP_SAMPLES]
    return clip


def speech_commands_files(root: str | Path) -> list[tuple[Path, str, str]]:
    """(path, word, speaker) for every clip of a Speech Commands folder, sorted. The word is
    the folder name, or the file name's prefix in ``_unknown_`` ("backward_<speaker>_...");
    the ``_silence_`` folder (noise without a speaker) is left out. Raises CorpusSourceError."""
    root = Path(root)
    if not root.is_dir():
        raise CorpusSourceError(f"{root}: Speech Commands folder not found")
    files = []
    for word_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name != SILENCE):
        for path in sorted(word_dir.glob("*.wav")):
            match = _SPEECH_COMMANDS_NAME.match(path.name)
            if match:
                files.append((path, match["word"] or word_dir.name, match["speaker"]))
    if not files:
        raise CorpusSourceError(f"{root}: no <speaker>_nohash_<n>.wav clips found")
    return files


def load_speech_commands(
    root: str | Path, *, files: list[tuple[Path, str, str]] | None = None
) -> tuple[np.ndarray, list[str], list[str]]:
    """Speech Commands clips as a labelled set (for pretraining, or as real `_unknown_` speech).

    Returns clips (N, 16000) float32, labels (N) English words, speakers (N) ids.
    ``files``: a subset of ``speech_commands_files(root)``. Unreadable files are
    skipped. Raises CorpusSourceError if nothing is readable."""
    files = speech_commands_files(root) if files is None else files
    clips, labels, speakers = [], [], []
    for path, word, speaker in files:
        try:
            clips.append(_read_clip(path))
        except AudioError:
            continue
        labels.append(word)
        speakers.append(speaker)
    if not clips:
        raise CorpusSourceError(f"{root}: no readable Speech Commands clip")
    return np.stack(clips), labels, speakers


def load_noise(root: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Background noise files split in halves: name -> (train half, validation half), each
    (n,) float32 at 16 kHz. The validation half is never used for training, so validation
    noise is unseen. Raises CorpusSourceError if the folder has no readable audio."""
    root = Path(root)
    if not root.is_dir():
        raise CorpusSourceError(f"{root}: background noise folder not found")
    noise = {}
    for path in sorted(root.glob("*.wav")):
        try:
            y = load_audio(path)
        except AudioError:
            continue
        if len(y) >= 2 * CLIP_SAMPLES:
            half = len(y) // 2
            noise[path.stem] = (y[:half], y[half:])
    if not noise:
        raise CorpusSourceError(f"{root}: no readable noise file of at least 2 s")
    return noise


def asterisk_files(root: str | Path = ASTERISK_FR) -> list[Path]:
    """The prompt files of the asterisk French sounds, sorted (the ``silence`` folder is
    left out). The prompt texts are not shipped with the package; the prompts are voicemail
    and conference menus, which do not contain our keywords ("vol" in file names is
    "volume", itself a sound-alike). Empty if the package is absent."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*.wav") if p.parent.name != "silence")


def speech_windows(
    y: np.ndarray, *, rng: np.random.Generator, max_windows: int, min_rms: float = 0.01
) -> list[np.ndarray]:
    """Up to ``max_windows`` non-overlapping 1 s windows of ``y`` with speech in them,
    at random offsets; a recording shorter than 1 s is zero-padded at a random offset.

    y: (n,) float32 at 16 kHz. Returns a list of (CLIP_SAMPLES,) float32."""
    if len(y) < CLIP_SAMPLES:
        padded = np.zeros(CLIP_SAMPLES, dtype=np.float32)
        offset = int(rng.integers(0, CLIP_SAMPLES - len(y) + 1))
        padded[offset : offset + len(y)] = y
        y = padded
    slack = len(y) % CLIP_SAMPLES
    start = int(rng.integers(0, slack + 1))
    usable = y[start : start + (len(y) - start) // CLIP_SAMPLES * CLIP_SAMPLES]
    windows = [w for w in usable.reshape(-1, CLIP_SAMPLES) if np.sqrt(np.mean(w**2)) >= min_rms]
    rng.shuffle(windows)
    return [np.array(w, dtype=np.float32) for w in windows[:max_windows]]


__all__ = [
    "ASTERISK_FR",
    "SAMPLE_RATE",
    "CorpusSourceError",
    "ImportResult",
    "UserClip",
    "asterisk_files",
    "import_recordings",
    "load_noise",
    "load_speech_commands",
    "speech_commands_files",
    "speech_windows",
]

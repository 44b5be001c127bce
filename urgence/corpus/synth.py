"""French text-to-speech with espeak-ng (the ``espeakng-loader`` wheel), driven in-process.

The C library is initialised once per process (``AUDIO_OUTPUT_SYNCHRONOUS``) and every call
holds a lock, because espeak-ng keeps global state: one synthesis at a time per process.
Word timings come from espeak's word events (``audio_position``), so a keyword can be cut
out of a carrier phrase and the ground truth of a generated call is known.

Synthesis is not bit-for-bit repeatable (espeak adds random noise to some consonants).
"""

from __future__ import annotations

import ctypes
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr

SAMPLE_RATE = 16000
_WORD = re.compile(r"[\w'’-]+")

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_PHONEMES_IPA = 0x02  # espeak_TextToPhonemes: IPA in UTF-8
_INITIALIZE_DONT_EXIT = 0x8000
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_END = 5
_EVENT_MSG_TERMINATED = 6
_PARAM_RATE = 1
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_PARAM_WORDGAP = 7
_EE_OK = 0


class SynthesisError(RuntimeError):
    """espeak-ng could not be loaded, did not accept a voice or parameter, or failed to speak."""


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` from speak_lib.h."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms from the start of the output
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass
class Speech:
    """One synthesised utterance.

    ``samples``: (n,) float32 mono at 16 kHz in [-1, 1].
    ``words``: (word, start_s, end_s) per spoken word, in order; a word ends where the next
    one starts (or where the speech ends), so the span may include a short pause.
    """

    samples: np.ndarray
    words: list[tuple[str, float, float]] = field(default_factory=list)
    sample_rate: int = SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


class _Engine:
    """The process-wide espeak-ng instance."""

    def __init__(self) -> None:
        import espeakng_loader

        from urgence.corpus import voice_variants

        # the wheel's data plus the random variants (voice_variants), all voices in one place
        self.data_path = voice_variants.data_folder(espeakng_loader.get_data_path())
        try:
            self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        except OSError as exc:
            raise SynthesisError(f"cannot load libespeak-ng: {exc}") from exc
        lib = self.lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_int,
            ctypes.c_int,
        ]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self.data_path).encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise SynthesisError(f"espeak_Initialize failed ({rate}) with data at {self.data_path}")
        self.native_rate = rate
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, int]] = []
        self._n_samples = 0
        # keep a reference: the C library holds the pointer for the life of the process
        self._callback = _CALLBACK(self._on_synth)
        lib.espeak_SetSynthCallback(self._callback)

    def _on_synth(self, wav, n_samples, events) -> int:
        if n_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            self._events.append(
                (event.type, event.text_position, event.length, event.audio_position)
            )
            if event.type == _EVENT_MSG_TERMINATED:
                break
            i += 1
        return 0

    def speak(
        self, text: str, *, voice: str, rate: int, pitch: int, pitch_range: int, word_gap: int
    ) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
        """Native-rate int16 samples and the raw (type, text_pos, length, audio_ms) events."""
        lib = self.lib
        if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise SynthesisError(f"unknown espeak-ng voice {voice!r}")
        for parameter, value in (
            (_PARAM_RATE, rate),
            (_PARAM_PITCH, pitch),
            (_PARAM_RANGE, pitch_range),
            (_PARAM_WORDGAP, word_gap),
        ):
            if lib.espeak_SetParameter(parameter, int(value), 0) != _EE_OK:
                raise SynthesisError(f"espeak-ng rejected parameter {parameter}={value}")
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        status = lib.espeak_Synth(
            data, len(data), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None
        )
        lib.espeak_Synchronize()
        if status != _EE_OK:
            raise SynthesisError(f"espeak_Synth failed ({status}) on {text!r}")
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return samples, self._events


_engine: _Engine | None = None
_lock = threading.Lock()


def _get_engine() -> _Engine:
    global _engine
    if _engine is None:
        _engine = _Engine()
    return _engine


def phonemes(text: str, *, voice: str = "fr") -> str:
    """espeak-ng's IPA transcription of ``text`` as ``voice`` would say it (stress marks
    included, clauses joined by spaces), e.g. ``phonemes("gaz") == "ɡˈaz"``."""
    with _lock:
        engine = _get_engine()
        lib = engine.lib
        if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise SynthesisError(f"unknown espeak-ng voice {voice!r}")
        # the call advances the pointer clause by clause and sets it to NULL at the end
        remaining = ctypes.c_char_p(text.encode("utf-8"))
        clauses = []
        while remaining.value:
            clause = lib.espeak_TextToPhonemes(
                ctypes.byref(remaining), _ESPEAK_CHARS_UTF8, _PHONEMES_IPA
            )
            if clause:
                clauses.append(clause.decode("utf-8"))
        return " ".join(clauses)


def french_voices() -> list[str]:
    """Every French voice espeak-ng ships: ``"fr"`` then ``"fr+VARIANT"`` for each variant
    in ``<data>/voices/!v`` (sorted). Variants whose names contain spaces are left out, and
    so are the random variants of ``voice_variants`` (``voice_variants.names``)."""
    import espeakng_loader

    variants_dir = Path(espeakng_loader.get_data_path()) / "voices" / "!v"
    variants = sorted(p.name for p in variants_dir.iterdir() if p.is_file() and " " not in p.name)
    return ["fr", *(f"fr+{v}" for v in variants)]


def _check_ranges(rate: int, pitch: int, pitch_range: int, word_gap: int) -> None:
    if not 80 <= rate <= 450:
        raise ValueError(f"rate must be in [80, 450] words per minute, got {rate}")
    if not 0 <= pitch <= 100:
        raise ValueError(f"pitch must be in [0, 100], got {pitch}")
    if not 0 <= pitch_range <= 100:
        raise ValueError(f"pitch_range must be in [0, 100], got {pitch_range}")
    if not 0 <= word_gap <= 100:
        raise ValueError(f"word_gap must be in [0, 100] (units of 10 ms), got {word_gap}")


def synthesize(
    text: str,
    *,
    voice: str = "fr",
    rate: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    word_gap: int = 0,
) -> Speech:
    """Speak ``text`` (UTF-8 French) with espeak-ng.

    ``voice``: ``"fr"`` or ``"fr+VARIANT"`` (see ``french_voices``); ``rate`` in words per
    minute (80-450); ``pitch`` and ``pitch_range`` 0-100; ``word_gap`` extra pause between
    words in units of 10 ms.
    Returns a ``Speech`` with float32 samples at 16 kHz and per-word timings in seconds.
    Raises ``ValueError`` for empty text or out-of-range parameters, ``SynthesisError`` if
    espeak-ng fails or does not know the voice.
    """
    if not text or not text.strip():
        raise ValueError("text to synthesise is empty")
    _check_ranges(rate, pitch, pitch_range, word_gap)
    with _lock:
        engine = _get_engine()
        native, events = engine.speak(
            text, voice=voice, rate=rate, pitch=pitch, pitch_range=pitch_range, word_gap=word_gap
        )
        native_rate = engine.native_rate
    audio = native.astype(np.float32) / 32768.0
    if native_rate != SAMPLE_RATE and len(audio):
        audio = soxr.resample(audio, native_rate, SAMPLE_RATE).astype(np.float32)
    duration = len(audio) / SAMPLE_RATE
    return Speech(samples=audio, words=_word_timings(text, events, duration))


def _word_timings(
    text: str, events: list[tuple[int, int, int, int]], duration_s: float
) -> list[tuple[str, float, float]]:
    """(word, start_s, end_s) from espeak word events.

    ``text_position`` counts characters from 1. The word is read from the text at that
    position up to the next separator, because espeak's ``length`` stops at an apostrophe
    ("c'est" -> 1)."""
    starts = [(pos, length, ms / 1000.0) for kind, pos, length, ms in events if kind == _EVENT_WORD]
    words = []
    for i, (pos, length, start_s) in enumerate(starts):
        end_s = starts[i + 1][2] if i + 1 < len(starts) else duration_s
        match = _WORD.match(text, max(pos - 1, 0))
        word = match.group(0) if match else text[max(pos - 1, 0) : max(pos - 1, 0) + length]
        words.append((word, min(start_s, duration_s), min(max(end_s, start_s), duration_s)))
    return words

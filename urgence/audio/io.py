"""Decode and validate audio: any file, upload or array -> mono float32 at 16 kHz.

Formats are those of libsndfile (through ``soundfile``): WAV, FLAC, OGG/Vorbis, MP3 (with
libsndfile >= 1.1), AIFF and more; integer or float samples; any channel count up to
``MAX_CHANNELS``; sample rates from ``MIN_SAMPLE_RATE`` to ``MAX_SAMPLE_RATE``. Channels are
averaged, then the signal is resampled with soxr (high quality).

Every failure raises ``AudioError`` (a ``ValueError``) with a message naming the source and
the reason: missing, empty, truncated or corrupt file, not audio, NaN/Inf samples, no or too
many channels, absurd sample rate, longer than ``max_seconds`` (checked from the header,
before decoding, and again while decoding for formats whose header does not know).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

TARGET_RATE = 16000
MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 192000
MAX_CHANNELS = 64
DEFAULT_MAX_SECONDS = 3600.0

# An MP3 header's frame count can be an estimate (encoder delay and padding): a shortfall
# of more than 1% plus two MP3 frames (1152 samples each) is truncation.
_HEADER_SHORTFALL_FRACTION = 0.01
_HEADER_SHORTFALL_SAMPLES = 2 * 1152


class AudioError(ValueError):
    """The input is not usable audio; the message says which input and why."""


def load_audio(
    path: str | os.PathLike[str],
    *,
    sr: int = TARGET_RATE,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> np.ndarray:
    """Read an audio file. Returns (n,) float32 mono at ``sr``. Raises AudioError."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if not path.is_file():
        raise AudioError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file")
    return _decode(str(path), str(path), sr=sr, max_seconds=max_seconds)


def decode_bytes(
    data: bytes,
    *,
    sr: int = TARGET_RATE,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    name: str = "upload",
) -> np.ndarray:
    """Decode an encoded audio file held in memory (an upload).

    Returns (n,) float32 mono at ``sr``. ``name`` is used in error messages. Raises AudioError.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise AudioError(f"{name}: expected bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise AudioError(f"{name}: empty file")
    return _decode(io.BytesIO(data), name, sr=sr, max_seconds=max_seconds)


def to_mono_16k(samples: np.ndarray, sr: float) -> np.ndarray:
    """Raw samples -> (n',) float32 mono at 16 kHz.

    samples: (n,) or (n, channels), float (any width, taken as is) or integer PCM (int16,
    int32 scaled to [-1, 1); uint8 centred on 128). An empty input gives an empty output
    (a live stream may send empty chunks). Raises AudioError.

    Each call is resampled on its own: for a live stream at another rate use
    ``StreamResampler``, or chunk edges will click.
    """
    return _to_mono(samples, sr, TARGET_RATE, name="samples")


class StreamResampler:
    """Live chunks at any rate -> mono float32 at 16 kHz, continuous across chunk edges.

    ``push(samples)`` accepts what ``to_mono_16k`` accepts and returns the 16 kHz samples
    ready so far (the resampler holds back a few ms); ``push(..., last=True)`` flushes.
    The concatenated output equals ``to_mono_16k`` of the concatenated input. Raises
    AudioError for a bad sample rate or bad chunk.
    """

    def __init__(self, sr: float) -> None:
        _check_rate(sr, "stream")
        self.sr = sr
        self._stream = (
            None
            if sr == TARGET_RATE
            else soxr.ResampleStream(sr, TARGET_RATE, 1, dtype="float32", quality="HQ")
        )

    def push(self, samples: np.ndarray, *, last: bool = False) -> np.ndarray:
        """samples: (n,) or (n, channels) -> (n',) float32 at 16 kHz."""
        mono = _to_mono(samples, self.sr, self.sr, name="chunk")
        if self._stream is None:
            return mono
        return self._stream.resample_chunk(mono, last=last)


def _check_rate(sample_rate: float, name: str) -> None:
    if not (np.isfinite(sample_rate) and MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE):
        raise AudioError(
            f"{name}: sample rate {sample_rate} Hz is outside "
            f"[{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] Hz"
        )


def _as_float32(samples: np.ndarray, name: str) -> np.ndarray:
    dtype = samples.dtype
    if dtype == np.int16:
        return samples.astype(np.float32) / np.float32(2**15)
    if dtype == np.int32:
        return (samples / 2.0**31).astype(np.float32)
    if dtype == np.uint8:
        return (samples.astype(np.float32) - 128.0) / np.float32(128.0)
    if np.issubdtype(dtype, np.floating):
        with np.errstate(over="ignore"):  # float64 beyond float32's range -> Inf, caught below
            return samples.astype(np.float32, copy=False)
    raise AudioError(f"{name}: unsupported sample type {dtype} (expected float or int PCM)")


def _to_mono(samples: np.ndarray, sr: float, target_sr: int, *, name: str) -> np.ndarray:
    samples = np.asarray(samples)
    if samples.ndim == 2:
        channels = samples.shape[1]
        if channels == 0:
            raise AudioError(f"{name}: zero channels")
        if channels > MAX_CHANNELS:
            raise AudioError(
                f"{name}: {channels} channels (more than {MAX_CHANNELS}); arrays are "
                "(n, channels), was a (channels, n) array passed?"
            )
    elif samples.ndim != 1:
        raise AudioError(f"{name}: expected shape (n,) or (n, channels), got {samples.shape}")
    _check_rate(sr, name)
    _check_rate(target_sr, "target")
    audio = _as_float32(samples, name)
    if not np.isfinite(audio).all():
        raise AudioError(f"{name}: contains NaN or Inf samples")
    if audio.ndim == 2:
        audio = audio.mean(axis=1, dtype=np.float32)
    if audio.size == 0:
        return np.zeros(0, dtype=np.float32)
    if sr != target_sr:
        audio = soxr.resample(audio, sr, target_sr, quality="HQ")
    return np.ascontiguousarray(audio, dtype=np.float32)


def _decode(source: str | io.BytesIO, name: str, *, sr: int, max_seconds: float) -> np.ndarray:
    if not max_seconds > 0:
        raise AudioError(f"max_seconds must be positive, got {max_seconds}")
    try:
        with sf.SoundFile(source) as audio_file:
            rate, channels, header_frames = (
                audio_file.samplerate,
                audio_file.channels,
                audio_file.frames,
            )
            if not 1 <= channels <= MAX_CHANNELS:
                raise AudioError(f"{name}: {channels} channels (expected 1 to {MAX_CHANNELS})")
            _check_rate(rate, name)
            if header_frames / rate > max_seconds:
                raise AudioError(
                    f"{name}: {header_frames / rate:.1f} s long, more than the "
                    f"{max_seconds:g} s allowed"
                )
            if "should be" in audio_file.extra_info:  # libsndfile's note on a short WAV chunk
                raise AudioError(f"{name}: truncated file (data chunk shorter than its header)")
            cap = int(max_seconds * rate)
            samples = audio_file.read(cap + 1, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError, EOFError) as exc:
        reason = getattr(exc, "error_string", None) or str(exc)
        raise AudioError(f"{name}: not a readable audio file ({reason})") from exc
    if len(samples) > cap:
        raise AudioError(f"{name}: longer than the {max_seconds:g} s allowed")
    if len(samples) == 0:
        raise AudioError(f"{name}: contains no audio samples")
    if len(samples) < header_frames * (1 - _HEADER_SHORTFALL_FRACTION) - _HEADER_SHORTFALL_SAMPLES:
        raise AudioError(
            f"{name}: truncated file ({len(samples)} of {header_frames} frames decoded)"
        )
    return _to_mono(samples, rate, sr, name=name)

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from urgence.audio.io import (
    AudioError,
    StreamResampler,
    decode_bytes,
    load_audio,
    to_mono_16k,
)

from .conftest import tone


def peak_hz(signal: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(signal.size)))
    return float(np.fft.rfftfreq(signal.size, 1 / sr)[spectrum.argmax()])


def wav_bytes(channels: int, sample_rate: int, data: bytes = b"\0" * 400) -> bytes:
    """A hand-made 16-bit PCM WAV whose header may say absurd things."""
    block = max(channels, 1) * 2
    fmt = struct.pack("<HHIIHH", 1, channels, sample_rate, sample_rate * block, block, 16)
    body = b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data))
    body += data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("sr", [8000, 16000, 22050, 44100, 48000])
def test_resampling_keeps_duration_and_frequency(sr, tmp_path):
    path = tmp_path / f"tone_{sr}.wav"
    sf.write(path, tone(1000.0, 2.0, sr), sr, subtype="PCM_16")
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.size - 32000) <= 1
    assert abs(peak_hz(audio, 16000) - 1000.0) <= 1.0
    # amplitude survives resampling (away from the edges)
    assert abs(np.abs(audio[1000:-1000]).max() - 0.5) < 0.01


@pytest.mark.parametrize(
    ("fmt", "subtype", "suffix"),
    [
        ("WAV", "PCM_16", "wav"),
        ("WAV", "PCM_32", "wav"),
        ("WAV", "FLOAT", "wav"),
        ("WAV", "PCM_U8", "wav"),
        ("FLAC", "PCM_24", "flac"),
        ("OGG", "VORBIS", "ogg"),
        ("MP3", "MPEG_LAYER_III", "mp3"),
    ],
)
def test_formats_and_sample_types(fmt, subtype, suffix, tmp_path):
    path = tmp_path / f"clip.{suffix}"
    sf.write(path, tone(440.0, 1.0, 22050), 22050, format=fmt, subtype=subtype)
    audio = load_audio(path)
    assert abs(audio.size - 16000) <= 1 if fmt != "MP3" else abs(audio.size - 16000) < 1200
    assert abs(peak_hz(audio, 16000) - 440.0) <= 2.0
    assert 0.4 < np.abs(audio).max() < 0.6


def test_stereo_becomes_mono_average(tmp_path):
    left, right = tone(440.0, 1.0, 16000), tone(1000.0, 1.0, 16000, amplitude=0.2)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), (left + right) / 2, atol=1e-6)


def test_other_target_rate(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(440.0, 1.0, 16000), 16000)
    assert load_audio(path, sr=8000).size == 8000


def test_decode_bytes_equals_load_audio(tmp_path):
    path = tmp_path / "a.flac"
    sf.write(path, tone(300.0, 0.5, 44100), 44100)
    np.testing.assert_array_equal(decode_bytes(path.read_bytes()), load_audio(path))


def test_to_mono_16k_scales_integer_pcm():
    ints = np.array([0, 16384, -32768, 32767], dtype=np.int16)
    np.testing.assert_allclose(to_mono_16k(ints, 16000), [0, 0.5, -1, 32767 / 32768])
    int32 = np.array([[2**30, 0]], dtype=np.int32)
    np.testing.assert_allclose(to_mono_16k(int32, 16000), [0.25])
    uint8 = np.array([128, 192], dtype=np.uint8)
    np.testing.assert_allclose(to_mono_16k(uint8, 16000), [0, 0.5])


def test_to_mono_16k_resamples_and_accepts_empty_chunks():
    assert abs(to_mono_16k(tone(500.0, 1.0, 8000), 8000).size - 16000) <= 1
    empty = to_mono_16k(np.zeros(0, dtype=np.float32), 16000)
    assert empty.shape == (0,) and empty.dtype == np.float32


@pytest.mark.parametrize(
    ("samples", "sr", "message"),
    [
        (np.zeros((100, 0), dtype=np.float32), 16000, "zero channels"),
        (np.zeros((2, 16000), dtype=np.float32), 16000, "channels"),
        (np.zeros((2, 2, 2), dtype=np.float32), 16000, "shape"),
        (np.array([0.0, np.nan], dtype=np.float32), 16000, "NaN"),
        (np.array([0.0, np.inf]), 16000, "NaN"),
        (np.array([0.0, 1e300]), 16000, "NaN"),  # overflows float32
        (np.zeros(10, dtype=np.float32), 100, "sample rate"),
        (np.zeros(10, dtype=np.float32), float("nan"), "sample rate"),
        (np.zeros(10, dtype=complex), 16000, "sample type"),
        (np.array(["a", "b"]), 16000, "sample type"),
    ],
)
def test_to_mono_16k_rejects(samples, sr, message):
    with pytest.raises(AudioError, match=message):
        to_mono_16k(samples, sr)


def _encoded(tmp_path: Path, suffix: str, signal: np.ndarray, **kwargs) -> bytes:
    path = tmp_path / f"source.{suffix}"
    sf.write(path, signal, 16000, **kwargs)
    return path.read_bytes()


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _zeroed_middle(data: bytes) -> bytes:
    return data[:200] + bytes(1000) + data[1200:]


TONE = tone(440.0, 1.0, 16000)
# case -> (builder of the file's bytes, expected message)
BAD_FILES = {
    "empty": (lambda tmp: b"", "empty"),
    "truncated wav": (lambda tmp: _half(_encoded(tmp, "wav", TONE)), "truncated"),
    "truncated flac": (lambda tmp: _half(_encoded(tmp, "flac", TONE)), "not a readable"),
    "corrupt flac": (lambda tmp: _zeroed_middle(_encoded(tmp, "flac", TONE)), "not a readable"),
    "header only": (lambda tmp: _encoded(tmp, "wav", TONE)[:30], "not a readable"),
    "not audio": (lambda tmp: b"this is not audio, it is a text file\n" * 20, "not a readable"),
    "nan samples": (
        lambda tmp: _encoded(tmp, "wav", np.array([0, np.nan, 0.1], np.float32), subtype="FLOAT"),
        "NaN",
    ),
    "zero channels": (lambda tmp: wav_bytes(0, 16000), "(?i)channel count is zero"),
    "too many channels": (lambda tmp: wav_bytes(100, 16000, bytes(20000)), "100 channels"),
    "sample rate 1 Hz": (lambda tmp: wav_bytes(1, 1), "sample rate"),
    "sample rate 10 MHz": (lambda tmp: wav_bytes(1, 10_000_000), "sample rate"),
    "no samples": (lambda tmp: wav_bytes(1, 16000, b""), "no audio samples"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_malformed_files_raise_audio_error(case, tmp_path):
    build, message = BAD_FILES[case]
    data = build(tmp_path)
    path = tmp_path / "bad.wav"
    path.write_bytes(data)
    with pytest.raises(AudioError, match=message) as excinfo:
        load_audio(path)
    assert str(path) in str(excinfo.value)
    with pytest.raises(AudioError, match=message):
        decode_bytes(data, name="call.wav")


def test_truncated_mp3_is_detected(tmp_path):
    path = tmp_path / "a.mp3"
    sf.write(path, tone(440.0, 2.0, 16000), 16000, format="MP3")
    data = path.read_bytes()
    with pytest.raises(AudioError, match="truncated"):
        decode_bytes(data[: len(data) // 2])


def test_length_cap_is_checked_from_the_header(tmp_path, monkeypatch):
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros(16000 * 3, dtype=np.float32), 16000)

    def refuse_to_decode(*args, **kwargs):
        raise AssertionError("decoded a file whose header already says it is too long")

    monkeypatch.setattr(sf.SoundFile, "read", refuse_to_decode)
    with pytest.raises(AudioError, match="more than the 2 s allowed"):
        load_audio(path, max_seconds=2.0)


def test_length_cap_accepts_exact_length(tmp_path):
    path = tmp_path / "two.wav"
    sf.write(path, np.zeros(16000 * 2, dtype=np.float32), 16000)
    assert load_audio(path, max_seconds=2.0).size == 32000


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AudioError, match="no such file") as excinfo:
        load_audio(tmp_path / "absent.wav")
    assert "absent.wav" in str(excinfo.value)
    with pytest.raises(AudioError, match="not a regular file"):
        load_audio(tmp_path)


def test_decode_bytes_rejects_non_bytes():
    with pytest.raises(AudioError, match="expected bytes"):
        decode_bytes("RIFF....")  # type: ignore[arg-type]


def test_audio_error_is_a_value_error():
    assert issubclass(AudioError, ValueError)


@pytest.mark.parametrize("sr", [8000, 16000, 44100, 48000])
def test_stream_resampler_equals_whole(sr, rng):
    signal = tone(700.0, 1.0, sr)
    stream = StreamResampler(sr)
    pieces, position = [], 0
    while position < signal.size:
        chunk = int(rng.integers(sr // 50, sr // 2))  # 20-500 ms
        piece = signal[position : position + chunk]
        position += chunk
        pieces.append(stream.push(piece, last=position >= signal.size))
    streamed = np.concatenate(pieces)
    assert streamed.dtype == np.float32
    np.testing.assert_allclose(streamed, to_mono_16k(signal, sr), atol=1e-5)


def test_stream_resampler_rejects_bad_input():
    with pytest.raises(AudioError, match="sample rate"):
        StreamResampler(10)
    with pytest.raises(AudioError, match="NaN"):
        StreamResampler(48000).push(np.array([np.nan], np.float32))

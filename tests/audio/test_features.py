import numpy as np
import pytest

from urgence.audio.features import (
    FeatureConfig,
    LogMelStream,
    frames_for,
    log_mel,
    mel_band_edges,
    mel_filterbank,
    windows,
)

from .conftest import tone

CONFIG = FeatureConfig()


def test_default_config_derived_sizes():
    assert (CONFIG.win_length, CONFIG.hop_length, CONFIG.n_fft) == (400, 160, 512)
    assert (CONFIG.clip_samples, CONFIG.n_frames, CONFIG.n_mels) == (16000, 98, 40)


def test_config_round_trip_and_mismatch():
    config = FeatureConfig(n_mels=32, fmax=7000.0)
    assert FeatureConfig.from_dict(config.to_dict()) == config
    saved = CONFIG.to_dict() | {"n_frames": 99}
    with pytest.raises(ValueError, match="n_frames"):
        FeatureConfig.from_dict(saved)
    with pytest.raises(ValueError, match="unknown"):
        FeatureConfig.from_dict({"colour": "red"})


@pytest.mark.parametrize(
    "kwargs", [{"fmax": 9000.0}, {"hop_ms": 30.0}, {"n_mels": 0}, {"log_floor": 0.0}]
)
def test_config_rejects_invalid(kwargs):
    with pytest.raises(ValueError):
        FeatureConfig(**kwargs)


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        CONFIG.n_mels = 20


def test_one_second_gives_40_by_98_float32(rng):
    features = log_mel(rng.standard_normal(16000).astype(np.float32), config=CONFIG)
    assert features.shape == (40, 98)
    assert features.dtype == np.float32


@pytest.mark.parametrize("n", [0, 399, 400, 559, 560, 16000, 16159, 48123])
def test_any_length(n, rng):
    features = log_mel(rng.standard_normal(n).astype(np.float32), config=CONFIG)
    expected = 0 if n < 400 else 1 + (n - 400) // 160
    assert features.shape == (40, expected) == (40, frames_for(CONFIG, n))


def test_every_mel_band_sees_some_fft_bin():
    bank = mel_filterbank(CONFIG)
    assert bank.shape == (257, 40)
    assert (bank.max(axis=0) > 0.5).all()


@pytest.mark.parametrize("freq_hz", [250.0, 1000.0, 3000.0, 6000.0])
def test_tone_peaks_in_its_mel_band(freq_hz):
    features = log_mel(tone(freq_hz, 1.0, 16000), config=CONFIG)
    centres = mel_band_edges(CONFIG)[1:-1]
    expected_band = int(np.argmin(np.abs(centres - freq_hz)))
    peak_bands = features.argmax(axis=0)
    assert np.abs(peak_bands - expected_band).max() <= 1
    assert np.median(peak_bands) == expected_band


def test_silence_is_the_log_floor():
    features = log_mel(np.zeros(16000, dtype=np.float32), config=CONFIG)
    np.testing.assert_allclose(features, np.log(np.float32(1e-6)))


def test_rejects_bad_signals():
    with pytest.raises(ValueError, match="shape"):
        log_mel(np.zeros((2, 16000), dtype=np.float32), config=CONFIG)
    with pytest.raises(ValueError, match="NaN"):
        log_mel(np.full(16000, np.nan, dtype=np.float32), config=CONFIG)
    with pytest.raises(ValueError, match="float"):
        log_mel(np.zeros(16000, dtype=np.int16), config=CONFIG)


def test_windows_are_views_equal_to_clip_features(rng):
    signal = rng.standard_normal(16000 * 5).astype(np.float32)
    frames = log_mel(signal, config=CONFIG)
    cut = windows(frames, config=CONFIG, hop_frames=10)
    assert cut.shape == (1 + (frames.shape[1] - 98) // 10, 40, 98)
    assert np.shares_memory(cut, frames)
    for i in (0, 7, cut.shape[0] - 1):
        start = i * 10 * CONFIG.hop_length
        clip = log_mel(signal[start : start + 16000], config=CONFIG)
        np.testing.assert_allclose(cut[i], clip, atol=1e-5)


def test_windows_of_short_recording_is_empty():
    frames = np.zeros((40, 50), dtype=np.float32)
    assert windows(frames, config=CONFIG).shape == (0, 40, 98)
    with pytest.raises(ValueError):
        windows(np.zeros((20, 200), dtype=np.float32), config=CONFIG)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stream_equals_whole(seed):
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal(16000 * 4).astype(np.float32)
    whole = log_mel(signal, config=CONFIG)
    stream = LogMelStream(CONFIG)
    pieces, position = [], 0
    while position < signal.size:
        chunk = int(rng.integers(320, 8001))  # 20-500 ms
        pieces.append(stream.push(signal[position : position + chunk]))
        position += chunk
    streamed = np.concatenate(pieces, axis=1)
    assert streamed.shape == whole.shape
    assert stream.frames_emitted == whole.shape[1]
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


def test_stream_tiny_chunks_and_reset(rng):
    signal = rng.standard_normal(4000).astype(np.float32)
    stream = LogMelStream(CONFIG)
    pieces = [stream.push(signal[i : i + 7]) for i in range(0, signal.size, 7)]
    np.testing.assert_allclose(
        np.concatenate(pieces, axis=1), log_mel(signal, config=CONFIG), atol=1e-5
    )
    stream.reset()
    assert stream.push(signal[:399]).shape == (40, 0)
    assert stream.push(signal[399:400]).shape == (40, 1)


def test_filterbank_triangles_peak_at_their_centres():
    bank = mel_filterbank(CONFIG)
    bin_hz = np.fft.rfftfreq(CONFIG.n_fft, 1 / CONFIG.sample_rate)
    centres = mel_band_edges(CONFIG)[1:-1]
    # each triangle's highest bin is the bin nearest its centre frequency (HTK, unit peak)
    peak_bins = bank.argmax(axis=0)
    assert np.all(np.abs(bin_hz[peak_bins] - centres) <= bin_hz[1] / 2 + 1e-6)
    assert np.all(bank <= 1.0) and not bank.flags.writeable
    # nothing outside [fmin, fmax]
    outside = (bin_hz < CONFIG.fmin) | (bin_hz > CONFIG.fmax)
    assert np.all(bank[outside] == 0)


def test_matches_librosa_when_available(rng):
    """Dev check: librosa is not a dependency, so this skips unless it is installed."""
    librosa = pytest.importorskip("librosa", reason="librosa not installed (dev check only)")
    reference_bank = librosa.filters.mel(
        sr=16000, n_fft=512, n_mels=40, fmin=20.0, fmax=7600.0, htk=True, norm=None
    )
    np.testing.assert_allclose(mel_filterbank(CONFIG).T, reference_bank, atol=1e-6)
    signal = (0.1 * rng.standard_normal(16000 * 2)).astype(np.float32)
    power = librosa.feature.melspectrogram(
        y=signal, sr=16000, n_fft=512, win_length=400, hop_length=160, center=False,
        n_mels=40, fmin=20.0, fmax=7600.0, htk=True, norm=None,
    )
    # librosa frames 512 samples and centres the 400-sample window in them (offset 56)
    ours = log_mel(signal[56:], config=CONFIG)[:, : power.shape[1]]
    np.testing.assert_allclose(ours, np.log(power + 1e-6), atol=1e-4)

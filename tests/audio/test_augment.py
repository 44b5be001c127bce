import numpy as np
import pytest
import soundfile as sf

from urgence.audio import augment
from urgence.audio.features import FeatureConfig, log_mel, mel_band_edges
from urgence.audio.io import AudioError

from .conftest import tone

SR = 16000
CONFIG = FeatureConfig()


def word_like(rng: np.random.Generator) -> np.ndarray:
    """(16000,) float32: 0.2 s silence, 0.6 s of a noisy 'vowel', 0.2 s silence."""
    voiced = tone(220.0, 0.6, SR) + tone(660.0, 0.6, SR, amplitude=0.2)
    voiced += 0.02 * rng.standard_normal(voiced.size).astype(np.float32)
    return np.concatenate([np.zeros(3200, np.float32), voiced, np.zeros(3200, np.float32)])


def peak_hz(signal: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(signal.size)))
    return float(np.fft.rfftfreq(signal.size, 1 / SR)[spectrum.argmax()])


def rms(signal: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(signal, dtype=np.float64))))


NOISE = np.random.default_rng(7).standard_normal(SR * 3).astype(np.float32) * 0.1

# name -> f(y, rng) for every signal augmentation that keeps the length
SAME_LENGTH = {
    "gain": lambda y, rng: augment.gain(y, db=-6.0),
    "time_shift": lambda y, rng: augment.time_shift(y, max_s=0.1, rng=rng),
    "pitch_shift": lambda y, rng: augment.pitch_shift(y, semitones=float(rng.uniform(-3, 3))),
    "add_noise": lambda y, rng: augment.add_noise(y, NOISE, snr_db=10.0, rng=rng),
    "reverb": lambda y, rng: augment.reverb(y, rt60_s=0.5, drr_db=3.0, rng=rng),
    "telephone": lambda y, rng: augment.telephone(y, rng=rng, packet_loss=0.05),
    "muffle": lambda y, rng: augment.muffle(y, cutoff_hz=800.0, attenuation_db=12.0),
    "random_chain": lambda y, rng: augment.random_chain(
        y, rng=rng, noises=[NOISE], p={"pitch": 0.5}
    ),
}


@pytest.mark.parametrize("name", SAME_LENGTH)
def test_float32_same_length_finite_and_seeded(name):
    y = word_like(np.random.default_rng(0))
    apply = SAME_LENGTH[name]
    first = apply(y, np.random.default_rng(42))
    assert first.dtype == np.float32
    assert first.shape == y.shape
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, apply(y, np.random.default_rng(42)))
    assert not np.array_equal(first, y)


@pytest.mark.parametrize("name", ["time_shift", "add_noise", "reverb", "random_chain"])
def test_different_seeds_differ(name):
    y = word_like(np.random.default_rng(0))
    apply = SAME_LENGTH[name]
    one, two = apply(y, np.random.default_rng(1)), apply(y, np.random.default_rng(2))
    assert not np.array_equal(one, two)


def test_gain_scales_amplitude():
    y = tone(440.0, 0.1, SR)
    np.testing.assert_allclose(augment.gain(y, db=20.0), 10 * y, rtol=1e-6)


def test_time_shift_moves_the_signal_and_zero_fills(rng):
    y = np.zeros(1000, np.float32)
    y[500] = 1.0
    shifted = augment.time_shift(y, max_s=0.01, rng=rng)  # up to 160 samples
    position = int(np.flatnonzero(shifted)[0])
    assert abs(position - 500) <= 160
    assert shifted.sum() == 1.0
    assert np.array_equal(augment.time_shift(y, max_s=0.0, rng=rng), y)


@pytest.mark.parametrize("factor", [0.85, 1.15])
def test_speed_changes_length_and_pitch_together(factor):
    out = augment.speed(tone(500.0, 1.0, SR), factor=factor)
    assert out.dtype == np.float32
    assert abs(out.size - SR / factor) <= 1
    assert abs(peak_hz(out) - 500.0 * factor) <= 3.0


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_time_stretch_changes_length_not_pitch(rate):
    out = augment.time_stretch(tone(440.0, 1.0, SR), rate=rate)
    assert out.size == round(SR / rate)
    assert abs(peak_hz(out) - 440.0) <= 2.0
    assert abs(np.abs(out[1000:-1000]).max() - 0.5) < 0.02


def test_time_stretch_at_rate_one_is_identity(rng):
    y = rng.standard_normal(5000).astype(np.float32)
    np.testing.assert_allclose(augment.time_stretch(y, rate=1.0), y, atol=1e-6)


@pytest.mark.parametrize("semitones", [-3.0, 2.0, 5.0])
def test_pitch_shift_moves_frequency_keeps_length_and_level(semitones):
    out = augment.pitch_shift(tone(440.0, 1.0, SR), semitones=semitones)
    assert out.shape == (SR,)
    assert abs(peak_hz(out) - 440.0 * 2 ** (semitones / 12)) <= 3.0
    assert abs(rms(out[2000:-2000]) - 0.5 / np.sqrt(2)) < 0.02


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 30.0])
def test_add_noise_reaches_the_requested_snr(snr_db, rng):
    y = word_like(rng)
    noisy = augment.add_noise(y, NOISE, snr_db=snr_db, rng=rng)
    measured = 10 * np.log10(rms(y) ** 2 / rms(noisy - y) ** 2)
    assert abs(measured - snr_db) < 0.5


def test_add_noise_tiles_short_noise_and_rejects_silence(rng):
    y = word_like(rng)
    short = NOISE[:1000]
    assert augment.add_noise(y, short, snr_db=5.0, rng=rng).shape == y.shape
    with pytest.raises(ValueError, match="SNR"):
        augment.add_noise(np.zeros(100, np.float32), NOISE, snr_db=5.0, rng=rng)
    with pytest.raises(ValueError, match="SNR"):
        augment.add_noise(y, np.zeros(100, np.float32), snr_db=5.0, rng=rng)


def test_load_noises(tmp_path):
    sf.write(tmp_path / "b.wav", tone(100.0, 0.5, 8000), 8000)
    sf.write(tmp_path / "a.flac", tone(100.0, 1.0, 16000), 16000)
    (tmp_path / "README.md").write_text("not audio")
    noises = augment.load_noises(tmp_path)
    assert [n.size for n in noises] == [16000, 8000]  # sorted: a.flac, b.wav; README skipped
    assert all(n.dtype == np.float32 for n in noises)
    with pytest.raises(AudioError, match="no such folder"):
        augment.load_noises(tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AudioError, match="no audio files"):
        augment.load_noises(empty)


def test_room_impulse_response_decays_by_60_db_over_rt60(rng):
    response = augment.room_impulse_response(rt60_s=0.4, drr_db=0.0, rng=rng)
    assert response.shape == (6400,) and response[0] == 1.0
    tail = response[1:].astype(np.float64)
    assert abs(np.sum(tail**2) - 1.0) < 1e-5  # 0 dB direct-to-reverberant
    early, late = tail[:640], tail[-640:]  # first and last 40 ms
    decay_db = 10 * np.log10(np.mean(early**2) / np.mean(late**2))
    assert 45 < decay_db < 65


def test_reverb_smears_an_impulse_and_keeps_rms(rng):
    y = np.zeros(SR, np.float32)
    y[1000] = 1.0
    wet = augment.reverb(y, rt60_s=0.5, drr_db=0.0, rng=rng)
    assert abs(rms(wet) - rms(y)) < 1e-4
    assert np.argmax(np.abs(wet)) == 1000  # the direct path comes first and loudest
    assert np.count_nonzero(np.abs(wet[1001:]) > 1e-4) > 4000


def band_gain_db(clean: np.ndarray, processed: np.ndarray, low: float, high: float) -> float:
    frequencies = np.fft.rfftfreq(clean.size, 1 / SR)
    band = (frequencies >= low) & (frequencies < high)
    before = np.abs(np.fft.rfft(clean))[band] ** 2
    after = np.abs(np.fft.rfft(processed))[band] ** 2
    return float(10 * np.log10(after.sum() / before.sum()))


def test_telephone_keeps_300_3400_hz_and_removes_the_rest(rng):
    white = (0.1 * rng.standard_normal(SR * 2)).astype(np.float32)
    phone = augment.telephone(white)
    assert abs(band_gain_db(white, phone, 500, 3000)) < 1.0
    assert band_gain_db(white, phone, 0, 200) < -30
    assert band_gain_db(white, phone, 3800, 8000) < -30
    assert band_gain_db(white, phone, 0, 300) < -10
    assert band_gain_db(white, phone, 3400, 8000) < -20


@pytest.mark.parametrize(("freq_hz", "passes"), [(100.0, False), (1000.0, True), (5000.0, False)])
def test_telephone_on_tones(freq_hz, passes):
    clean = tone(freq_hz, 1.0, SR)
    ratio = rms(augment.telephone(clean)[2000:]) / rms(clean)
    assert (0.9 < ratio < 1.1) if passes else (ratio < 0.05)


def test_telephone_packet_loss_zeroes_20_ms_packets():
    clean = tone(1000.0, 2.0, SR)
    intact = augment.telephone(clean)
    lossy = augment.telephone(clean, rng=np.random.default_rng(3), packet_loss=0.3)
    kept_energy = (rms(lossy) / rms(intact)) ** 2
    assert 0.55 < kept_energy < 0.85  # about 30% of the packets lost
    quiet = np.abs(lossy.reshape(-1, 80)).max(axis=1) < 0.05  # 5 ms blocks
    assert quiet.mean() > 0.1
    with pytest.raises(ValueError, match="rng"):
        augment.telephone(clean, packet_loss=0.1)


def test_mu_law_round_trip_error_is_relative():
    y = np.array([0.001, -0.01, 0.1, -0.5, 0.99], np.float32)
    decoded = augment.mu_law(y)
    assert np.all(np.abs(decoded - y) <= 0.05 * np.abs(y) + 1e-4)
    assert np.abs(augment.mu_law(np.array([3.0], np.float32))).max() <= 1.0


def test_vtlp_moves_a_tone_band_by_alpha():
    features = log_mel(tone(1000.0, 1.0, SR), config=CONFIG)
    centres = mel_band_edges(CONFIG)[1:-1]
    for alpha in (0.85, 1.15):
        warped = augment.vtlp(features, alpha=alpha, config=CONFIG)
        assert warped.shape == features.shape and warped.dtype == np.float32
        band = int(np.median(warped.argmax(axis=0)))
        assert abs(band - np.argmin(np.abs(centres - 1000.0 * alpha))) <= 1
    np.testing.assert_allclose(augment.vtlp(features, alpha=1.0, config=CONFIG), features)


def test_vtlp_accepts_batches_and_rejects_bad_shapes():
    batch = np.zeros((3, 40, 98), np.float32)
    assert augment.vtlp(batch, alpha=1.1, config=CONFIG).shape == (3, 40, 98)
    with pytest.raises(ValueError):
        augment.vtlp(np.zeros((30, 98), np.float32), alpha=1.1, config=CONFIG)
    with pytest.raises(ValueError):
        augment.vtlp(batch, alpha=2.0, config=CONFIG)


def test_spec_augment_masks_bands_and_frames(rng):
    features = rng.standard_normal((40, 98)).astype(np.float32)
    masked = augment.spec_augment(
        features, rng=rng, freq_masks=1, max_freq_width=5, time_masks=1, max_time_width=10
    )
    assert masked.dtype == np.float32 and masked.shape == features.shape
    changed = masked != features
    assert changed.sum() <= 5 * 98 + 10 * 40
    assert np.allclose(masked[changed], features.mean())
    # whole bands or whole frames only
    rows, cols = changed.all(axis=1), changed.all(axis=0)
    assert np.array_equal(changed, rows[:, None] | cols[None, :])
    assert not np.shares_memory(masked, features)


def test_random_chain_steps_can_be_switched_off(rng):
    y = word_like(rng)
    off = {step: 0.0 for step in augment.CHAIN_PROBABILITIES}
    np.testing.assert_array_equal(augment.random_chain(y, rng=rng, p=off), y)
    only_gain = augment.random_chain(y, rng=rng, p=off | {"gain": 1.0})
    ratio = rms(only_gain) / rms(y)
    assert 10 ** (-12 / 20) - 1e-3 <= ratio <= 10 ** (6 / 20) + 1e-3
    with pytest.raises(ValueError, match="unknown"):
        augment.random_chain(y, rng=rng, p={"echo": 1.0})


def test_random_chain_skips_noise_on_silence(rng):
    silence = np.zeros(SR, np.float32)
    out = augment.random_chain(silence, rng=rng, noises=[NOISE], p={"noise": 1.0})
    assert out.shape == (SR,) and np.isfinite(out).all()


def test_random_feature_chain(rng):
    features = log_mel(word_like(rng), config=CONFIG)
    out = augment.random_feature_chain(
        features, rng=rng, config=CONFIG, p_vtlp=1.0, p_spec_augment=1.0
    )
    assert out.shape == (40, 98) and out.dtype == np.float32
    assert not np.array_equal(out, features)


@pytest.mark.parametrize(
    "call",
    [
        lambda: augment.speed(np.zeros(10, np.float32), factor=0.0),
        lambda: augment.pitch_shift(np.zeros(10, np.float32), semitones=24),
        lambda: augment.time_shift(np.zeros(10, np.float32), max_s=-1, rng=np.random.default_rng()),
        lambda: augment.reverb(np.zeros(10, np.float32), rt60_s=10.0, rng=np.random.default_rng()),
        lambda: augment.telephone(np.zeros(10, np.float32), packet_loss=1.5),
        lambda: augment.gain(np.full(3, np.nan, np.float32), db=1.0),
        lambda: augment.gain(np.zeros((2, 3), np.float32), db=1.0),
    ],
)
def test_invalid_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_fit_length_centres_crops_and_pads():
    y = np.arange(1, 11, dtype=np.float32)
    np.testing.assert_array_equal(augment.fit_length(y, 4), [4, 5, 6, 7])
    padded = augment.fit_length(y, 14)
    np.testing.assert_array_equal(padded, np.r_[0, 0, y, 0, 0])
    assert padded.dtype == np.float32


def test_noise_segment_is_a_stretch_of_the_recording(rng):
    segment = augment.noise_segment(NOISE, 1000, rng=rng)
    start = int(np.flatnonzero(NOISE == segment[0])[0])
    np.testing.assert_array_equal(segment, NOISE[start : start + 1000])
    assert augment.noise_segment(NOISE[:300], 1000, rng=rng).shape == (1000,)
    with pytest.raises(ValueError, match="empty"):
        augment.noise_segment(np.zeros(0, np.float32), 10, rng=rng)


@pytest.mark.parametrize("name", SAME_LENGTH)
def test_empty_and_short_signals(name):
    apply = SAME_LENGTH[name]
    short = word_like(np.random.default_rng(0))[3000:3400]
    assert apply(short, np.random.default_rng(0)).shape == (400,)
    if name not in {"add_noise", "random_chain"}:  # no SNR for an empty signal
        assert apply(np.zeros(0, np.float32), np.random.default_rng(0)).shape == (0,)


def test_muffle_cuts_the_high_band_and_keeps_the_low_one():
    t = np.arange(16000, dtype=np.float32) / 16000
    low = np.sin(2 * np.pi * 200 * t).astype(np.float32)
    high = np.sin(2 * np.pi * 5000 * t).astype(np.float32)

    def level_db(y):  # steady state, after the filter's start
        return 10 * np.log10(np.mean(y[4000:] ** 2))

    cut_low = augment.muffle(low, cutoff_hz=1000, attenuation_db=18)
    cut_high = augment.muffle(high, cutoff_hz=1000, attenuation_db=18)
    assert abs(level_db(cut_low) - level_db(low)) < 1.0
    assert -19.5 < level_db(cut_high) - level_db(high) < -16.5
    np.testing.assert_allclose(
        augment.muffle(high, cutoff_hz=1000, attenuation_db=0), high, atol=1e-5
    )
    with pytest.raises(ValueError, match="cutoff_hz"):
        augment.muffle(low, cutoff_hz=9000, attenuation_db=6)
    with pytest.raises(ValueError, match="attenuation_db"):
        augment.muffle(low, cutoff_hz=1000, attenuation_db=-1)

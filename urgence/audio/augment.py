"""Data augmentation for keyword clips: what real emergency calls do to a word.

Signal augmentations take and return (n,) float32 mono at ``sr`` (16 kHz by default);
feature augmentations (``vtlp``, ``spec_augment``) take and return log-mel features
(..., n_mels, T) float32. All are pure, keyword-only functions; the random ones take an
explicit ``rng: np.random.Generator`` and give the same output for the same seed. Invalid
arguments raise ``ValueError``.

What changes length: ``speed`` (n / factor samples). Everything else keeps the length.

Composed: ``random_chain`` (signal) and ``random_feature_chain`` (features) apply a realistic
random mix; FINDINGS.md measured that the channel (noise + telephone on about half the
clips + gain) is decisive, and speed and VTLP help further.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.signal
import soxr

from urgence.audio.features import FeatureConfig, as_signal, hz_to_mel, mel_band_edges
from urgence.audio.io import AudioError, load_audio

SAMPLE_RATE = 16000
NOISE_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


# -- helpers ----------------------------------------------------------------------------


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Centre-crop or zero-pad (n',) float32 to (n,) float32 (the word stays in the middle)."""
    if y.size >= n:
        start = (y.size - n) // 2
        return np.ascontiguousarray(y[start : start + n])
    before = (n - y.size) // 2
    return np.pad(y, (before, n - y.size - before))


def _power(y: np.ndarray) -> float:
    return float(np.mean(np.square(y, dtype=np.float64))) if y.size else 0.0


# -- level and position ---------------------------------------------------------------------


def gain(y: np.ndarray, *, db: float) -> np.ndarray:
    """Scale by ``db`` decibels. (n,) float32 -> (n,) float32 (no clipping)."""
    y = as_signal(y)
    return y * np.float32(10.0 ** (db / 20.0))


def time_shift(
    y: np.ndarray, *, max_s: float, rng: np.random.Generator, sr: int = SAMPLE_RATE
) -> np.ndarray:
    """Shift by a uniform random offset in [-max_s, max_s] s, zero-filled, same length.

    (n,) float32 -> (n,) float32.
    """
    y = as_signal(y)
    if max_s < 0:
        raise ValueError("max_s must be >= 0")
    limit = min(int(max_s * sr), y.size)
    offset = int(rng.integers(-limit, limit + 1))
    shifted = np.zeros_like(y)
    if offset >= 0:
        shifted[offset:] = y[: y.size - offset]
    else:
        shifted[:offset] = y[-offset:]
    return shifted


# -- speed, pitch -----------------------------------------------------------------------------


def speed(y: np.ndarray, *, factor: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Play ``factor`` times faster (tempo and pitch together), by soxr resampling.

    (n,) float32 -> (round(n / factor),) float32. factor in (0.25, 4).
    """
    y = as_signal(y)
    if not 0.25 < factor < 4.0:
        raise ValueError(f"speed factor must be in (0.25, 4), got {factor}")
    if factor == 1.0 or y.size == 0:
        return y.copy()
    return soxr.resample(y, sr * factor, sr, quality="HQ").astype(np.float32, copy=False)


_GRAIN = 512  # 32 ms at 16 kHz: several pitch periods, shorter than a phoneme
_GRAIN_HOP = _GRAIN // 2
_GRAIN_TOLERANCE = 128


def time_stretch(y: np.ndarray, *, rate: float) -> np.ndarray:
    """Change tempo by ``rate`` (> 1 faster) keeping pitch, by WSOLA (waveform-similarity
    overlap-add: each 32 ms grain is taken near its nominal place where it best continues
    the previous one, so the waveform stays coherent, unlike a plain phase vocoder).

    (n,) float32 -> (round(n / rate),) float32.
    """
    y = as_signal(y)
    if not 0.25 < rate < 4.0:
        raise ValueError(f"stretch rate must be in (0.25, 4), got {rate}")
    target = round(y.size / rate)
    margin = 4 * _GRAIN + _GRAIN_TOLERANCE  # room to search before the first sample
    source = np.pad(y, (margin, margin + round(target * rate) + _GRAIN))
    window = scipy.signal.get_window("hann", _GRAIN).astype(np.float32)  # sums to 1 at 50%
    n_grains = -(-target // _GRAIN_HOP) + 2
    out = np.zeros(n_grains * _GRAIN_HOP + _GRAIN, dtype=np.float32)
    # output sample j (after the first half grain, which only fades in) comes from input
    # sample j * rate: grain k starts at output time (k - 1) * hop
    taken = margin - _GRAIN_HOP  # where the previous grain was read from
    for k in range(n_grains):
        nominal = margin + round((k - 1) * _GRAIN_HOP * rate)
        if k:
            continuation = source[taken + _GRAIN_HOP : taken + _GRAIN_HOP + _GRAIN]
            region = source[nominal - _GRAIN_TOLERANCE : nominal + _GRAIN_TOLERANCE + _GRAIN]
            similarity = np.correlate(region, continuation, mode="valid")
            taken = nominal - _GRAIN_TOLERANCE + int(similarity.argmax())
        out[k * _GRAIN_HOP : k * _GRAIN_HOP + _GRAIN] += window * source[taken : taken + _GRAIN]
    return out[_GRAIN_HOP : _GRAIN_HOP + target]


def pitch_shift(y: np.ndarray, *, semitones: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Shift pitch by ``semitones`` keeping duration: phase-vocoder stretch, then resample.

    (n,) float32 -> (n,) float32. semitones in [-12, 12].
    """
    y = as_signal(y)
    if not -12 <= semitones <= 12:
        raise ValueError(f"semitones must be in [-12, 12], got {semitones}")
    if semitones == 0 or y.size == 0:
        return y.copy()
    ratio = 2.0 ** (semitones / 12.0)
    stretched = time_stretch(y, rate=1.0 / ratio)  # ratio times longer, same pitch
    return fit_length(speed(stretched, factor=ratio, sr=sr), y.size)


# -- noise ------------------------------------------------------------------------------------


def noise_segment(noise: np.ndarray, n: int, *, rng: np.random.Generator) -> np.ndarray:
    """A random (n,) float32 stretch of a noise recording (tiled if shorter than n)."""
    noise = as_signal(noise)
    if noise.size == 0:
        raise ValueError("empty noise recording")
    if noise.size < n:
        noise = np.tile(noise, -(-n // noise.size) + 1)
    start = int(rng.integers(0, noise.size - n + 1))
    return noise[start : start + n]


def add_noise(
    y: np.ndarray, noise: np.ndarray, *, snr_db: float, rng: np.random.Generator
) -> np.ndarray:
    """Add a random stretch of ``noise`` scaled to the signal-to-noise ratio ``snr_db``.

    SNR is the ratio of mean powers over the whole clip. y: (n,) float32; noise: (m,) float32
    at the same rate, any length (tiled if shorter). Returns (n,) float32. ValueError if y or
    the chosen noise stretch is silent (the SNR would be undefined).
    """
    y = as_signal(y)
    segment = noise_segment(noise, y.size, rng=rng)
    signal_power, noise_power = _power(y), _power(segment)
    if signal_power == 0 or noise_power == 0:
        raise ValueError("add_noise needs a non-silent signal and noise (SNR undefined)")
    scale = np.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return (y + np.float32(scale) * segment).astype(np.float32, copy=False)


def load_noises(folder: str | Path, *, sr: int = SAMPLE_RATE) -> list[np.ndarray]:
    """Every audio file (wav, flac, ogg, mp3) in ``folder``, sorted by name, as (n,) float32
    mono at ``sr``. Raises AudioError if the folder is missing, holds no audio file, or a
    file is unreadable."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AudioError(f"{folder}: no such folder of noise recordings")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in NOISE_SUFFIXES)
    if not paths:
        raise AudioError(f"{folder}: no audio files ({', '.join(NOISE_SUFFIXES)})")
    return [load_audio(path, sr=sr) for path in paths]


# -- room and channel ------------------------------------------------------------------------


def room_impulse_response(
    *, rt60_s: float, drr_db: float, rng: np.random.Generator, sr: int = SAMPLE_RATE
) -> np.ndarray:
    """Synthetic room impulse response: a unit direct path, then exponentially decaying
    Gaussian noise that falls by 60 dB in ``rt60_s``; ``drr_db`` is the direct-to-reverberant
    energy ratio. Returns (round(rt60_s * sr),) float32."""
    if not 0.05 <= rt60_s <= 3.0:
        raise ValueError(f"rt60_s must be in [0.05, 3] s, got {rt60_s}")
    length = round(rt60_s * sr)
    t = np.arange(length) / sr
    tail = rng.standard_normal(length) * np.exp(-np.log(1000.0) * t / rt60_s)
    tail[0] = 0.0
    tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / np.sum(tail**2))
    tail[0] = 1.0
    return tail.astype(np.float32)


def reverb(
    y: np.ndarray,
    *,
    rt60_s: float,
    rng: np.random.Generator,
    drr_db: float = 0.0,
    sr: int = SAMPLE_RATE,
) -> np.ndarray:
    """Room reverberation with a synthetic impulse response (see ``room_impulse_response``).

    (n,) float32 -> (n,) float32 (the tail past the clip is cut), same RMS as the input.
    """
    y = as_signal(y)
    if y.size == 0:
        return y.copy()
    response = room_impulse_response(rt60_s=rt60_s, drr_db=drr_db, rng=rng, sr=sr)
    wet = scipy.signal.fftconvolve(y, response)[: y.size]
    wet_power = _power(wet)
    if wet_power > 0:
        wet *= np.sqrt(_power(y) / wet_power)
    return wet.astype(np.float32)


TELEPHONE_BAND_HZ = (300.0, 3400.0)
TELEPHONE_RATE = 8000
PACKET_S = 0.02  # one RTP packet of G.711 audio
_MU = 255.0


@lru_cache(maxsize=32)
def _low_pass(cutoff_hz: int, sr: int) -> np.ndarray:
    return scipy.signal.butter(2, cutoff_hz, btype="lowpass", fs=sr, output="sos")


def muffle(
    y: np.ndarray, *, cutoff_hz: float, attenuation_db: float, sr: int = SAMPLE_RATE
) -> np.ndarray:
    """A voice heard through something: above ``cutoff_hz`` the signal loses
    ``attenuation_db`` (a high-shelf cut: the 2nd-order low-passed signal plus the rest
    scaled down). A caller's hand or fabric over the phone, a phone held far away, a
    dull voice: the band that carries most consonants sinks into the background noise
    while the low band, where most of the energy is, still sets the SNR.

    (n,) float32 -> (n,) float32.
    """
    y = as_signal(y)
    if not 50.0 <= cutoff_hz < sr / 2:
        raise ValueError(f"cutoff_hz must be in [50, {sr / 2}), got {cutoff_hz}")
    if attenuation_db < 0:
        raise ValueError(f"attenuation_db must be >= 0, got {attenuation_db}")
    if y.size == 0:
        return y.copy()
    low = scipy.signal.sosfilt(_low_pass(round(cutoff_hz), sr), y).astype(np.float32)
    return low + np.float32(10.0 ** (-attenuation_db / 20.0)) * (y - low)


@lru_cache(maxsize=4)
def _telephone_filter(sr: int) -> np.ndarray:
    return scipy.signal.butter(6, TELEPHONE_BAND_HZ, btype="bandpass", fs=sr, output="sos")


def mu_law(y: np.ndarray) -> np.ndarray:
    """8-bit mu-law (mu = 255) companding round trip: encode, quantise to 256 levels, decode.

    Continuous mu-law, not G.711's segmented approximation of it (same quantisation noise to
    within a fraction of a dB). (n,) float32 -> (n,) float32, clipped to [-1, 1].
    """
    clipped = np.clip(y, -1.0, 1.0)
    encoded = np.sign(clipped) * np.log1p(_MU * np.abs(clipped)) / np.log1p(_MU)
    quantised = np.round((encoded + 1.0) * 127.5) / 127.5 - 1.0
    return (np.sign(quantised) * np.expm1(np.abs(quantised) * np.log1p(_MU)) / _MU).astype(
        np.float32
    )


def telephone(
    y: np.ndarray,
    *,
    sr: int = SAMPLE_RATE,
    rng: np.random.Generator | None = None,
    packet_loss: float = 0.0,
) -> np.ndarray:
    """A narrow-band telephone channel: 300-3400 Hz band-pass (6th-order Butterworth, on
    both sides of the line), 8 kHz round trip, G.711-style 8-bit mu-law companding, and
    optionally lost 20 ms packets (probability ``packet_loss`` each, zeroed; needs ``rng``).

    (n,) float32 -> (n,) float32.
    """
    y = as_signal(y)
    if not 0.0 <= packet_loss < 1.0:
        raise ValueError(f"packet_loss must be in [0, 1), got {packet_loss}")
    if packet_loss > 0 and rng is None:
        raise ValueError("packet_loss needs an rng")
    if y.size == 0:
        return y.copy()
    band = _telephone_filter(sr)
    line = soxr.resample(scipy.signal.sosfilt(band, y).astype(np.float32), sr, TELEPHONE_RATE)
    line = mu_law(line)
    if packet_loss > 0:
        packet = round(PACKET_S * TELEPHONE_RATE)
        lost = rng.random(-(-line.size // packet)) < packet_loss
        line[np.repeat(lost, packet)[: line.size]] = 0.0
    received = soxr.resample(line, TELEPHONE_RATE, sr)
    return fit_length(scipy.signal.sosfilt(band, received).astype(np.float32), y.size)


# -- features ---------------------------------------------------------------------------------


def vtlp(features: np.ndarray, *, alpha: float, config: FeatureConfig) -> np.ndarray:
    """Vocal-tract-length perturbation **on log-mel features** (Jaitly & Hinton 2013).

    Output band at frequency f takes the log energy found at f / alpha (interpolated
    between band centres), so alpha > 1 moves formants up (a shorter vocal tract); above a
    boundary the warp turns piecewise linear so that fmax maps to fmax.
    features: (..., n_mels, T) float32 -> same shape, float32. alpha in [0.7, 1.3].
    """
    if not 0.7 <= alpha <= 1.3:
        raise ValueError(f"vtlp alpha must be in [0.7, 1.3], got {alpha}")
    features = np.asarray(features, dtype=np.float32)
    if features.ndim < 2 or features.shape[-2] != config.n_mels:
        raise ValueError(f"expected features (..., {config.n_mels}, T), got {features.shape}")
    centres = mel_band_edges(config)[1:-1]
    boundary = 0.85 * config.fmax * min(alpha, 1.0)
    source_hz = np.where(
        centres <= boundary,
        centres / alpha,
        boundary / alpha
        + (centres - boundary) * (config.fmax - boundary / alpha) / (config.fmax - boundary),
    )
    # band index as a function of mel is linear, so interpolate on the mel scale
    position = np.interp(hz_to_mel(source_hz), hz_to_mel(centres), np.arange(config.n_mels))
    lower = np.clip(np.floor(position).astype(int), 0, config.n_mels - 1)
    upper = np.minimum(lower + 1, config.n_mels - 1)
    weight = (position - lower).astype(np.float32)[:, None]
    low = np.take(features, lower, axis=-2)
    high = np.take(features, upper, axis=-2)
    return ((1 - weight) * low + weight * high).astype(np.float32)


def spec_augment(
    features: np.ndarray,
    *,
    rng: np.random.Generator,
    freq_masks: int = 2,
    max_freq_width: int = 6,
    time_masks: int = 2,
    max_time_width: int = 12,
) -> np.ndarray:
    """SpecAugment masks (Park et al. 2019, without time warping) on one example.

    Each mask covers a uniform random width in [0, max_width] of bands or frames and is
    filled with the example's mean (log-mel has no natural zero).
    features: (n_mels, T) float32 -> (n_mels, T) float32, a new array.
    """
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise ValueError(f"expected features (n_mels, T), got {features.shape}")
    masked = features.copy()
    fill = features.mean() if features.size else 0.0
    masks = ((0, freq_masks, max_freq_width), (1, time_masks, max_time_width))
    for axis, count, max_width in masks:
        size = features.shape[axis]
        for _ in range(count):
            width = int(rng.integers(0, min(max_width, size) + 1))
            start = int(rng.integers(0, size - width + 1))
            index = [slice(None), slice(None)]
            index[axis] = slice(start, start + width)
            masked[tuple(index)] = fill
    return masked


# -- composed ---------------------------------------------------------------------------------

# Probability of each step of random_chain, in the order they are applied.
CHAIN_PROBABILITIES: dict[str, float] = {
    "speed": 0.5,  # factor uniform in [0.85, 1.15]
    "pitch": 0.0,  # semitones uniform in [-2, 2] (WSOLA, ~5 ms a clip; effect not measured)
    "shift": 1.0,  # time shift up to 0.1 s
    "muffle": 0.0,  # high-shelf cut of 6-24 dB above 500-2000 Hz (BuildConfig.muffle)
    "reverb": 0.3,  # RT60 uniform in [0.2, 0.8] s, direct-to-reverberant ratio in [0, 10] dB
    "noise": 0.8,  # one of `noises`, SNR uniform in `snr_db`
    "telephone": 0.5,  # with 20 ms packet loss in [0, 5] %
    "gain": 1.0,  # uniform in [-12, 6] dB, then clipped to [-1, 1] as an ADC would
}


def random_chain(
    y: np.ndarray,
    *,
    rng: np.random.Generator,
    noises: Sequence[np.ndarray] = (),
    p: Mapping[str, float] | None = None,
    snr_db: tuple[float, float] = (5.0, 25.0),
    sr: int = SAMPLE_RATE,
) -> np.ndarray:
    """A realistic random mix of signal augmentations for one training clip.

    Steps and default probabilities are ``CHAIN_PROBABILITIES`` (speaker: speed, pitch;
    position: shift; voice or microphone: muffle; room: reverb, noise; channel: telephone,
    gain); ``p`` overrides some of them (e.g. ``{"reverb": 0}``). ``noises``: background
    recordings at ``sr`` (see ``load_noises``); without any, or for a silent clip, the noise
    step is skipped.
    ``snr_db``: range of the noise SNR (FINDINGS.md's measured gain used 5-25 dB).
    (n,) float32 -> (n,) float32, same length.
    """
    y = as_signal(y)
    probabilities = dict(CHAIN_PROBABILITIES)
    if p:
        unknown = set(p) - set(probabilities)
        if unknown:
            raise ValueError(f"unknown augmentation steps: {sorted(unknown)}")
        probabilities.update(p)

    def chosen(step: str) -> bool:
        return bool(rng.random() < probabilities[step])

    n = y.size
    if chosen("speed"):
        y = fit_length(speed(y, factor=float(rng.uniform(0.85, 1.15)), sr=sr), n)
    if chosen("pitch"):
        y = pitch_shift(y, semitones=float(rng.uniform(-2.0, 2.0)), sr=sr)
    if chosen("shift"):
        y = time_shift(y, max_s=0.1, rng=rng, sr=sr)
    if chosen("muffle"):
        cutoff_hz, attenuation_db = float(rng.uniform(500.0, 2000.0)), float(rng.uniform(6.0, 24.0))
        y = muffle(y, cutoff_hz=cutoff_hz, attenuation_db=attenuation_db, sr=sr)
    if chosen("reverb"):
        rt60_s, drr_db = float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.0, 10.0))
        y = reverb(y, rt60_s=rt60_s, drr_db=drr_db, rng=rng, sr=sr)
    if chosen("noise") and noises and _power(y) > 0:
        noise = noises[int(rng.integers(len(noises)))]
        y = add_noise(y, noise, snr_db=float(rng.uniform(*snr_db)), rng=rng)
    if chosen("telephone"):
        y = telephone(y, sr=sr, rng=rng, packet_loss=float(rng.uniform(0.0, 0.05)))
    if chosen("gain"):
        y = np.clip(gain(y, db=float(rng.uniform(-12.0, 6.0))), -1.0, 1.0)
    return y


def random_feature_chain(
    features: np.ndarray,
    *,
    rng: np.random.Generator,
    config: FeatureConfig,
    p_vtlp: float = 0.5,
    p_spec_augment: float = 0.5,
) -> np.ndarray:
    """VTLP (alpha uniform in [0.85, 1.15]) with probability ``p_vtlp``, then SpecAugment
    (default masks) with probability ``p_spec_augment``, on one example's log-mel.

    features: (n_mels, T) float32 -> (n_mels, T) float32.
    """
    if rng.random() < p_vtlp:
        features = vtlp(features, alpha=float(rng.uniform(0.85, 1.15)), config=config)
    if rng.random() < p_spec_augment:
        features = spec_augment(features, rng=rng)
    return np.asarray(features, dtype=np.float32)

"""Test doubles for the console: a keyword model that hears tones, and calls made of tones.

``ToneModel`` has the ``KeywordModel`` interface (labels, feature_config, thresholds,
predict_proba) and goes through the real features, detector and router: a 1 s window in which
a keyword's tone sounds for at least 0.3 s is that keyword (posterior 0.95), any other window
is silence. So a call with a 1000 Hz tone is a call where someone says "incendie".
"""

from __future__ import annotations

import io
import time

import numpy as np
import soundfile as sf

from urgence.audio.features import FeatureConfig, log_mel
from urgence.corpus.vocabulary import KEYWORDS, LABELS, SILENCE

RATE = 16000
TONES = {"incendie": 1000.0, "malaise": 500.0, "vol": 2500.0}
TONE_AMPLITUDE = 0.3
NOISE_AMPLITUDE = 1e-3
MIN_TONE_FRAMES = 30  # 0.3 s of 10 ms frames


def _band(samples: np.ndarray, config: FeatureConfig) -> tuple[int, float]:
    frames = log_mel(samples, config=config)
    return int(frames.mean(axis=1).argmax()), float(frames.max(axis=0).mean())


class ToneModel:
    """A ``KeywordModel`` double; ``delay_s`` is slept per call (a slow network)."""

    def __init__(self, tones: dict[str, float] = TONES, delay_s: float = 0.0) -> None:
        self.labels = LABELS
        self.feature_config = FeatureConfig()
        self.thresholds = {keyword: 0.5 for keyword in KEYWORDS}
        self.delay_s = delay_s
        self.calls = 0
        t = np.arange(RATE) / RATE
        self.bands: dict[str, int] = {}
        loudness = []
        for keyword, frequency in tones.items():
            tone = (TONE_AMPLITUDE * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
            self.bands[keyword], level = _band(tone, self.feature_config)
            loudness.append(level)
        quiet = _band(noise(RATE, np.random.default_rng(0)), self.feature_config)[1]
        self.loudness_floor = (min(loudness) + quiet) / 2

    def predict_proba(self, windows: np.ndarray) -> np.ndarray:
        """windows: (N, 40, 98) float32 log-mel -> (N, 14) float32 posteriors."""
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        loudest = windows.argmax(axis=1)
        loud = windows.max(axis=1) > self.loudness_floor
        out = np.zeros((len(windows), len(self.labels)), dtype=np.float32)
        out[:, self.labels.index(SILENCE)] = 1.0
        for keyword, band in self.bands.items():
            heard = ((np.abs(loudest - band) <= 1) & loud).sum(axis=1) >= MIN_TONE_FRAMES
            out[heard] = 0.05 / (len(self.labels) - 1)
            out[heard, self.labels.index(keyword)] = 0.95
        return out


def noise(n: int, rng: np.random.Generator) -> np.ndarray:
    return (NOISE_AMPLITUDE * rng.standard_normal(n)).astype(np.float32)


def tone_call(words: list[tuple[str, float]], duration_s: float, *, seed: int = 0,
              word_s: float = 0.6) -> np.ndarray:
    """A call: faint noise with each keyword's tone at the given start times (seconds).

    Returns (duration_s * 16000,) float32."""
    samples = noise(int(duration_s * RATE), np.random.default_rng(seed))
    for keyword, start_s in words:
        start, length = int(start_s * RATE), int(word_s * RATE)
        t = np.arange(length) / RATE
        samples[start : start + length] += TONE_AMPLITUDE * np.sin(2 * np.pi * TONES[keyword] * t)
    return samples


def wav_bytes(samples: np.ndarray, rate: int = RATE) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()

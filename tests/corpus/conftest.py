"""Fixtures of the corpus tests: a fake shared data folder and a tiny built corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from urgence.corpus.build import BuildConfig, build_corpus


def _write(path: Path, samples: np.ndarray, sr: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, sr, subtype="PCM_16")


def make_fake_shared(root: Path, rng: np.random.Generator) -> Path:
    """``root/data`` with 3 s of two noises and a few Speech-Commands-like clips."""
    data = root / "data"
    for name in ("hum", "hiss"):
        _write(data / "background_noise" / f"{name}.wav", 0.1 * rng.standard_normal(48000))
    t = np.arange(16000) / 16000
    burst = (0.3 * np.sin(2 * np.pi * 300 * t) * (np.abs(t - 0.5) < 0.2)).astype(np.float32)
    for speaker in ("0a1b2c3d", "4e5f6a7b", "8c9d0e1f"):
        for word in ("yes", "stop"):
            _write(data / "speech_commands_v002_test" / word / f"{speaker}_nohash_0.wav", burst)
    _write(data / "speech_commands_v002_test" / "_unknown_" / "bed_0a1b2c3d_nohash_1.wav", burst)
    return root


@pytest.fixture(scope="session")
def fake_shared(tmp_path_factory) -> Path:
    return make_fake_shared(tmp_path_factory.mktemp("shared"), np.random.default_rng(7))


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory, fake_shared) -> Path:
    """A corpus built once for the session (2 voices, every source, one augmented copy)."""
    out = tmp_path_factory.mktemp("corpus")
    build_corpus(out, BuildConfig.small(shared=str(fake_shared)), verbose=False)
    return out

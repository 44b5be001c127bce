"""Figures of clips: waveform + log-mel spectrogram, and one word under every augmentation.

Built on ``matplotlib.figure.Figure`` (Agg canvas, no screen, no pyplot global state).
Figure text is French: a dispatcher or a clinician may read these.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from urgence.audio import augment
from urgence.audio.features import FeatureConfig, as_signal, log_mel, mel_band_edges

_BAND_TICKS = (0, 10, 20, 30, 39)


def draw_waveform(axes: Axes, y: np.ndarray, *, sr: int, title: str = "") -> None:
    """Waveform of (n,) float32 against time in seconds."""
    axes.plot(np.arange(y.size) / sr, y, lw=0.5, color="#1565c0")
    axes.set_xlim(0, max(y.size / sr, 1 / sr))
    axes.set_ylim(-1.05, 1.05)
    axes.set_xlabel("temps (s)")
    axes.set_ylabel("amplitude")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)


# colour range of the spectrograms, in natural-log units of mel power (18 = 78 dB)
_DYNAMIC_RANGE = 18.0


def colour_range(features: np.ndarray) -> tuple[float, float]:
    """(vmin, vmax): the loudest value and ``_DYNAMIC_RANGE`` below it."""
    top = float(features.max()) if features.size else 0.0
    return top - _DYNAMIC_RANGE, top


def draw_log_mel(
    axes: Axes,
    features: np.ndarray,
    *,
    config: FeatureConfig,
    title: str = "",
    limits: tuple[float, float] | None = None,
) -> None:
    """Log-mel features (n_mels, T) float32 as an image; bands labelled with their centre in
    Hz. ``limits``: colour range (default: ``colour_range(features)``); give several images
    the same one to compare levels."""
    duration = features.shape[1] * config.hop_length / config.sample_rate
    vmin, vmax = limits or colour_range(features)
    image = axes.imshow(
        features,
        origin="lower",
        aspect="auto",
        cmap="magma",
        interpolation="nearest",
        extent=(0, duration, -0.5, config.n_mels - 0.5),
        vmin=vmin,
        vmax=vmax,
    )
    centres = mel_band_edges(config)[1:-1]
    ticks = [band for band in _BAND_TICKS if band < config.n_mels]
    axes.set_yticks(ticks, [f"{centres[band]:.0f}" for band in ticks])
    axes.set_xlabel("temps (s)")
    axes.set_ylabel("fréquence (Hz)")
    axes.set_title(title, fontsize=10)
    axes.figure.colorbar(image, ax=axes, label="log énergie", pad=0.01)


def clip_figure(
    y: np.ndarray, *, config: FeatureConfig | None = None, title: str = ""
) -> Figure:
    """Waveform above log-mel spectrogram of one recording, y: (n,) float32 at 16 kHz."""
    config = config or FeatureConfig()
    y = as_signal(y)
    figure = Figure(figsize=(9, 5.5), layout="constrained")
    if title:
        figure.suptitle(title, fontsize=13, fontweight="bold")
    wave_axes, mel_axes = figure.subplots(2, 1)
    draw_waveform(wave_axes, y, sr=config.sample_rate, title="Forme d'onde")
    draw_log_mel(
        mel_axes,
        log_mel(y, config=config),
        config=config,
        title=f"Spectrogramme log-mel ({config.n_mels} bandes, "
        f"fenêtre {config.win_ms:g} ms, pas {config.hop_ms:g} ms)",
    )
    return figure


def augmentation_examples(
    y: np.ndarray,
    *,
    rng: np.random.Generator,
    config: FeatureConfig,
    noise: np.ndarray,
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(French caption, signal (n,) float32, log-mel (n_mels, T) float32) per augmentation.

    The feature-level ones (VTLP, SpecAugment) show the original signal beside the
    augmented features.
    """
    sr = config.sample_rate
    signal_steps: list[tuple[str, Callable[[np.ndarray], np.ndarray]]] = [
        ("original", lambda s: s),
        ("gain −10 dB", lambda s: augment.gain(s, db=-10.0)),
        ("décalage temporel (±0,2 s)", lambda s: augment.time_shift(s, max_s=0.2, rng=rng, sr=sr)),
        ("vitesse ×1,15", lambda s: augment.speed(s, factor=1.15, sr=sr)),
        ("hauteur +3 demi-tons", lambda s: augment.pitch_shift(s, semitones=3.0, sr=sr)),
        ("bruit de fond, RSB 10 dB", lambda s: augment.add_noise(s, noise, snr_db=10.0, rng=rng)),
        (
            "réverbération (RT60 0,6 s)",
            lambda s: augment.reverb(s, rt60_s=0.6, drr_db=3.0, rng=rng, sr=sr),
        ),
        (
            "canal téléphonique (300–3400 Hz, 8 kHz, loi µ, 5 % de paquets perdus)",
            lambda s: augment.telephone(s, sr=sr, rng=rng, packet_loss=0.05),
        ),
        ("chaîne aléatoire", lambda s: augment.random_chain(s, rng=rng, noises=[noise], sr=sr)),
    ]
    examples = []
    for caption, step in signal_steps:
        out = step(y)
        examples.append((caption, out, log_mel(out, config=config)))
    features = log_mel(y, config=config)
    warped = augment.vtlp(features, alpha=1.15, config=config)
    examples.append(("VTLP α = 1,15 (sur les features)", y, warped))
    examples.append(("SpecAugment (masques)", y, augment.spec_augment(features, rng=rng)))
    return examples


def augmentation_figure(
    y: np.ndarray,
    *,
    rng: np.random.Generator,
    config: FeatureConfig | None = None,
    noises: Sequence[np.ndarray] = (),
    title: str = "",
) -> Figure:
    """One row per augmentation of one word: waveform | log-mel. y: (n,) float32 at 16 kHz.

    Noise comes from ``noises[0]`` or, without any, from white noise drawn from ``rng``.
    """
    config = config or FeatureConfig()
    y = as_signal(y)
    noise = noises[0] if noises else rng.standard_normal(y.size * 2).astype(np.float32)
    examples = augmentation_examples(y, rng=rng, config=config, noise=noise)
    figure = Figure(figsize=(12, 2.1 * len(examples)), layout="constrained")
    if title:
        figure.suptitle(title, fontsize=14, fontweight="bold")
    rows = figure.subplots(len(examples), 2, width_ratios=(1, 1.25))
    limits = colour_range(examples[0][2])  # the original's: levels stay comparable
    for (caption, signal, features), (wave_axes, mel_axes) in zip(examples, rows, strict=True):
        draw_waveform(wave_axes, signal, sr=config.sample_rate, title=caption)
        draw_log_mel(mel_axes, features, config=config, title=caption, limits=limits)
    return figure


def save(figure: Figure, path: str | Path, *, dpi: int = 100) -> Path:
    """Write ``figure`` as PNG (creating the folder); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    return path

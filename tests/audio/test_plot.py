import numpy as np
import pytest

from urgence.audio import plot
from urgence.audio.features import FeatureConfig, log_mel

from .conftest import tone

CONFIG = FeatureConfig()


def test_clip_figure_has_waveform_and_spectrogram(tmp_path):
    figure = plot.clip_figure(tone(440.0, 1.0, 16000), title="INCENDIE")
    wave_axes, mel_axes = figure.axes[:2]
    assert len(wave_axes.lines) == 1 and len(mel_axes.images) == 1
    assert mel_axes.images[0].get_array().shape == (40, 98)
    assert figure.get_suptitle() == "INCENDIE"
    path = plot.save(figure, tmp_path / "sub" / "clip.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_spectrogram_image_is_the_log_mel():
    figure = plot.clip_figure(tone(1000.0, 1.0, 16000))
    image = np.asarray(figure.axes[1].images[0].get_array())
    np.testing.assert_array_equal(image, log_mel(tone(1000.0, 1.0, 16000), config=CONFIG))


def test_colour_range_spans_the_dynamic_range():
    vmin, vmax = plot.colour_range(np.array([[-30.0, 2.0]], np.float32))
    assert vmax == 2.0 and vmax - vmin == pytest.approx(18.0)


def test_augmentation_examples_cover_every_augmentation(rng):
    y = tone(300.0, 1.0, 16000)
    noise = rng.standard_normal(32000).astype(np.float32)
    examples = plot.augmentation_examples(y, rng=rng, config=CONFIG, noise=noise)
    captions = " ".join(caption for caption, _, _ in examples)
    for word in ("gain", "décalage", "vitesse", "hauteur", "bruit", "réverbération",
                 "téléphonique", "VTLP", "SpecAugment"):
        assert word in captions
    for _, signal, features in examples:
        assert signal.dtype == np.float32 and features.dtype == np.float32
        assert features.shape[0] == 40


def test_augmentation_figure_shares_one_colour_range(rng):
    figure = plot.augmentation_figure(tone(300.0, 1.0, 16000), rng=rng)
    images = [axes.images[0] for axes in figure.axes if axes.images]
    assert len(images) == 11
    assert len({image.get_clim() for image in images}) == 1

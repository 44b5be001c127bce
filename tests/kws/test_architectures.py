import numpy as np
import pytest

from urgence.kws.architectures import ARCHITECTURES, build, count_macs
from urgence.nn.layers import FloorNormalization, MeanNormalization


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_architectures_map_a_window_to_class_posteriors(name, rng):
    model = build(name, 14, seed=1, width=8)
    x = rng.standard_normal((3, 1, 40, 98)).astype(np.float32)
    probs = model.predict_proba(x)
    assert probs.shape == (3, 14) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert count_macs(model) > model.count_params()


def test_mac_count_of_a_known_dscnn():
    model = build("dscnn", 14, width=64, block_strides=(1, 1, 1, 1))
    # Hello-Edge layout on 40 x 98: first conv 20*49 positions * 64 * 10*4, then 4 blocks
    # of depthwise 3x3 and pointwise 64x64 at 20*49 positions, then the classifier
    positions = 20 * 49
    expected = positions * 64 * 40 + 4 * positions * (64 * 9 + 64 * 64) + 64 * 14
    assert count_macs(model) == expected


def test_cmn_makes_the_model_blind_to_a_fixed_band_offset(rng):
    model = build("dscnn", 14, width=8, cmn=True)
    assert isinstance(model.layers[0], MeanNormalization)
    x = rng.standard_normal((2, 1, 40, 98)).astype(np.float32)
    tilt = np.linspace(-3, 3, 40, dtype=np.float32)[None, None, :, None]
    np.testing.assert_allclose(model.predict_proba(x + tilt), model.predict_proba(x), atol=1e-5)


def test_floor_normalization_feeds_both_views_and_ignores_a_steady_background(rng, tmp_path):
    model = build("dscnn", 14, width=8, cmn=True, floor=True)
    assert isinstance(model.layers[0], FloorNormalization) and model.layers[0].with_mean
    assert model.layers[1].params["W"].shape[1] == 2  # the first convolution reads 2 channels
    x = rng.standard_normal((2, 1, 40, 98)).astype(np.float32)
    tilt = np.linspace(-3, 3, 40, dtype=np.float32)[None, None, :, None]
    np.testing.assert_allclose(model.predict_proba(x + tilt), model.predict_proba(x), atol=1e-5)
    alone = build("dscnn", 14, width=8, floor=True)
    assert not alone.layers[0].with_mean and alone.layers[1].params["W"].shape[1] == 1


def test_lifter_makes_the_model_blind_to_a_ripple_across_the_bands(rng, tmp_path):
    from urgence.nn.layers import CepstralLifter
    from urgence.nn.serialization import load_model

    model = build("bcresnet", 14, width=8, time_stride=2, cmn=True, lifter=13)
    assert isinstance(model.layers[0], CepstralLifter) and model.layers[0].keep == 13
    assert isinstance(model.layers[1], MeanNormalization)
    x = rng.standard_normal((2, 1, 40, 98)).astype(np.float32)
    # a ripple of high quefrency (alternating bands), as resolved pitch harmonics make
    ripple = np.where(np.arange(40) % 2, 1.0, -1.0).astype(np.float32)[None, None, :, None]
    np.testing.assert_allclose(model.predict_proba(x + ripple), model.predict_proba(x), atol=1e-5)
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.layers[0].keep == 13
    np.testing.assert_allclose(again.predict_proba(x), model.predict_proba(x), atol=1e-6)


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown architecture"):
        build("resnet", 14)


@pytest.mark.parametrize(
    ("time_stride", "frames", "dilations"),
    [(1, 98, (1, 2, 4, 8)), (2, 49, (1, 1, 2, 4)), (4, 25, (1, 1, 1, 2))],
)
def test_bcresnet_layout_and_mac_count(time_stride, frames, dilations):
    from urgence.nn.layers import BCResBlock

    model = build("bcresnet", 14, width=8, time_stride=time_stride)
    blocks = [layer for layer in model.layers if isinstance(layer, BCResBlock)]
    assert [b.output_shape for b in blocks] == (
        [(8, 20, frames)] * 2
        + [(12, 10, frames)] * 2
        + [(16, 5, frames)] * 4
        + [(20, 5, frames)] * 4
    )
    assert [b.transition for b in blocks] == [True, False, True, False, True] + [False] * 3 + [
        True
    ] + [False] * 3
    assert (
        tuple(b.dilation for b in blocks[::2][:2]) + (blocks[4].dilation, blocks[8].dilation)
        == dilations
    )
    # stem 16 x 5 x 5 on 20 rows; per block: frequency taps, time taps and pointwise on the
    # average row, plus the transition's pointwise convolution; 5 x 5 depthwise head over
    # the last 5 rows, pointwise to 32 channels, classifier
    expected = 16 * 25 * 20 * frames
    for block in blocks:
        channels, rows, _ = block.input_shape
        c, out_rows, _ = block.output_shape
        expected += 3 * c * out_rows * frames + 3 * c * frames + c * c * frames
        expected += c * channels * rows * frames if block.transition else 0
    expected += 20 * 25 * (frames - 4) + 32 * 20 * (frames - 4) + 32 * 14
    assert count_macs(model) == expected


def test_bcresnet_time_stride_is_checked():
    with pytest.raises(ValueError, match="time_stride"):
        build("bcresnet", 14, time_stride=3)

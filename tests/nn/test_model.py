"""Sequential: learning, determinism, freezing, transfer, batching, summary, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from urgence.nn import Sequential, optimizers
from urgence.nn.layers import (
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    Softmax,
)

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([0, 1, 1, 0])


def blobs(rng: np.random.Generator, n: int = 120, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points (N, 2) float32 around ``k`` well-separated centres, labels (N,)."""
    labels = rng.integers(0, k, n)
    centres = np.array([[3.0 * np.cos(a), 3.0 * np.sin(a)] for a in np.arange(k) * 2.1])
    x = centres[labels] + 0.5 * rng.standard_normal((n, 2))
    return x.astype(np.float32), labels


def small_mlp(seed: int = 0, dropout: float = 0.0) -> Sequential:
    return Sequential(
        [Dense(16, activation="relu"), Dropout(dropout), Dense(3), Softmax()],
        input_shape=(2,),
        seed=seed,
    )


def test_xor_is_learned_to_near_zero_loss():
    model = Sequential([Dense(8, activation="tanh"), Dense(2), Softmax()], input_shape=(2,))
    model.compile("cross_entropy", optimizers.Adam(0.05))
    model.fit(XOR_X, XOR_Y, epochs=300, batch_size=4, verbose=0)
    assert model.history["loss"][-1] < 0.01
    np.testing.assert_array_equal(model.predict(XOR_X), XOR_Y)
    proba = model.predict_proba(XOR_X)
    assert proba.dtype == np.float32 and proba.shape == (4, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert model.evaluate(XOR_X, XOR_Y)["accuracy"] == 1.0


def test_xor_with_sigmoid_output_and_mse():
    model = Sequential(
        [Dense(8, activation="tanh"), Dense(1, activation="sigmoid")], input_shape=(2,)
    )
    model.compile("mse", optimizers.SGD(0.5, momentum=0.9))
    model.fit(XOR_X, XOR_Y.astype(np.float32), epochs=400, batch_size=4, verbose=0)
    assert model.history["loss"][-1] < 0.01
    np.testing.assert_array_equal(model.predict(XOR_X), XOR_Y)


def test_blobs_learned_with_validation_history(rng):
    x, y = blobs(rng)
    model = small_mlp().compile("cross_entropy", optimizers.SGD(0.05, momentum=0.9))
    model.fit(x[:90], y[:90], epochs=15, batch_size=16, validation_data=(x[90:], y[90:]), verbose=0)
    assert set(model.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == 15 for values in model.history.values())
    assert model.history["loss"][-1] < model.history["loss"][0] / 3
    assert model.history["val_accuracy"][-1] >= 0.95


def test_fused_softmax_trains_on_logits_and_matches_an_unfused_model(rng):
    """The same weights without the Softmax layer give the logits; predict_proba agrees."""
    x, y = blobs(rng, n=20)
    model = small_mlp().compile("cross_entropy", "sgd")
    model.fit(x, y, epochs=2, batch_size=5, verbose=0)
    logits_model = Sequential(model.layers[:-1], input_shape=(2,)).compile("cross_entropy", "sgd")
    np.testing.assert_allclose(
        logits_model.predict_proba(x), model.predict_proba(x), rtol=1e-5, atol=1e-7
    )
    assert model.evaluate(x, y)["loss"] == pytest.approx(logits_model.evaluate(x, y)["loss"])


def test_same_seed_gives_identical_weights_and_another_seed_does_not(rng):
    x, y = blobs(rng, n=64)

    def trained(seed: int) -> dict[str, np.ndarray]:
        model = small_mlp(seed, dropout=0.3).compile("cross_entropy", optimizers.Adam(0.01))
        model.fit(x, y, epochs=3, batch_size=8, verbose=0)
        return model.get_weights()

    first, second, other = trained(7), trained(7), trained(8)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    assert not np.array_equal(first["0.W"], other["0.W"])


def test_frozen_layers_do_not_change_while_others_do(rng):
    x, y = blobs(rng, n=48)
    model = Sequential(
        [Dense(8, activation="relu"), BatchNormalization(), Dense(8, activation="relu"), Dense(3)],
        input_shape=(2,),
    )
    model.freeze(upto=2)
    model.compile("cross_entropy", optimizers.SGD(0.1, momentum=0.9))
    before = model.get_weights()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    after = model.get_weights()
    for key in ("0.W", "0.b", "1.gamma", "1.beta", "1.moving_mean", "1.moving_var"):
        np.testing.assert_array_equal(after[key], before[key])
    for key in ("2.W", "3.W"):
        assert not np.array_equal(after[key], before[key])
    assert not any(path.startswith(("0.", "1.")) for path in model.optimizer.state["velocity"])


def test_transfer_reuses_the_trained_base_and_builds_only_the_head(rng):
    x, y = blobs(rng, n=60)
    base = small_mlp().compile("cross_entropy", "adam")
    base.fit(x, y, epochs=2, verbose=0)
    trained_kernel = base.layers[0].params["W"].copy()
    head = Dense(5)
    model = Sequential(base.layers[:-2] + [head, Softmax()], input_shape=(2,), seed=1)
    assert model.layers[0] is base.layers[0]
    np.testing.assert_array_equal(model.layers[0].params["W"], trained_kernel)
    assert head.params["W"].shape == (16, 5)
    model.freeze(upto=2)
    model.compile("cross_entropy", "adam").fit(x, y % 5, epochs=2, verbose=0)
    np.testing.assert_array_equal(model.layers[0].params["W"], trained_kernel)
    with pytest.raises(ValueError, match="was built for inputs"):
        Sequential(base.layers, input_shape=(3,))


def test_train_on_batch_lowers_the_loss(rng):
    x, y = blobs(rng, n=32)
    model = small_mlp().compile("cross_entropy", optimizers.SGD(0.1))
    first = model.train_on_batch(x, y)
    for _ in range(20):
        last = model.train_on_batch(x, y)
    assert set(first) == {"loss", "accuracy"}
    assert last["loss"] < first["loss"]


def test_fit_from_a_batch_source_gets_the_rng_each_epoch(rng):
    x, y = blobs(rng, n=40)
    seen: list[np.random.Generator] = []

    def batches(generator: np.random.Generator):
        seen.append(generator)
        noise = generator.normal(0, 0.05, x.shape).astype(np.float32)  # fresh augmentation
        for start in range(0, 40, 10):
            yield x[start : start + 10] + noise[start : start + 10], y[start : start + 10]

    generator = np.random.default_rng(3)
    model = small_mlp().compile("cross_entropy", optimizers.SGD(0.05, momentum=0.9))
    model.fit(batches, epochs=4, verbose=0, rng=generator)
    assert len(seen) == 4 and all(g is generator for g in seen)
    assert len(model.history["loss"]) == 4
    assert model.history["loss"][-1] < model.history["loss"][0]


def test_predict_is_batched_and_independent_of_the_batch_size(rng):
    model = Sequential(
        [Conv2D(4, 3), BatchNormalization(), MaxPool2D(2), Flatten(), Dense(3), Softmax()],
        input_shape=(1, 8, 8),
    )
    x = rng.standard_normal((37, 1, 8, 8)).astype(np.float32)
    whole = model.predict_proba(x, batch_size=100)
    np.testing.assert_allclose(model.predict_proba(x, batch_size=5), whole, rtol=1e-6)
    np.testing.assert_array_equal(model.predict(x, batch_size=7), whole.argmax(axis=1))
    assert model.predict(x[:0]).shape == (0,)


def test_summary_counts_trainable_and_non_trainable_parameters():
    model = Sequential([Dense(4), BatchNormalization(), Dense(2)], input_shape=(3,))
    text = model.summary()
    # Dense 3*4+4 = 16, BatchNorm 4+4 trainable + 4+4 running statistics, Dense 4*2+2 = 10
    assert "Total params: 42" in text
    assert "Trainable params: 34" in text
    assert "Non-trainable params: 8" in text
    assert "(None, 4)" in text and "BatchNormalization" in text
    model.freeze(upto=1)
    assert "Trainable params: 18" in model.summary()
    assert "Dense (frozen)" in model.summary()


def test_verbose_controls_the_progress_output(rng, capsys):
    x, y = blobs(rng, n=16)
    model = small_mlp().compile("cross_entropy", "sgd")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert capsys.readouterr().err == ""
    model.fit(x, y, epochs=2, batch_size=8, verbose=2, validation_data=(x, y))
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("epoch 2/2 2/2") and "val_accuracy" in lines[1]


def test_bad_inputs_raise_clear_errors(rng):
    model = small_mlp()
    x, y = blobs(rng, n=8)
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(x, y, verbose=0)
    model.compile("cross_entropy", "sgd")
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        model.fit(x[:, :1], y, verbose=0)
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.array([[1.0, 2.0], [np.nan, 0.0]], dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.array([[3e38, 3e38], [-np.inf, 0.0]], dtype=np.float32))
    assert model.predict(np.full((2, 2), 1e30, dtype=np.float32)).shape == (2,)
    with pytest.raises(ValueError, match="not finite"), np.errstate(all="ignore"):
        model.predict(np.full((2, 2), 3e38, dtype=np.float32))  # the layers overflow
    with pytest.raises(ValueError, match="one target per sample"):
        model.fit(x, y[:3], verbose=0)
    with pytest.raises(ValueError, match="labels must lie in"):
        model.fit(x, y + 5, verbose=0)
    with pytest.raises(ValueError, match="numeric"):
        model.predict(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="separate Softmax"):
        Sequential([Dense(3, activation="softmax")], input_shape=(2,)).compile("cross_entropy")
    with pytest.raises(ValueError, match="at least one layer"):
        Sequential([], input_shape=(2,))


def test_divergence_raises_instead_of_training_on_nan(rng):
    x, y = blobs(rng, n=8)
    model = Sequential([Dense(1)], input_shape=(2,)).compile("mse", optimizers.SGD(1e30))
    with pytest.raises(FloatingPointError, match="diverged"), np.errstate(all="ignore"):
        model.fit(x * 1e10, y.astype(np.float32), epochs=5, verbose=0)


def test_update_normalization_sets_the_plain_mean_of_each_batch_statistics(rng):
    model = Sequential([Dense(4), BatchNormalization(), Dense(3), Softmax()], input_shape=(2,))
    batches = [rng.normal(loc=k, size=(8, 2)).astype(np.float32) for k in range(5)]
    weights, bias = model.layers[0].params["W"], model.layers[0].params["b"]
    # the loop oracle: the normalisation's inputs, batch by batch
    means = [np.mean(x @ weights + bias, axis=0) for x in batches]
    variances = [np.var(x @ weights + bias, axis=0) for x in batches]
    assert model.update_normalization(iter(batches)) == 5
    norm = model.layers[1]
    np.testing.assert_allclose(norm.moving_mean, np.mean(means, axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norm.moving_var, np.mean(variances, axis=0), rtol=1e-5)
    assert norm.momentum == 0.9  # restored
    with pytest.raises(ValueError, match="no batches"):
        model.update_normalization([])


def test_update_normalization_reaches_the_norms_inside_a_block_and_skips_frozen_ones(rng):
    from urgence.nn.layers import BCResBlock, GlobalAveragePooling2D

    model = Sequential(
        [BatchNormalization(), BCResBlock(3, subbands=2), GlobalAveragePooling2D(), Dense(2)],
        input_shape=(1, 8, 6),
    )
    model.layers[0].trainable = False
    frozen_before = model.layers[0].moving_mean.copy()
    batches = [rng.normal(loc=2.0, size=(4, 1, 8, 6)).astype(np.float32) for _ in range(3)]
    block_before = {k: v.copy() for k, v in model.layers[1]._extra_state().items()}
    model.update_normalization(batches)
    once = {k: v.copy() for k, v in model.layers[1]._extra_state().items()}
    assert block_before and all(not np.allclose(once[k], block_before[k]) for k in once)
    np.testing.assert_array_equal(model.layers[0].moving_mean, frozen_before)
    # a plain mean: whatever the statistics were, the same batches give the same ones
    model.update_normalization(batches)
    for key, value in model.layers[1]._extra_state().items():
        np.testing.assert_allclose(value, once[key], rtol=1e-6)

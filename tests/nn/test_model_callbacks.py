"""Callbacks of Sequential.fit: early stopping, checkpoints, the generic hooks."""

from __future__ import annotations

import numpy as np
import pytest

from urgence.nn import Sequential, load_model, optimizers
from urgence.nn.callbacks import Callback, EarlyStopping, ModelCheckpoint
from urgence.nn.layers import Dense, Softmax


def data(rng: np.random.Generator, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, 2)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def model(lr: float = 0.1) -> Sequential:
    layers = [Dense(8, activation="relu"), Dense(2), Softmax()]
    return Sequential(layers, input_shape=(2,)).compile("cross_entropy", optimizers.SGD(lr))


class Recorder(Callback):
    """Keeps the hooks called and the weights after each epoch."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.weights: list[dict[str, np.ndarray]] = []

    def on_train_begin(self) -> None:
        self.events.append("begin")

    def on_epoch_begin(self, epoch: int) -> None:
        self.events.append(f"epoch {epoch}")

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        self.events.append(f"batch {batch}")

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.weights.append(self.model.get_weights())

    def on_train_end(self) -> None:
        self.events.append("end")


def test_hooks_are_called_in_order(rng):
    x, y = data(rng, n=20)
    recorder = Recorder()
    model().fit(x, y, epochs=2, batch_size=10, callbacks=[recorder], verbose=0)
    assert recorder.events == [
        "begin",
        "epoch 0",
        "batch 0",
        "batch 1",
        "epoch 1",
        "batch 0",
        "batch 1",
        "end",
    ]


def test_early_stopping_stops_after_patience_epochs_without_improvement(rng):
    x, y = data(rng)
    stopper = EarlyStopping("loss", patience=2)
    # a learning rate too small to move a float32 weight: the loss never improves
    trained = model(lr=1e-30).fit(
        x, y, epochs=50, batch_size=40, shuffle=False, callbacks=[stopper], verbose=0
    )
    assert len(trained.history["loss"]) == 3
    assert stopper.stopped_epoch == 2


def test_early_stopping_restores_the_best_weights(rng):
    x, y = data(rng)
    # validation labels are the opposite of training labels: the best epoch is the first
    recorder = Recorder()
    stopper = EarlyStopping("val_loss", patience=2, restore_best=True)
    trained = model(lr=0.5).fit(
        x,
        y,
        epochs=30,
        batch_size=8,
        validation_data=(x, 1 - y),
        callbacks=[recorder, stopper],
        verbose=0,
    )
    assert stopper.best_epoch == int(np.argmin(trained.history["val_loss"]))
    assert len(trained.history["loss"]) == stopper.best_epoch + 3
    final = trained.get_weights()
    for key, value in recorder.weights[stopper.best_epoch].items():
        np.testing.assert_array_equal(final[key], value)


def test_checkpoint_writes_a_loadable_model_at_the_best_epoch(rng, tmp_path):
    x, y = data(rng)
    recorder = Recorder()
    checkpoint = ModelCheckpoint(tmp_path / "best", monitor="val_accuracy", metadata={"k": 1})
    trained = model().fit(
        x,
        y,
        epochs=4,
        batch_size=8,
        validation_data=(x, y),
        callbacks=[recorder, checkpoint],
        verbose=0,
    )
    loaded = load_model(tmp_path / "best")
    best = checkpoint.best_epoch
    assert best == int(np.argmax(trained.history["val_accuracy"]))
    assert loaded.metadata["epoch"] == best and loaded.metadata["k"] == 1
    assert loaded.metadata["val_accuracy"] == trained.history["val_accuracy"][best]
    for key, value in recorder.weights[best].items():
        np.testing.assert_array_equal(loaded.get_weights()[key], value)


def test_checkpoint_every_epoch_without_a_monitor(rng, tmp_path):
    x, y = data(rng)
    checkpoint = ModelCheckpoint(tmp_path / "last", save_best_only=False)
    trained = model().fit(x, y, epochs=2, callbacks=[checkpoint], verbose=0)
    np.testing.assert_array_equal(
        load_model(tmp_path / "last").predict_proba(x), trained.predict_proba(x)
    )


def test_a_monitor_fit_does_not_log_is_a_clear_error(rng):
    x, y = data(rng)
    with pytest.raises(ValueError, match="pass validation_data"):
        model().fit(x, y, epochs=2, callbacks=[EarlyStopping("val_loss")], verbose=0)

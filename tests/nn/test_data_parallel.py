"""DataParallel: a batch shared by forked processes gives the one-process step."""

import multiprocessing
import os
import signal
import time

import numpy as np
import pytest

from urgence.nn import Sequential
from urgence.nn.data_parallel import DataParallel
from urgence.nn.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, ReLU, Softmax
from urgence.nn.optimizers import SGD, Adam


def _convnet(optimizer, *, batch_norm=False, dropout=0.0) -> Sequential:
    layers = [Conv2D(4, (3, 3)), ReLU()]
    if batch_norm:
        layers.append(BatchNormalization())
    layers += [Flatten(), Dropout(dropout), Dense(5), Softmax()]
    model = Sequential(layers, input_shape=(1, 6, 7), seed=3)
    return model.compile("cross_entropy", optimizer)


@pytest.mark.parametrize(("processes", "batch"), [(2, 16), (3, 7), (2, 3), (3, 2)])
def test_shared_batch_steps_like_one_process(rng, processes, batch):
    x = rng.standard_normal((4 * batch, 1, 6, 7)).astype(np.float32)
    y = rng.integers(0, 5, 4 * batch)
    alone = _convnet(SGD(0.1, momentum=0.9))
    shared = _convnet(SGD(0.1, momentum=0.9))
    # (3, 2): fewer rows than processes, as at the end of an epoch: the caller takes them all
    with DataParallel(shared, processes=processes, max_batch=max(batch, processes)) as trainer:
        for step in range(4):
            rows = slice(step * batch, (step + 1) * batch)
            expected = alone.train_on_batch(x[rows], y[rows])
            got = trainer.train_on_batch(x[rows], y[rows])
            assert got["loss"] == pytest.approx(expected["loss"], rel=1e-5)
            assert got["accuracy"] == pytest.approx(expected["accuracy"])
    for key, value in alone.get_weights().items():
        np.testing.assert_allclose(shared.get_weights()[key], value, rtol=1e-4, atol=1e-6)
    # the steps moved the weights: the comparison above compares trained weights
    assert not np.allclose(alone.get_weights()["0.W"], _convnet(SGD(0.1)).get_weights()["0.W"])


def test_target_rows_and_frozen_layers(rng):
    x = rng.standard_normal((12, 1, 6, 7)).astype(np.float32)
    targets = np.full((12, 5), 0.05, np.float32)
    targets[np.arange(12), rng.integers(0, 5, 12)] = 0.8
    alone, shared = _convnet(Adam(0.01)), _convnet(Adam(0.01))
    alone.freeze(upto=2)
    shared.freeze(upto=2)
    frozen = shared.get_weights()["0.W"]
    with DataParallel(shared, processes=2, max_batch=12) as trainer:
        for _ in range(2):
            alone.train_on_batch(x, targets)
            trainer.train_on_batch(x, targets)
    np.testing.assert_array_equal(shared.get_weights()["0.W"], frozen)
    np.testing.assert_allclose(
        shared.get_weights()["4.W"], alone.get_weights()["4.W"], rtol=1e-4, atol=1e-6
    )


def test_batch_norm_and_dropout_train(rng):
    # per-share batch statistics and per-process masks: not the one-process step, but it learns
    x = rng.standard_normal((64, 1, 6, 7)).astype(np.float32)
    y = (x[:, 0, :3].sum(axis=(1, 2)) > 0).astype(np.int64) + 2 * (x[:, 0, 3:].mean((1, 2)) > 0)
    model = _convnet(Adam(0.01), batch_norm=True, dropout=0.2)
    with DataParallel(model, processes=2, max_batch=64) as trainer:
        trainer.seed_dropout([0, 1])
        first = trainer.train_on_batch(x, y)["loss"]
        for _ in range(60):
            last = trainer.train_on_batch(x, y)["loss"]
    assert last < 0.5 * first
    assert model.evaluate(x, y)["accuracy"] > 0.8


def test_a_bcresnet_block_trains_in_every_parameter(rng):
    from urgence.nn.layers import BCResBlock, GlobalAveragePooling2D

    x = rng.standard_normal((64, 2, 4, 6)).astype(np.float32)
    y = (x[:, 0].sum(axis=(1, 2)) > 0).astype(np.int64) + 2 * (x[:, 1, :2].mean((1, 2)) > 0)
    layers = [BCResBlock(3, freq_stride=2, subbands=2), GlobalAveragePooling2D(), Dense(4)]
    model = Sequential([*layers, Softmax()], input_shape=(2, 4, 6), seed=3)
    model.compile("cross_entropy", Adam(0.02))
    before = {key: value.copy() for key, value in model.layers[0].params.items()}
    with DataParallel(model, processes=2, max_batch=64) as trainer:
        first = trainer.train_on_batch(x, y)["loss"]
        for _ in range(60):
            last = trainer.train_on_batch(x, y)["loss"]
    assert last < 0.7 * first
    for key, value in model.layers[0].params.items():
        assert not np.allclose(value, before[key]), key


def test_a_failing_worker_is_reported_and_the_trainer_closes(rng):
    x = rng.standard_normal((8, 1, 6, 7)).astype(np.float32)
    y = np.array([0, 1, 2, 3, 0, 1, 2, 99])  # label 99 lands in the worker's share only
    trainer = DataParallel(_convnet(SGD(0.1)), processes=2, max_batch=8)
    workers = [process for process, _ in trainer._workers]
    with pytest.raises(RuntimeError, match="worker failed"):
        trainer.train_on_batch(x, y)
    assert not any(process.is_alive() for process in workers)
    with pytest.raises(RuntimeError, match="closed"):
        trainer.train_on_batch(x, y % 5)


def test_bad_arguments_are_refused(rng):
    model = _convnet(SGD(0.1))
    with pytest.raises(ValueError, match="processes"):
        DataParallel(model, processes=0)
    with DataParallel(model, processes=2, max_batch=4) as trainer:
        with pytest.raises(ValueError, match="max_batch"):
            trainer.train_on_batch(np.zeros((5, 1, 6, 7), np.float32), np.zeros(5, int))
        model.freeze(upto=2)
        with pytest.raises(RuntimeError, match="trainable layers changed"):
            trainer.train_on_batch(np.zeros((4, 1, 6, 7), np.float32), np.zeros(4, int))
    with pytest.raises(RuntimeError, match="compile"):
        DataParallel(Sequential([Dense(2)], input_shape=(3,)))


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (an orphan may wait to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_stop_when_the_caller_dies():
    context = multiprocessing.get_context("fork")
    report = context.Queue()

    def caller():
        trainer = DataParallel(_convnet(SGD(0.1)), processes=3, max_batch=8)
        report.put([process.pid for process, _ in trainer._workers])
        signal.pause()

    process = context.Process(target=caller)
    process.start()
    pids = report.get(timeout=30)
    assert all(_running(pid) for pid in pids)
    os.kill(process.pid, signal.SIGKILL)
    process.join()
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_running(pid) for pid in pids), "a worker outlived its caller"

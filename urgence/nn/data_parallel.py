"""Data-parallel training of a ``Sequential`` over several processes of one machine.

One BLAS thread per process trains this engine's small convolutional models faster than
several threads inside one process (the layers' Python and element-wise work stays on one
core). :class:`DataParallel` instead splits every batch: the calling process and
``processes - 1`` forked workers each run forward and backward on their share of the rows,
the gradients are averaged (weighted by rows, so the result is the whole batch's mean
gradient) and the calling process's optimiser takes the step. Weights, inputs and gradients
travel through shared memory; a pipe carries only "go" and the share's loss.

What differs from one process: batch normalisation normalises each share with its own
statistics (as PyTorch's DistributedDataParallel without SyncBatchNorm does), and the
running averages kept are those of the calling process's share. Without batch
normalisation the step is the single-process step up to float rounding
(``tests/nn/test_data_parallel.py``).

Workers are forked (POSIX only) when the trainer is created: create it after the model is
built, compiled and its layers frozen or unfrozen as they will train; close it (or use it as
a context manager) to stop them.
"""

from __future__ import annotations

import math
import mmap
import multiprocessing
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from urgence.nn import losses as losses_module
from urgence.nn.layers import Dropout
from urgence.nn.model import Sequential


class DataParallel:
    """``train_on_batch`` over ``processes`` processes (the caller and forked workers).

    ``max_batch``: the largest batch that will be given (shared input buffers are sized
    for it).
    """

    def __init__(self, model: Sequential, *, processes: int = 2, max_batch: int = 256) -> None:
        model._require_compiled()
        if processes < 1:
            raise ValueError(f"processes must be >= 1, got {processes}")
        if max_batch < processes:
            raise ValueError(f"max_batch ({max_batch}) must be >= processes ({processes})")
        self.model = model
        self.processes = int(processes)
        self.max_batch = int(max_batch)
        self._keys = self._trainable_keys()
        sizes = [p.size for p in self._trainable_arrays("params")]
        self._offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        n_params = int(self._offsets[-1])
        n_workers = self.processes - 1
        x_row = math.prod(model.input_shape)
        # anonymous shared mappings: a forked child sees the same pages
        self._weights = _shared_floats(n_params)
        self._grads = _shared_floats(max(1, n_workers) * n_params).reshape(-1, n_params)
        self._x = _shared_floats(max(1, n_workers) * max_batch * x_row).reshape(
            -1, max_batch, *model.input_shape
        )
        self._workers: list[tuple[Any, Any]] = []
        self._closed = False
        self._owner_pid = os.getpid()
        context = multiprocessing.get_context("fork")
        for index in range(n_workers):
            parent_end, child_end = context.Pipe()
            process = context.Process(
                target=self._work,
                args=(index, child_end, parent_end),
                daemon=True,
                name=f"dp-worker-{index}",
            )
            process.start()
            child_end.close()
            self._workers.append((process, parent_end))

    # -- set-up helpers -------------------------------------------------------------------
    def _trainable_layers(self) -> list[tuple[int, Any]]:
        model = self.model
        return [
            (index, layer)
            for index, layer in enumerate(model.layers[: model._train_depth])
            if layer.trainable and layer.params
        ]

    def _trainable_keys(self) -> list[str]:
        return [f"{i}.{k}" for i, layer in self._trainable_layers() for k in layer.params]

    def _trainable_arrays(self, kind: str) -> list[np.ndarray]:
        return [
            getattr(layer, kind)[key]
            for _, layer in self._trainable_layers()
            for key in layer.params
        ]

    def _flatten_into(self, arrays: Sequence[np.ndarray], flat: np.ndarray) -> None:
        for array, start, stop in zip(arrays, self._offsets[:-1], self._offsets[1:], strict=True):
            flat[start:stop] = array.reshape(-1)

    def _unflatten_from(self, flat: np.ndarray, arrays: Sequence[np.ndarray]) -> None:
        for array, start, stop in zip(arrays, self._offsets[:-1], self._offsets[1:], strict=True):
            array[...] = flat[start:stop].reshape(array.shape)

    # -- the worker -----------------------------------------------------------------------
    def _share(self, x: np.ndarray, y: Any) -> tuple[float, int, int]:
        """Forward and backward on one share: (mean loss, correct count, rows); gradients
        are left in the layers."""
        model = self.model
        out = model._forward(x, training=True, depth=model._train_depth)
        loss, grad = model.loss.value_and_grad(out, y)
        correct = losses_module.accuracy_count(out, y)
        model._backward(grad)
        return float(loss), int(correct), int(x.shape[0])

    def _work(self, index: int, conn: Any, parent_end: Any) -> None:
        # the fork copied the caller's ends of the pipes: closed here, a pipe reports EOF
        # (and the worker returns) when the caller dies without a word
        parent_end.close()
        for _, earlier in self._workers:
            earlier.close()
        params = self._trainable_arrays("params")
        while True:
            try:
                message = conn.recv()
            except EOFError:
                return
            if message[0] == "stop":
                return
            try:
                if message[0] == "seed":
                    for layer_index, layer in enumerate(self.model.layers):
                        if isinstance(layer, Dropout):
                            layer.build(
                                layer.input_shape,
                                np.random.default_rng([*message[1], layer_index, index + 1]),
                            )
                    conn.send(("ok",))
                    continue
                _, rows, y = message
                self._unflatten_from(self._weights, params)
                loss, correct, _ = self._share(self._x[index, :rows], y)
                self._flatten_into(self._trainable_arrays("grads"), self._grads[index])
                conn.send(("ok", loss, correct))
            except Exception as exc:  # reported to the caller, who raises it
                conn.send(("error", f"{type(exc).__name__}: {exc}"))

    # -- the API --------------------------------------------------------------------------
    def seed_dropout(self, entropy: Sequence[int]) -> None:
        """Give the workers' Dropout layers generators drawn from ``entropy`` and their
        index (the caller seeds its own model's layers): the same entropy, the same masks."""
        self._check_open()
        for _, conn in self._workers:
            conn.send(("seed", [int(e) for e in entropy]))
        for _, conn in self._workers:
            self._receive(conn)

    def train_on_batch(self, x: np.ndarray, y: Any) -> dict[str, float]:
        """One optimisation step on ``x: (N, *input_shape)`` and targets ``y`` split over the
        processes; returns the batch's ``loss`` and ``accuracy`` (before the step), as
        ``Sequential.train_on_batch`` does."""
        self._check_open()
        model = self.model
        x = model._check_inputs(x)
        y = model._check_targets(y, x.shape[0])
        n = x.shape[0]
        if n > self.max_batch:
            raise ValueError(f"batch of {n} rows is larger than max_batch={self.max_batch}")
        if self._trainable_keys() != self._keys:
            raise RuntimeError("the trainable layers changed since DataParallel was created")
        if n < self.processes:  # a share would be empty (the last rows of an epoch)
            return model.train_on_batch(x, y)
        bounds = np.linspace(0, n, self.processes + 1).round().astype(int)
        # fetched each step: loading weights may have replaced the arrays
        self._flatten_into(self._trainable_arrays("params"), self._weights)
        for index, (_, conn) in enumerate(self._workers):
            start, stop = bounds[index + 1], bounds[index + 2]
            self._x[index, : stop - start] = x[start:stop]
            conn.send(("step", int(stop - start), y[start:stop]))
        try:
            loss, correct, rows = self._share(x[: bounds[1]], y[: bounds[1]])
        finally:
            # every worker's reply is read before anything is raised: the pipes stay in step
            replies = [self._receive_raw(conn) for _, conn in self._workers]
        replies = [self._checked(reply) for reply in replies]
        total_loss, total_correct = loss * rows, correct
        own_grads = self._trainable_arrays("grads")
        for grad in own_grads:
            grad *= rows / n
        for index, reply in enumerate(replies):
            share = int(bounds[index + 2] - bounds[index + 1])
            total_loss += reply[1] * share
            total_correct += reply[2]
            flat = self._grads[index]
            for grad, start, stop in zip(
                own_grads, self._offsets[:-1], self._offsets[1:], strict=True
            ):
                grad += (share / n) * flat[start:stop].reshape(grad.shape)
        mean_loss = total_loss / n
        if not math.isfinite(mean_loss):
            raise FloatingPointError(
                f"the loss became {mean_loss}: training diverged (lower the learning rate?)"
            )
        model._step()
        return {"loss": mean_loss, "accuracy": total_correct / n}

    def _receive(self, conn: Any) -> tuple:
        return self._checked(self._receive_raw(conn))

    @staticmethod
    def _receive_raw(conn: Any) -> tuple:
        try:
            return conn.recv()
        except (EOFError, OSError):
            return ("error", "the worker process died")

    def _checked(self, reply: tuple) -> tuple:
        if reply[0] == "error":
            self.close()
            raise RuntimeError(f"a data-parallel worker failed: {reply[1]}")
        return reply

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this DataParallel trainer is closed")

    def close(self) -> None:
        """Stop the workers (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for _, conn in self._workers:
            try:
                conn.send(("stop",))
            except (BrokenPipeError, OSError):
                pass
            conn.close()
        for process, _ in self._workers:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()

    def __enter__(self) -> DataParallel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_workers", None) is not None and os.getpid() == self._owner_pid:
            self.close()


def _shared_floats(n: int) -> np.ndarray:
    """``n`` float32 values in an anonymous shared mapping (seen by forked children)."""
    buffer = mmap.mmap(-1, max(1, n) * 4, flags=mmap.MAP_SHARED)
    return np.frombuffer(buffer, dtype=np.float32, count=n)

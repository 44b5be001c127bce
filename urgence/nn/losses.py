"""Losses: a batch mean, returned together with its gradient with respect to the model output.

``SoftmaxCrossEntropy`` is fused: it takes *logits* and computes the softmax with the
log-sum-exp shift, so huge logits neither overflow nor lose precision, and its gradient is
the simple ``(softmax(z) - y) / N``. When a model ends with a ``Softmax`` layer and is compiled
with this loss, ``Sequential`` skips that last layer during training and evaluation and hands
the logits to the loss; ``predict_proba`` runs the whole stack, ``Softmax`` included.

Targets are integer labels ``(N,)`` or one-hot / probability rows ``(N, K)``. A target that
does not fit the output (wrong length, label out of range) raises ``ValueError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def check_labels(labels: np.ndarray, n: int, k: int) -> None:
    """Raise ``ValueError`` unless ``labels`` is ``(n,)`` integers in ``[0, k)``."""
    if labels.shape != (n,):
        raise ValueError(f"expected {n} labels, got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"integer labels expected, got dtype {labels.dtype}")
    if n and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must lie in [0, {k}), got [{labels.min()}, {labels.max()}]")


def _one_hot_target(target: np.ndarray, n: int, k: int, dtype: np.dtype) -> np.ndarray:
    """``(N, K)`` target rows of ``dtype`` from integer labels ``(N,)`` or rows ``(N, K)``."""
    target = np.asarray(target)
    if target.ndim == 1:
        check_labels(target, n, k)
        rows = np.zeros((n, k), dtype=dtype)
        rows[np.arange(n), target] = 1
        return rows
    if target.shape != (n, k):
        raise ValueError(f"target of shape {target.shape} does not match the output ({n}, {k})")
    return target.astype(dtype, copy=False)


class Loss:
    """Base class: ``value_and_grad(output, target) -> (mean loss, d loss / d output)``."""

    name = "loss"
    #: True when the loss takes logits, so a final Softmax layer is fused into it.
    from_logits = False

    def value_and_grad(self, output: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def value(self, output: np.ndarray, target: np.ndarray) -> float:
        return self.value_and_grad(output, target)[0]

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}


class MeanSquaredError(Loss):
    """Mean over every element of ``(output - target)**2``.

    ``output: (N, K)`` floating; ``target``: same shape, or ``(N,)`` when ``K == 1`` (values)
    or integer labels ``(N,)`` when ``K > 1`` (turned one-hot).
    Gradient ``2 (output - target) / (N K)``.
    """

    name = "mse"

    def value_and_grad(self, output: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        n, k = output.shape[0], int(np.prod(output.shape[1:]))
        target = np.asarray(target)
        if k == 1 and target.shape in ((n,), (n, 1)):
            target = target.reshape(output.shape).astype(output.dtype, copy=False)
        elif target.shape != output.shape:
            target = _one_hot_target(target, n, k, output.dtype).reshape(output.shape)
        diff = output - target
        value = float(np.vdot(diff, diff)) / diff.size
        diff *= 2.0 / diff.size
        return value, diff


class SoftmaxCrossEntropy(Loss):
    """Softmax followed by cross-entropy, fused: ``mean_i(logsumexp(z_i) - <y_i, z_i>)``.

    ``output``: logits ``(N, K)`` floating. ``target``: labels ``(N,)`` int or rows ``(N, K)``
    summing to one. Gradient ``(softmax(z) - y) / N``, same dtype as the logits.
    """

    name = "cross_entropy"
    from_logits = True

    def value_and_grad(self, output: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        n, k = output.shape
        shift = output.max(axis=1, keepdims=True)
        probs = output - shift
        np.exp(probs, out=probs)
        sums = probs.sum(axis=1, keepdims=True)
        log_sum_exp = np.log(sums) + shift
        target = np.asarray(target)
        if target.ndim == 1 and target.shape == (n,) and target.dtype.kind in "iu":
            check_labels(target, n, k)
            picked = output[np.arange(n), target]
            value = float(np.mean(log_sum_exp[:, 0] - picked, dtype=np.float64))
            probs /= sums
            probs[np.arange(n), target] -= 1
        else:
            rows = _one_hot_target(target, n, k, output.dtype)
            value = float(
                np.mean(log_sum_exp[:, 0] * rows.sum(axis=1) - (rows * output).sum(axis=1))
            )
            probs /= sums
            probs -= rows
        probs /= n
        return value, probs


LOSSES: dict[str, type[Loss]] = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "cross_entropy": SoftmaxCrossEntropy,
    "categorical_crossentropy": SoftmaxCrossEntropy,
    "sparse_categorical_crossentropy": SoftmaxCrossEntropy,
}


def get(loss: str | Loss) -> Loss:
    """A ``Loss`` from a name in ``LOSSES`` or an instance (returned as is)."""
    if isinstance(loss, Loss):
        return loss
    try:
        return LOSSES[loss]()
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {loss!r}; known: {sorted(LOSSES)}") from None


def accuracy_count(output: np.ndarray, target: np.ndarray) -> int:
    """How many rows of ``output: (N, K)`` pick the right class.

    ``target``: labels ``(N,)`` or rows ``(N, K)`` (argmax). A single output column is read as a
    probability thresholded at 0.5 against a 0/1 target.
    """
    target = np.asarray(target)
    if output.shape[1] == 1:
        predicted = output[:, 0] > 0.5
        return int(np.count_nonzero(predicted == (target.reshape(-1) > 0.5)))
    labels = target if target.ndim == 1 else target.argmax(axis=1)
    return int(np.count_nonzero(output.argmax(axis=1) == labels))

"""Losses: values against closed forms, gradients against float64 finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from urgence.nn import losses


def finite_difference(loss: losses.Loss, output: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Central differences of ``loss.value`` in float64."""
    grad = np.zeros_like(output)
    step = 1e-6
    for index in np.ndindex(output.shape):
        plus, minus = output.copy(), output.copy()
        plus[index] += step
        minus[index] -= step
        grad[index] = (loss.value(plus, target) - loss.value(minus, target)) / (2 * step)
    return grad


def test_mse_value_and_gradient(rng):
    output = rng.standard_normal((5, 3))
    target = rng.standard_normal((5, 3))
    loss = losses.MeanSquaredError()
    value, grad = loss.value_and_grad(output, target)
    assert value == pytest.approx(np.mean((output - target) ** 2))
    np.testing.assert_allclose(grad, finite_difference(loss, output, target), atol=1e-7)


def test_mse_accepts_a_column_of_values_or_integer_labels():
    loss = losses.MeanSquaredError()
    assert loss.value(np.array([[1.0], [3.0]]), np.array([0.0, 1.0])) == pytest.approx(2.5)
    one_hot = loss.value(np.array([[1.0, 0.0], [0.0, 0.5]]), np.array([0, 1]))
    assert one_hot == pytest.approx(0.25 / 4)


def test_cross_entropy_value_matches_the_definition(rng):
    logits = rng.standard_normal((6, 4))
    labels = np.array([0, 1, 2, 3, 0, 1])
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(probs[np.arange(6), labels]))
    assert losses.SoftmaxCrossEntropy().value(logits, labels) == pytest.approx(expected)


def test_cross_entropy_gradient_is_p_minus_y_over_n(rng):
    logits = rng.standard_normal((6, 4))
    labels = np.array([3, 1, 2, 0, 0, 1])
    loss = losses.SoftmaxCrossEntropy()
    _, grad = loss.value_and_grad(logits, labels)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(grad, (probs - np.eye(4)[labels]) / 6, atol=1e-12)
    np.testing.assert_allclose(grad, finite_difference(loss, logits, labels), atol=1e-7)


def test_cross_entropy_one_hot_and_labels_agree_and_soft_targets_differentiate(rng):
    logits = rng.standard_normal((5, 3))
    labels = np.array([2, 0, 1, 1, 0])
    loss = losses.SoftmaxCrossEntropy()
    value_labels, grad_labels = loss.value_and_grad(logits, labels)
    value_rows, grad_rows = loss.value_and_grad(logits, np.eye(3)[labels])
    assert value_rows == pytest.approx(value_labels)
    np.testing.assert_allclose(grad_rows, grad_labels, atol=1e-12)
    soft = rng.dirichlet(np.ones(3), size=5)
    _, grad_soft = loss.value_and_grad(logits, soft)
    np.testing.assert_allclose(grad_soft, finite_difference(loss, logits, soft), atol=1e-7)


def test_cross_entropy_is_stable_with_huge_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [-5e4, 5e4, 0.0]], dtype=np.float32)
    value, grad = losses.SoftmaxCrossEntropy().value_and_grad(logits, np.array([2, 1]))
    assert np.isfinite(value) and np.isfinite(grad).all()
    assert value == pytest.approx(2000.0 / 2)  # row 0 costs 2000, row 1 costs 0
    assert grad.dtype == np.float32
    np.testing.assert_allclose(grad, [[0.5, 0.0, -0.5], [0.0, 0.0, 0.0]], atol=1e-6)


@pytest.mark.parametrize(
    "target, message",
    [
        (np.array([0, 3]), "labels must lie in"),
        (np.array([0, -1]), "labels must lie in"),
        (np.array([0, 1, 2]), "expected 2 labels"),
        (np.array([0.0, 1.0]), "integer labels"),
        (np.zeros((2, 4)), "does not match"),
    ],
)
def test_cross_entropy_rejects_targets_that_do_not_fit(target, message):
    with pytest.raises(ValueError, match=message):
        losses.SoftmaxCrossEntropy().value_and_grad(np.zeros((2, 3)), target)


def test_get_by_name_and_unknown_name():
    assert isinstance(losses.get("sparse_categorical_crossentropy"), losses.SoftmaxCrossEntropy)
    assert isinstance(losses.get("mse"), losses.MeanSquaredError)
    with pytest.raises(ValueError, match="unknown loss"):
        losses.get("hinge")


def test_accuracy_count_for_labels_rows_and_single_column():
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert losses.accuracy_count(scores, np.array([1, 0, 0])) == 2
    assert losses.accuracy_count(scores, np.eye(2)[[1, 1, 1]]) == 2
    assert losses.accuracy_count(np.array([[0.9], [0.2], [0.6]]), np.array([1, 0, 0])) == 2

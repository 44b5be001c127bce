"""Activation functions as pure array functions (stable forms).

The layers wrapping them (``ReLU``, ``Sigmoid``, ... in :mod:`urgence.nn.layers.activation`)
use these; so may losses (``log_softmax`` for a log-sum-exp cross-entropy). Every function
keeps the dtype of its input and accepts any shape.
"""

from __future__ import annotations

import numpy as np


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0)."""
    return np.maximum(x, 0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow: exp only ever sees -|x|."""
    e = np.exp(-np.abs(x))
    out = 1 / (1 + e)
    # For x < 0, sigmoid(x) = e / (1 + e) = 1 - sigmoid(|x|).
    return np.where(x >= 0, out, e * out)


def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x) / sum(exp(x)) along ``axis``, shifted by the max so exp never overflows."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(softmax(x)) by log-sum-exp: finite even when softmax underflows to 0."""
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

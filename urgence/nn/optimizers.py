"""Optimisers: they own the learning rate (a schedule), the step counter and their state.

``step(params, grads)`` updates ``params`` in place; both are dicts keyed by parameter path
(``"3.W"`` = parameter ``W`` of layer 3). The model passes only the parameters of trainable
layers, so frozen parameters are never touched and get no state. State (momentum, Adam
moments) lives in ``self.state[slot][path]`` (float32, the parameter's shape) and is saved
and restored with ``state_dict()`` / ``load_state_dict()`` for resuming training.

Weight decay applies to weight arrays (two or more axes: dense matrices, convolution kernels),
never to biases or batch-norm scales and shifts (one axis): ``SGD`` uses an L2 penalty added
to the gradient (so it goes through the momentum), ``Adam`` uses decoupled decay (AdamW:
``p -= lr * weight_decay * p`` beside the Adam step).

With ``ema_momentum`` the optimiser also keeps an exponential moving average of each
parameter (slot ``"ema"``, as Keras's ``use_ema``): ``ema = d ema + (1 - d) p`` after every
step, ``d = min(ema_momentum, (1 + t) / (10 + t))`` at step ``t`` (TensorFlow's
``ExponentialMovingAverage`` with ``num_updates``), so a short run is not pulled towards its
first steps. ``averaged()`` returns the averages, to evaluate or export them in place of the
last weights.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from urgence.nn.schedules import Constant, Schedule
from urgence.nn.schedules import from_config as schedule_from_config


class Optimizer:
    """Base class: the schedule, the step counter, per-parameter state and scratch buffers."""

    name = "optimizer"
    #: names of the per-parameter state arrays
    slots: tuple[str, ...] = ()

    def __init__(
        self,
        lr: float | Schedule = 0.01,
        *,
        weight_decay: float = 0.0,
        ema_momentum: float | None = None,
    ) -> None:
        self.schedule = lr if isinstance(lr, Schedule) else Constant(lr)
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        if ema_momentum is not None and not 0 < ema_momentum < 1:
            raise ValueError(f"ema_momentum must lie in (0, 1), got {ema_momentum}")
        self.weight_decay = float(weight_decay)
        self.ema_momentum = None if ema_momentum is None else float(ema_momentum)
        self.iterations = 0
        self.state: dict[str, dict[str, np.ndarray]] = {slot: {} for slot in self._state_slots()}
        # one reusable buffer per parameter, so an update allocates nothing
        self._scratch: dict[str, np.ndarray] = {}

    @property
    def lr(self) -> float:
        """The learning rate of the next step."""
        return self.schedule(self.iterations)

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """One update of every ``params[path]`` (float32, in place) from ``grads[path]``."""
        lr = self.lr
        for path, param in params.items():
            grad = grads[path]
            if grad.shape != param.shape:
                raise ValueError(f"{path}: gradient {grad.shape} does not match {param.shape}")
            self._update(path, param, grad, lr)
        self.iterations += 1
        if self.ema_momentum is not None:
            self._average(params)

    def _state_slots(self) -> tuple[str, ...]:
        return self.slots + (("ema",) if self.ema_momentum is not None else ())

    def _average(self, params: dict[str, np.ndarray]) -> None:
        decay = min(self.ema_momentum, (1 + self.iterations) / (10 + self.iterations))
        averages = self.state["ema"]
        for path, param in params.items():
            average = averages.get(path)
            if average is None:
                averages[path] = param.copy()
                continue
            scratch = self._buffer(path, param)
            np.subtract(param, average, out=scratch)
            scratch *= 1 - decay
            average += scratch

    def averaged(self) -> dict[str, np.ndarray]:
        """Copies of the moving averages of the parameters stepped so far, keyed by path."""
        if self.ema_momentum is None:
            raise ValueError("this optimizer keeps no moving average (ema_momentum is None)")
        return {path: average.copy() for path, average in self.state["ema"].items()}

    def _update(self, path: str, param: np.ndarray, grad: np.ndarray, lr: float) -> None:
        raise NotImplementedError

    def _decays(self, param: np.ndarray) -> bool:
        return self.weight_decay > 0 and param.ndim >= 2

    def _slot(self, slot: str, path: str, param: np.ndarray) -> np.ndarray:
        arrays = self.state[slot]
        if path not in arrays:
            arrays[path] = np.zeros_like(param)
        return arrays[path]

    def _buffer(self, path: str, param: np.ndarray) -> np.ndarray:
        buffer = self._scratch.get(path)
        if buffer is None or buffer.shape != param.shape or buffer.dtype != param.dtype:
            buffer = self._scratch[path] = np.empty_like(param)
        return buffer

    # -- persistence ------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Arrays to save: ``"iterations"`` and ``"<slot>/<path>"`` (e.g. ``"m/3.W"``)."""
        arrays = {"iterations": np.array(self.iterations, dtype=np.int64)}
        for slot, by_path in self.state.items():
            arrays.update({f"{slot}/{path}": value for path, value in by_path.items()})
        return arrays

    def load_state_dict(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore what ``state_dict`` returned; ``ValueError`` on an unknown slot or key."""
        if "iterations" not in arrays:
            raise ValueError("optimizer state has no 'iterations'")
        state: dict[str, dict[str, np.ndarray]] = {slot: {} for slot in self._state_slots()}
        for key, value in arrays.items():
            if key == "iterations":
                continue
            slot, _, path = key.partition("/")
            if slot not in state or not path:
                raise ValueError(f"{self.name}: unexpected optimizer state {key!r}")
            state[slot][path] = np.array(value, dtype=np.float32)
        self.iterations = int(arrays["iterations"])
        self.state = state

    def get_config(self) -> dict[str, Any]:
        config = {
            "name": self.name,
            "lr": self.schedule.get_config(),
            "weight_decay": self.weight_decay,
        }
        if self.ema_momentum is not None:
            config["ema_momentum"] = self.ema_momentum
        return config


class SGD(Optimizer):
    """Gradient descent with the seed's momentum.

    ``omega_{k+1} = momentum * omega_k + lr_k * grad_k`` then ``x_{k+1} = x_k - omega_{k+1}``
    (``omega_0 = 0``); ``momentum=0`` is plain gradient descent. L2 weight decay adds
    ``weight_decay * x_k`` to the gradient of weight arrays.
    """

    name = "sgd"
    slots = ("velocity",)

    def __init__(
        self,
        lr: float | Schedule = 0.01,
        *,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        ema_momentum: float | None = None,
    ) -> None:
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        super().__init__(lr, weight_decay=weight_decay, ema_momentum=ema_momentum)
        self.momentum = float(momentum)

    def _update(self, path: str, param: np.ndarray, grad: np.ndarray, lr: float) -> None:
        step = self._buffer(path, param)
        if self._decays(param):
            np.multiply(param, self.weight_decay, out=step)
            step += grad
            step *= lr
        else:
            np.multiply(grad, lr, out=step)
        if self.momentum:
            velocity = self._slot("velocity", path, param)
            velocity *= self.momentum
            velocity += step
            step = velocity
        param -= step

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum}


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction; ``weight_decay`` is decoupled (AdamW).

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g**2``,
    ``x -= lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1**t)``,
    ``v_hat = v / (1 - b2**t)``, ``t`` counting from 1; computed in the equivalent form
    ``lr * sqrt(1 - b2**t) / (1 - b1**t) * m / (sqrt(v) + eps * sqrt(1 - b2**t))``.
    """

    name = "adam"
    slots = ("m", "v")

    def __init__(
        self,
        lr: float | Schedule = 1e-3,
        *,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-7,
        weight_decay: float = 0.0,
        ema_momentum: float | None = None,
    ) -> None:
        for key, value in (("beta1", beta1), ("beta2", beta2)):
            if not 0 <= value < 1:
                raise ValueError(f"{key} must lie in [0, 1), got {value}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        super().__init__(lr, weight_decay=weight_decay, ema_momentum=ema_momentum)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def _update(self, path: str, param: np.ndarray, grad: np.ndarray, lr: float) -> None:
        t = self.iterations + 1
        correction2 = math.sqrt(1 - self.beta2**t)
        step_size = lr * correction2 / (1 - self.beta1**t)
        m = self._slot("m", path, param)
        v = self._slot("v", path, param)
        scratch = self._buffer(path, param)
        m *= self.beta1
        np.multiply(grad, 1 - self.beta1, out=scratch)
        m += scratch
        v *= self.beta2
        np.multiply(grad, grad, out=scratch)
        scratch *= 1 - self.beta2
        v += scratch
        if self._decays(param):
            param *= 1 - lr * self.weight_decay
        np.sqrt(v, out=scratch)
        scratch += self.eps * correction2
        np.divide(m, scratch, out=scratch)
        scratch *= step_size
        param -= scratch

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam}


def get(optimizer: str | Optimizer) -> Optimizer:
    """An optimiser from a name in ``OPTIMIZERS`` (default settings) or an instance (as is)."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    try:
        return OPTIMIZERS[optimizer]()
    except (KeyError, TypeError):
        raise ValueError(f"unknown optimizer {optimizer!r}; known: {sorted(OPTIMIZERS)}") from None


def from_config(config: dict[str, Any]) -> Optimizer:
    """Rebuild an optimiser (fresh state) from ``get_config()``; ``ValueError`` if unknown."""
    config = dict(config)
    name = config.pop("name", None)
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; known: {sorted(OPTIMIZERS)}")
    lr = config.pop("lr")
    schedule = schedule_from_config(lr) if isinstance(lr, dict) else lr
    return OPTIMIZERS[name](schedule, **config)

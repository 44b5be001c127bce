"""Callbacks for ``Sequential.fit``: hooks at the start and end of training, epochs and batches.

``logs`` passed to ``on_epoch_end`` holds the epoch's ``loss`` and ``accuracy`` (and
``val_loss``, ``val_accuracy`` with validation data). A callback stops training by setting
``self.model.stop_training = True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from urgence.nn.model import Sequential


class Callback:
    """Base class: every hook does nothing; ``self.model`` is set by ``fit``."""

    model: Sequential

    def set_model(self, model: Sequential) -> None:
        self.model = model

    def on_train_begin(self) -> None:
        pass

    def on_train_end(self) -> None:
        pass

    def on_epoch_begin(self, epoch: int) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        pass

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        pass


class _Monitor(Callback):
    """Tracks the best value of ``logs[monitor]``; ``mode`` "auto" maximises accuracies."""

    def __init__(self, monitor: str, mode: str, min_delta: float) -> None:
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
        self.monitor, self.mode, self.min_delta = monitor, mode, abs(min_delta)
        self.best = np.inf if mode == "min" else -np.inf
        self.best_epoch = -1

    def on_train_begin(self) -> None:
        self.best = np.inf if self.mode == "min" else -np.inf
        self.best_epoch = -1

    def _improved(self, epoch: int, logs: dict[str, float]) -> bool:
        """Record ``logs[monitor]``; True when it beats the best so far by ``min_delta``."""
        if self.monitor not in logs:
            raise ValueError(
                f"{type(self).__name__} monitors {self.monitor!r} but fit logs only "
                f"{sorted(logs)} (pass validation_data to fit, or monitor 'loss')"
            )
        value = logs[self.monitor]
        if self.mode == "min":
            better = value < self.best - self.min_delta
        else:
            better = value > self.best + self.min_delta
        if better:
            self.best, self.best_epoch = value, epoch
        return better


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    With ``restore_best``, the weights of the best epoch are put back at the end of training.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best: bool = True,
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        self.patience = patience
        self.restore_best = restore_best
        self.stopped_epoch: int | None = None
        self._best_state: dict[str, np.ndarray] | None = None

    def on_train_begin(self) -> None:
        super().on_train_begin()
        self.stopped_epoch = None
        self._best_state = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self._improved(epoch, logs):
            if self.restore_best:
                self._best_state = {k: v.copy() for k, v in self.model.get_weights().items()}
        elif epoch - self.best_epoch >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self) -> None:
        if self.restore_best and self._best_state is not None:
            self.model.set_weights(self._best_state)


class ModelCheckpoint(_Monitor):
    """Save the model to ``path`` (stem, see ``Sequential.save``) after each epoch, or only when
    ``monitor`` improves with ``save_best_only``. ``metadata`` is saved with it."""

    def __init__(
        self,
        path: str | Path,
        *,
        monitor: str = "val_loss",
        save_best_only: bool = True,
        mode: str = "auto",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(monitor, mode, 0.0)
        self.path = Path(path)
        self.save_best_only = save_best_only
        self.metadata = metadata

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if not self.save_best_only or self._improved(epoch, logs):
            metadata = {**(self.metadata or {}), "epoch": epoch, **logs}
            self.model.save(self.path, metadata=metadata)

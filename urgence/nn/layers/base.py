"""The layer protocol shared by every layer of the engine.

Conventions (DESIGN.md): ``__init__`` stores hyper-parameters only; ``build`` creates the
parameters from the input shape and a seeded generator; ``forward`` caches only what
``backward`` needs; ``backward`` returns the gradient with respect to the input and fills
``grads`` (same keys as ``params``). Gradients are those of the batch-mean loss: the loss
divides by the batch size once, layers never divide again.

Dtypes: parameters are created float32; a layer computes in the dtype of its input (float32
in training and inference, float64 in gradient checks, where the parameters are cast to
float64 too).

Two switches shape ``backward``:

* ``trainable = False`` (frozen, for transfer learning): no parameter gradient is computed and
  ``grads`` is left empty; the optimiser skips the layer. Unrelated to ``training``.
* ``needs_input_grad = False`` (set by the model on its first layer): ``backward`` returns
  ``None`` instead of computing a gradient nobody reads.

Every misuse (wrong input shape, calling ``forward`` before ``build``, impossible
hyper-parameters) raises :class:`LayerError`, a ``ValueError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Shape = tuple[int, ...]


class LayerError(ValueError):
    """Bad hyper-parameters, an unbuilt layer, or an input of the wrong shape."""


class Layer:
    """Base class. Shapes exclude the batch axis; data is channels-first ``(N, C, H, W)``."""

    def __init__(self, *, name: str | None = None, trainable: bool = True) -> None:
        self.name = name
        self.trainable = trainable
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None
        self.built = False
        self.needs_input_grad = True

    # -- construction -------------------------------------------------------------------
    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        """Create parameters for inputs of ``input_shape`` (no batch axis)."""
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def _check_input(self, x: np.ndarray) -> None:
        """Raise :class:`LayerError` unless ``x`` is a float32/float64 batch of ``input_shape``."""
        if not self.built:
            raise LayerError(f"{type(self).__name__}: call build() before forward()")
        if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64):
            raise LayerError(
                f"{type(self).__name__}: expected a float32 (or float64) numpy array, "
                f"got {type(x).__name__} {getattr(x, 'dtype', '')}"
            )
        if x.shape[1:] != self.input_shape:
            expected = ", ".join(map(str, ("N", *self.input_shape)))
            raise LayerError(f"{type(self).__name__}: expected input ({expected}), got {x.shape}")

    # -- computation --------------------------------------------------------------------
    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    # -- description --------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Hyper-parameters, JSON-serialisable, enough to rebuild the layer: ``cls(**config)``."""
        return {"name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        return cls(**config)

    def count_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def state(self) -> dict[str, np.ndarray]:
        """Arrays saved with the model: parameters plus non-trained state (e.g. running means)."""
        return {**self.params, **self._extra_state()}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        for key, value in arrays.items():
            target = self.params if key in self.params else self._extra_state()
            if key not in target:
                raise KeyError(key)
            if target[key].shape != value.shape:
                raise ValueError(
                    f"{type(self).__name__}.{key}: expected shape {target[key].shape}, "
                    f"got {value.shape}"
                )
            target[key][...] = value

    def _extra_state(self) -> dict[str, np.ndarray]:
        """Saved, non-trained arrays (updated in place by ``load_state``)."""
        return {}

    def normalizations(self) -> list[Layer]:
        """The batch normalisations this layer is or holds (their moving statistics are
        recomputed by ``Sequential.update_normalization``)."""
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"

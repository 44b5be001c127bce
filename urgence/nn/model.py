"""``Sequential``: a stack of layers with fit / evaluate / predict, in the Keras manner.

Randomness: ``seed`` feeds a ``numpy.random.SeedSequence`` split in two streams, one for the
layers' ``build`` (initial weights, dropout masks) and one for shuffling in ``fit`` (unless
``fit`` is given its own ``rng``). Same seed and same calls give bit-identical weights.

Softmax + cross-entropy: when the model ends with a ``Softmax`` layer and is compiled with a
loss taking logits (``SoftmaxCrossEntropy``), training and ``evaluate`` stop before that
layer and hand the logits to the fused loss (stable, gradient ``(p - y) / N``);
``predict_proba`` runs every layer, so it returns probabilities. A cross-entropy model with no
final ``Softmax`` gets one applied by ``predict_proba``.

Transfer learning: layers are objects that can be shared, e.g.
``Sequential(base.layers[:-2] + [Dense(14), Softmax()], input_shape=base.input_shape)`` reuses
the trained (already built) layers of ``base`` and builds only the new ones; set
``layer.trainable = False`` (or ``model.freeze(upto=k)``) to keep them fixed. The layers are
shared, not copied: training the new model changes the shared layers of ``base`` too.

Custom loops (fresh augmented batches every epoch): either pass ``fit`` a callable
``batches(rng) -> iterable of (x, y)``, called once per epoch, or call ``train_on_batch``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from urgence.nn import activations
from urgence.nn import losses as losses_module
from urgence.nn import optimizers as optimizers_module
from urgence.nn.callbacks import Callback
from urgence.nn.layers import ActivatedLayer, Layer, Shape, Softmax
from urgence.nn.progress import ProgressBar

BatchSource = Callable[[np.random.Generator], Iterable[tuple[np.ndarray, np.ndarray]]]


class Sequential:
    """Layers applied in order to inputs of ``input_shape`` (no batch axis).

    ``input_shape``: ``(C, H, W)`` for images / spectrograms, ``(D,)`` for vectors.
    """

    def __init__(self, layers: Sequence[Layer], *, input_shape: Shape, seed: int = 0) -> None:
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for index, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ValueError(f"layer {index} is {type(layer).__name__}, not a Layer")
        self.layers: list[Layer] = list(layers)
        self.input_shape: Shape = tuple(int(d) for d in input_shape)
        self.seed = int(seed)
        init_seed, train_seed = np.random.SeedSequence(self.seed).spawn(2)
        self.rng = np.random.default_rng(train_seed)
        self._build(np.random.default_rng(init_seed))
        self.loss: losses_module.Loss | None = None
        self.optimizer: optimizers_module.Optimizer | None = None
        self.history: dict[str, list[float]] = {}
        self.metadata: dict[str, Any] = {}
        self.stop_training = False
        self._train_depth = len(self.layers)  # layers run when training (fused softmax: one less)

    def _build(self, rng: np.random.Generator) -> None:
        shape = self.input_shape
        for index, layer in enumerate(self.layers):
            if layer.built:
                if layer.input_shape != shape:
                    raise ValueError(
                        f"layer {index} ({type(layer).__name__}) was built for inputs "
                        f"{layer.input_shape} but receives {shape}"
                    )
            else:
                layer.build(shape, rng)
            shape = layer.output_shape

    @property
    def output_shape(self) -> Shape:
        return self.layers[-1].output_shape

    # -- set-up -----------------------------------------------------------------------
    def compile(
        self,
        loss: str | losses_module.Loss = "cross_entropy",
        optimizer: str | optimizers_module.Optimizer = "adam",
    ) -> Sequential:
        """Choose the loss and the optimiser (names from ``losses.LOSSES`` /
        ``optimizers.OPTIMIZERS``, or instances). Returns self."""
        self.loss = losses_module.get(loss)
        self.optimizer = optimizers_module.get(optimizer)
        last = self.layers[-1]
        if (
            self.loss.from_logits
            and isinstance(last, ActivatedLayer)
            and last.activation == "softmax"
        ):
            raise ValueError(
                f"{self.loss.name} takes logits: end the model with a separate Softmax() layer "
                f"instead of {type(last).__name__}(activation='softmax')"
            )
        fused = self.loss.from_logits and isinstance(last, Softmax)
        self._train_depth = len(self.layers) - 1 if fused else len(self.layers)
        return self

    def freeze(self, upto: int) -> None:
        """Freeze layers ``[0, upto)`` (``trainable = False``); the others become trainable."""
        for index, layer in enumerate(self.layers):
            layer.trainable = index >= upto

    def unfreeze(self) -> None:
        self.freeze(0)

    # -- weights ----------------------------------------------------------------------
    def get_weights(self) -> dict[str, np.ndarray]:
        """Copies of every saved array (parameters and state such as running means), keyed
        ``"<layer index>.<key>"``."""
        return {
            f"{index}.{key}": value.copy()
            for index, layer in enumerate(self.layers)
            for key, value in layer.state().items()
        }

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Load arrays keyed as ``get_weights`` returns them; ``ValueError`` on an unknown key
        or a wrong shape."""
        by_layer: dict[int, dict[str, np.ndarray]] = {}
        for path, value in weights.items():
            index, _, key = path.partition(".")
            if not index.isdigit() or int(index) >= len(self.layers) or not key:
                raise ValueError(f"no array {path!r} in this model")
            by_layer.setdefault(int(index), {})[key] = value
        for index, arrays in by_layer.items():
            try:
                self.layers[index].load_state(arrays)
            except KeyError as exc:
                raise ValueError(f"no array '{index}.{exc.args[0]}' in this model") from None
            except ValueError as exc:
                raise ValueError(f"array of layer {index}: {exc}") from None

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    # -- computation ------------------------------------------------------------------
    def _check_inputs(self, x: Any, name: str = "x") -> np.ndarray:
        """``x`` as a float32 ``(N, *input_shape)`` array; ``ValueError`` otherwise."""
        x = np.asarray(x)
        if x.dtype.kind not in "fiub":
            raise ValueError(f"{name} must be numeric, got dtype {x.dtype}")
        if x.shape[1:] != self.input_shape:
            raise ValueError(
                f"{name} must have shape (N, {', '.join(map(str, self.input_shape))}), "
                f"got {x.shape}"
            )
        x = x.astype(np.float32, copy=False)
        # a finite sum proves every value finite in one pass without a temporary; only an
        # overflowing sum needs the element-wise check
        with np.errstate(over="ignore", invalid="ignore"):
            total = x.sum()
        if not np.isfinite(total) and not np.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        return x

    def _check_targets(self, y: Any, n: int, name: str = "y") -> np.ndarray:
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[0] != n:
            raise ValueError(f"{name} must have one target per sample ({n}), got shape {y.shape}")
        return y

    def _forward(self, x: np.ndarray, *, training: bool, depth: int) -> np.ndarray:
        for layer in self.layers[:depth]:
            x = layer.forward(x, training=training)
        return x

    def _backward(self, grad: np.ndarray) -> None:
        """Back-propagate down to the lowest trainable layer, no further."""
        depth = self._train_depth
        lowest = next(
            (i for i, layer in enumerate(self.layers[:depth]) if layer.trainable and layer.params),
            None,
        )
        if lowest is None:
            return
        for index in range(depth - 1, lowest - 1, -1):
            layer = self.layers[index]
            layer.needs_input_grad = index > lowest
            grad = layer.backward(grad)

    def _step(self) -> None:
        params: dict[str, np.ndarray] = {}
        grads: dict[str, np.ndarray] = {}
        for index, layer in enumerate(self.layers[: self._train_depth]):
            if layer.trainable:
                for key, value in layer.params.items():
                    params[f"{index}.{key}"] = value
                    grads[f"{index}.{key}"] = layer.grads[key]
        self.optimizer.step(params, grads)

    def _require_compiled(self) -> None:
        if self.loss is None or self.optimizer is None:
            raise RuntimeError("call compile(loss=..., optimizer=...) first")

    def _train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """One optimisation step on checked inputs: (batch mean loss, correct count)."""
        out = self._forward(x, training=True, depth=self._train_depth)
        loss, grad = self.loss.value_and_grad(out, y)
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"the loss became {loss}: training diverged (lower the learning rate?)"
            )
        correct = losses_module.accuracy_count(out, y)
        self._backward(grad)
        self._step()
        return loss, correct

    def train_on_batch(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """One optimisation step on ``x: (N, *input_shape)`` and targets ``y`` ((N,) int labels
        or (N, K) rows); returns the batch's ``loss`` and ``accuracy`` (before the step)."""
        self._require_compiled()
        x = self._check_inputs(x)
        y = self._check_targets(y, x.shape[0])
        loss, correct = self._train_batch(x, y)
        return {"loss": loss, "accuracy": correct / x.shape[0]}

    def fit(
        self,
        x: np.ndarray | BatchSource,
        y: np.ndarray | None = None,
        *,
        epochs: int = 1,
        batch_size: int = 32,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
        shuffle: bool = True,
        callbacks: Sequence[Callback] = (),
        verbose: int = 1,
        rng: np.random.Generator | None = None,
    ) -> Sequential:
        """Train for ``epochs`` and record ``self.history`` (lists per epoch: ``loss``,
        ``accuracy``, and ``val_loss``, ``val_accuracy`` with ``validation_data``).

        ``x``: ``(N, *input_shape)`` float32 with targets ``y`` ((N,) int labels or (N, K)),
        cut into batches of ``batch_size`` (reshuffled every epoch with ``shuffle``); or a
        callable ``batches(rng)`` returning an iterable of ``(x, y)`` batches, called once per
        epoch (``y``, ``batch_size`` and ``shuffle`` are then unused). ``rng`` (default: the
        model's own stream) drives shuffling and is handed to ``batches``. ``verbose``: 0
        silent, 1 progress bar, 2 one line per epoch (stderr). Returns self.
        """
        self._require_compiled()
        if epochs < 1 or batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
        rng = self.rng if rng is None else rng
        from_source = callable(x)
        if from_source:
            source, total = x, None
        else:
            if y is None:
                raise ValueError("fit(x, y): targets y are missing")
            x = self._check_inputs(x)
            y = self._check_targets(y, x.shape[0])
            if x.shape[0] == 0:
                raise ValueError("fit: no training samples")
            source = self._array_batches(x, y, batch_size, shuffle)
            total = math.ceil(x.shape[0] / batch_size)
        if validation_data is not None:
            x_val, y_val = validation_data
            x_val = self._check_inputs(x_val, "validation x")
            y_val = self._check_targets(y_val, x_val.shape[0], "validation y")
        self.history = {"loss": [], "accuracy": []}
        if validation_data is not None:
            self.history.update(val_loss=[], val_accuracy=[])
        self.stop_training = False
        for callback in callbacks:
            callback.set_model(self)
            callback.on_train_begin()
        for epoch in range(epochs):
            for callback in callbacks:
                callback.on_epoch_begin(epoch)
            bar = None
            if verbose:
                live = None if verbose == 1 else False  # None: redraw only on a terminal
                bar = ProgressBar(total, prefix=f"epoch {epoch + 1}/{epochs} ", live=live)
            loss_sum, correct, seen, batches = 0.0, 0, 0, 0
            for batch_x, batch_y in source(rng):
                if from_source:
                    batch_x = self._check_inputs(batch_x)
                    batch_y = self._check_targets(batch_y, batch_x.shape[0])
                loss, right = self._train_batch(batch_x, batch_y)
                n = batch_x.shape[0]
                loss_sum += loss * n
                correct += right
                seen += n
                batches += 1
                batch_logs = {"loss": loss_sum / seen, "accuracy": correct / seen}
                for callback in callbacks:
                    callback.on_batch_end(batches - 1, batch_logs)
                if bar is not None:
                    bar.update(batches, batch_logs)
            if seen == 0:
                raise ValueError(f"epoch {epoch}: the batch source gave no batch")
            logs = {"loss": loss_sum / seen, "accuracy": correct / seen}
            if validation_data is not None:
                scores = self.evaluate(x_val, y_val, batch_size=max(batch_size, 256))
                logs.update(val_loss=scores["loss"], val_accuracy=scores["accuracy"])
            for key, value in logs.items():
                self.history[key].append(value)
            if bar is not None:
                bar.close(batches, logs)
            for callback in callbacks:
                callback.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for callback in callbacks:
            callback.on_train_end()
        return self

    @staticmethod
    def _array_batches(
        x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool
    ) -> Callable[[np.random.Generator], Iterator[tuple[np.ndarray, np.ndarray]]]:
        def batches(rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
            n = x.shape[0]
            if not shuffle:
                for start in range(0, n, batch_size):
                    yield x[start : start + batch_size], y[start : start + batch_size]
                return
            order = rng.permutation(n)
            for start in range(0, n, batch_size):
                chosen = order[start : start + batch_size]
                yield x[chosen], y[chosen]

        return batches

    def _batched(self, x: np.ndarray, batch_size: int, depth: int) -> Iterator[np.ndarray]:
        for start in range(0, x.shape[0], batch_size):
            yield self._forward(x[start : start + batch_size], training=False, depth=depth)

    def evaluate(self, x: np.ndarray, y: np.ndarray, *, batch_size: int = 256) -> dict[str, float]:
        """Mean ``loss`` and ``accuracy`` over ``x: (N, *input_shape)`` with targets ``y``,
        computed ``batch_size`` samples at a time (inference mode)."""
        self._require_compiled()
        x = self._check_inputs(x)
        y = self._check_targets(y, x.shape[0])
        if x.shape[0] == 0:
            raise ValueError("evaluate: no samples")
        loss_sum, correct = 0.0, 0
        for start, out in zip(
            range(0, x.shape[0], batch_size),
            self._batched(x, batch_size, self._train_depth),
            strict=True,
        ):
            batch_y = y[start : start + batch_size]
            loss_sum += self.loss.value(out, batch_y) * out.shape[0]
            correct += losses_module.accuracy_count(out, batch_y)
        return {"loss": loss_sum / x.shape[0], "accuracy": correct / x.shape[0]}

    def update_normalization(self, batches: Iterable[np.ndarray]) -> int:
        """Recompute every trainable batch normalisation's moving statistics as the plain
        mean, over ``batches`` (each ``(N, *input_shape)``), of their batch statistics under
        the current weights (PyTorch's ``swa_utils.update_bn``): for weights that were not
        trained as they are, such as ``Optimizer.averaged()``, whose statistics the training
        never saw. Returns the number of batches."""
        norms = [
            norm for layer in self.layers if layer.trainable for norm in layer.normalizations()
        ]
        momenta = [norm.momentum for norm in norms]
        count = 0
        try:
            for count, x in enumerate(batches, start=1):
                for norm in norms:
                    # keep (k - 1) / k of the mean of the first k - 1 batches: a plain mean
                    norm.momentum = (count - 1) / count
                self._forward(self._check_inputs(x), training=True, depth=len(self.layers))
        finally:
            for norm, momentum in zip(norms, momenta, strict=True):
                norm.momentum = momentum
        if count == 0:
            raise ValueError("update_normalization: no batches")
        return count

    def predict_proba(self, x: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """Model outputs ``(N, *output_shape)`` float32 for ``x: (N, *input_shape)``, computed
        ``batch_size`` samples at a time; class probabilities for a classifier.

        ``ValueError`` if ``x`` is malformed or not finite, or the outputs overflow."""
        x = self._check_inputs(x)
        out = np.empty((x.shape[0], *self.output_shape), dtype=np.float32)
        needs_softmax = (
            self.loss is not None
            and self.loss.from_logits
            and not isinstance(self.layers[-1], Softmax)
        )
        for start, batch_out in zip(
            range(0, x.shape[0], batch_size),
            self._batched(x, batch_size, len(self.layers)),
            strict=True,
        ):
            if needs_softmax:
                batch_out = activations.softmax(batch_out, axis=1)
            out[start : start + batch_out.shape[0]] = batch_out
        if not np.isfinite(out.sum()):
            raise ValueError(
                "the model's outputs are not finite: inputs far outside the range it was "
                "trained on?"
            )
        return out

    def predict(self, x: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """Predicted class ``(N,)`` int64 for ``x: (N, *input_shape)``: the argmax of the
        outputs, or ``output > 0.5`` for a single output column."""
        proba = self.predict_proba(x, batch_size=batch_size)
        proba = proba.reshape(proba.shape[0], math.prod(self.output_shape))
        if proba.shape[1] == 1:
            return (proba[:, 0] > 0.5).astype(np.int64)
        return proba.argmax(axis=1).astype(np.int64)

    # -- description and persistence --------------------------------------------------
    def summary(self) -> str:
        """A Keras-like table: layer, output shape, parameters; then total / trainable /
        non-trainable counts (non-trainable: frozen parameters and saved state such as
        batch-norm running statistics)."""
        rows = [("#", "Layer (type)", "Output shape", "Param #")]
        total = trainable = 0
        for index, layer in enumerate(self.layers):
            state_size = sum(value.size for value in layer.state().values())
            total += state_size
            if layer.trainable:
                trainable += layer.count_params()
            label = type(layer).__name__ + ("" if layer.trainable else " (frozen)")
            if layer.name:
                label = f"{layer.name} ({label})"
            shape = "(None, " + ", ".join(map(str, layer.output_shape)) + ")"
            rows.append((str(index), label, shape, f"{state_size:,}"))
        widths = [max(len(row[col]) for row in rows) for col in range(4)]
        rule = "-" * (sum(widths) + 6)

        def line(row: tuple[str, ...]) -> str:
            return "  ".join(
                cell.rjust(width) if col in (0, 3) else cell.ljust(width)
                for col, (cell, width) in enumerate(zip(row, widths, strict=True))
            ).rstrip()

        lines = [line(rows[0]), rule, *(line(row) for row in rows[1:]), rule]
        lines += [
            f"Total params: {total:,}",
            f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}",
        ]
        return "\n".join(lines)

    def save(
        self,
        path: str | Path,
        metadata: dict[str, Any] | None = None,
        *,
        include_optimizer: bool = False,
    ) -> None:
        """Write ``path.npz`` + ``path.json`` atomically (see ``urgence.nn.serialization``);
        ``metadata`` (JSON-serialisable) defaults to ``self.metadata``."""
        from urgence.nn.serialization import save_model

        save_model(self, path, metadata=metadata, include_optimizer=include_optimizer)

"""The broadcasted residual block of BC-ResNet (Kim et al., "Broadcasted Residual Learning
for Efficient Keyword Spotting", Interspeech 2021).

Speech features have two axes that do not play the same part: frequency (where a formant
sits, which moves from voice to voice) and time (the order of the sounds). The block keeps
them apart. A frequency-wise depthwise convolution (3 x 1) works on the whole
frequency x time map; its output is then averaged over frequency, and the cheap temporal part
(a dilated 1 x 3 depthwise convolution and a pointwise convolution) runs on that single row
and is broadcast back over every frequency as a residual::

    f2 = SubSpectralNorm(FreqDepthwise(x))
    f1 = Pointwise(Swish(BN(TimeDepthwise(mean_over_frequency(f2)))))
    y = ReLU(x + f2 + f1)            # f1 broadcast over frequency

A transition block (other channel count or a frequency stride) first maps x through a
pointwise convolution, batch normalisation and ReLU, and drops the identity term. The paper's
spatial dropout inside the block is left out: ``urgence.nn.data_parallel`` seeds the model's
own Dropout layers, and the head keeps one.

SubSpectralNorm (Chang et al. 2021) normalises each of ``subbands`` frequency bands of each
channel with its own statistics: a BatchNormalization over ``channels * subbands`` channels
of the map reshaped to ``(N, C * S, F / S, T)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from urgence.nn.initializers import get_initializer
from urgence.nn.layers.base import Layer, LayerError, Shape
from urgence.nn.layers.normalization import BatchNormalization

KERNEL = 3  # both depthwise kernels, as in the paper


# The block computes on maps stored (C, F, N, T) ("channel-frequency major"), handed between
# blocks as (N, C, F, T) views of that storage. In that order every step works on contiguous
# memory: a pointwise convolution is one GEMM on (C, F*N*T) with no transposition, each
# SubSpectralNorm band of each channel is one contiguous row of (C * S, F/S * N * T), the
# frequency average adds whole (N, T) slabs, and at batch 1 the order is the usual
# (1, C, F, T), so the detector's one-window calls need no copy either.


def _storage(x: np.ndarray) -> np.ndarray:
    """(N, C, F, T) -> its (C, F, N, T) storage: a view if stored so (a block's output),
    else a copy."""
    stored = x.transpose(1, 2, 0, 3)
    return stored if stored.flags.c_contiguous else np.ascontiguousarray(stored)


def _as_batch(stored: np.ndarray) -> np.ndarray:
    """(C, F, N, T) storage -> the (N, C, F, T) view layers exchange."""
    return stored.transpose(2, 0, 1, 3)


def _pointwise(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    """1 x 1 convolution (C_out, C_in) on (C_in, F, N, T) storage -> (C_out, F, N, T)."""
    channels = x.shape[0]
    z = np.dot(weights.astype(x.dtype, copy=False), x.reshape(channels, -1))
    return z.reshape(weights.shape[0], *x.shape[1:])


def _taps(size: int, out_size: int, stride: int, spacing: int) -> list[tuple[int, slice, slice]]:
    """(tap k, output positions, input positions) of a 3-tap convolution along one axis with
    zero padding: output i reads input ``stride * i + (k - 1) * spacing`` where it exists
    (``spacing`` is the dilation). The centre tap, which reaches every output, comes first."""
    taps = []
    for k in (1, 0, 2):
        offset = (k - 1) * spacing
        first = -(offset // stride) if offset < 0 else 0  # outputs that read padding before
        last = min(out_size - 1, (size - 1 - offset) // stride)
        if last < first:
            continue  # a dilation wider than the axis: this tap reads padding only
        start = stride * first + offset
        taps.append((k, slice(first, last + 1), slice(start, stride * last + offset + 1, stride)))
    return taps


def _along(axis: int, positions: slice) -> tuple[slice, ...]:
    index = [slice(None)] * 4
    index[axis] = positions
    return tuple(index)


def _tap_convolution(
    x: np.ndarray, weights: np.ndarray, taps: list[tuple[int, slice, slice]], axis: int
) -> np.ndarray:
    """Depthwise 3-tap convolution of (C, F, N, T) storage along ``axis`` (1: frequency,
    3: time), weights (C, 3), taps from ``_taps``: the centre tap writes every output, the
    others add where they reach."""
    weights = weights.astype(x.dtype, copy=False)
    (centre, _, centre_inputs), *sides = taps
    out = np.multiply(x[_along(axis, centre_inputs)], weights[:, centre, None, None, None])
    for k, outputs, inputs in sides:
        out[_along(axis, outputs)] += x[_along(axis, inputs)] * weights[:, k, None, None, None]
    return out


def _tap_convolution_backward(
    grad: np.ndarray,
    x: np.ndarray,
    weights: np.ndarray,
    taps: list[tuple[int, slice, slice]],
    axis: int,
    *,
    strided: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of ``_tap_convolution(x, weights, taps, axis)`` given the output's ``grad``:
    (with respect to x, with respect to the (C, 3) weights). ``strided``: outputs are fewer
    than inputs, so the centre tap does not reach every input."""
    weights = weights.astype(grad.dtype, copy=False)
    weight_grad = np.zeros(weights.shape, dtype=grad.dtype)
    grad_x = np.zeros(x.shape, dtype=grad.dtype) if strided else None
    for k, outputs, inputs in taps:
        grad_part = grad[_along(axis, outputs)]
        weight_grad[:, k] = np.einsum("cfnt,cfnt->c", grad_part, x[_along(axis, inputs)])
        contribution = grad_part * weights[:, k, None, None, None]
        if grad_x is None:
            grad_x = contribution  # the centre tap, first, covers every input once
        else:
            grad_x[_along(axis, inputs)] += contribution
    return grad_x, weight_grad


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warnings for large |x|


class BCResBlock(Layer):
    """One BC-ResNet block: (N, C_in, F, T) -> (N, filters, ceil(F / freq_stride), T).

    ``filters``: output channels; a block whose ``filters`` differs from its input channels,
    or with ``freq_stride`` 2, is a transition block. ``dilation``: of the temporal 1 x 3
    depthwise convolution (the receptive field in time grows with it, at no cost).
    ``subbands``: SubSpectralNorm's frequency bands (1: plain batch normalisation); the
    output's frequency size must be a multiple of it.
    """

    def __init__(
        self,
        filters: int,
        *,
        freq_stride: int = 1,
        dilation: int = 1,
        subbands: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for name, value in (("filters", filters), ("dilation", dilation), ("subbands", subbands)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise LayerError(f"BCResBlock: {name} must be a positive integer, got {value!r}")
        if freq_stride not in (1, 2):
            raise LayerError(f"BCResBlock: freq_stride must be 1 or 2, got {freq_stride!r}")
        self.filters = filters
        self.freq_stride = freq_stride
        self.dilation = dilation
        self.subbands = subbands
        self.transition = False
        self._norms: dict[str, BatchNormalization] = {}
        self._cache: dict[str, Any] = {}
        self._fixed_affines: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # float32

    # -- construction -------------------------------------------------------------------
    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 3:
            raise LayerError(f"BCResBlock: expects (N, C, F, T) inputs, got (N, {input_shape})")
        _, freq, time = input_shape
        out_freq = -(-freq // self.freq_stride)
        if out_freq % self.subbands:
            raise LayerError(
                f"BCResBlock: {out_freq} frequency rows do not split into {self.subbands} subbands"
            )
        return (self.filters, out_freq, time)

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        super().build(input_shape, rng)
        channels, freq, time = self.input_shape
        c, out_freq, _ = self.output_shape
        self.transition = channels != c or self.freq_stride != 1
        he = get_initializer("he")
        norm_features = {"norm_sub": c * self.subbands, "norm_time": c}
        if self.transition:
            self.params["in_W"] = he((c, channels), channels, c, rng)
            norm_features["norm_in"] = c
        self.params["freq_W"] = he((c, KERNEL), KERNEL, KERNEL, rng)
        self.params["time_W"] = he((c, KERNEL), KERNEL, KERNEL, rng)
        self.params["point_W"] = he((c, c), c, c, rng)
        self._frequency_taps = _taps(freq, out_freq, self.freq_stride, 1)
        self._time_taps = _taps(time, time, 1, self.dilation)
        self._norms = {}
        for name, features in norm_features.items():
            norm = BatchNormalization()
            norm.build((features,), rng)  # used on rows: feature c's values in row c
            self._norms[name] = norm
            for key, value in norm.params.items():
                self.params[f"{name}.{key}"] = value

    def _extra_state(self) -> dict[str, np.ndarray]:
        return {
            f"{name}.{key}": value
            for name, norm in self._norms.items()
            for key, value in norm._extra_state().items()
        }

    def normalizations(self) -> list[Layer]:
        return list(self._norms.values())

    def _sync_norms(self) -> None:
        """Hand this layer's (possibly replaced, e.g. float64) parameters to its norms."""
        for name, norm in self._norms.items():
            norm.trainable = self.trainable
            for key in norm.params:
                norm.params[key] = self.params[f"{name}.{key}"]

    # -- computation --------------------------------------------------------------------
    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        self._check_input(x)
        if not training:
            # The detector calls the model on one window per 100 ms chunk, where every
            # numpy call counts: half as many, and nothing kept for a backward pass (which,
            # should one follow, replays the regular path on the kept input).
            self._cache = {"replay": x}
            return _as_batch(self._infer(_storage(x)))
        return _as_batch(self._forward(_storage(x), training=True))

    def _affine(self, name: str, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """A norm with its moving statistics as (scale, shift), broadcastable over
        (C, F, N, T) storage."""
        if name in self._fixed_affines and dtype == np.float32:
            return self._fixed_affines[name]
        _, scale, shift = self._norms[name].fixed_affine(dtype)
        return scale[:, None, None, None], shift[:, None, None, None]

    def fix_norms(self) -> None:
        """Compute the norms' inference maps once, for an inference-only copy of a trained
        block (``urgence.nn.fusion.fold_batch_norm``): at batch 1, where the detector runs,
        recomputing them on every window cost a seventh of the streaming time (real-time
        factor 0.0174 -> 0.0149). Later changes to the parameters are not seen, except
        through ``load_state``."""
        self._fixed_affines = {}  # so that _affine computes them from the state
        self._fixed_affines = {name: self._affine(name, np.float32) for name in self._norms}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        super().load_state(arrays)
        self._fixed_affines = {}

    def _infer(self, x: np.ndarray) -> np.ndarray:
        p, dtype = self.params, x.dtype
        c, out_freq, time = self.output_shape
        n = x.shape[2]
        h = x
        if self.transition:
            scale, shift = self._affine("norm_in", dtype)
            h = _pointwise(p["in_W"], x) * scale
            h += shift
            np.maximum(h, 0, out=h)
        f2 = _tap_convolution(h, p["freq_W"], self._frequency_taps, axis=1)
        scale, shift = self._affine("norm_sub", dtype)
        bands = f2.reshape(c * self.subbands, out_freq // self.subbands, n, time)
        bands *= scale
        bands += shift
        average = np.add.reduce(f2, axis=1, keepdims=True)
        average *= 1 / out_freq
        temporal = _tap_convolution(average, p["time_W"], self._time_taps, axis=3)
        scale, shift = self._affine("norm_time", dtype)
        temporal *= scale
        temporal += shift
        temporal *= _sigmoid(temporal)
        out = f2
        out += _pointwise(p["point_W"], temporal)
        if not self.transition:
            out += x
        return np.maximum(out, 0, out=out)

    def _forward(self, x: np.ndarray, *, training: bool) -> np.ndarray:
        """The block on (C_in, F, N, T) storage, keeping what ``backward`` needs."""
        self._sync_norms()
        p, norms, cache = self.params, self._norms, {}
        c, out_freq, time = self.output_shape
        n = x.shape[2]
        h = x
        if self.transition:
            pre = norms["norm_in"].forward_rows(
                _pointwise(p["in_W"], x).reshape(c, -1), training=training
            )
            cache["in_active"] = pre > 0
            h = np.maximum(pre, 0).reshape(c, *x.shape[1:])
        cache["x"], cache["h"] = x, h
        # frequency-wise depthwise 3 x 1, 'same' padding, strided along frequency
        f2 = _tap_convolution(h, p["freq_W"], self._frequency_taps, axis=1)
        f2 = norms["norm_sub"].forward_rows(f2.reshape(c * self.subbands, -1), training=training)
        f2 = f2.reshape(c, out_freq, n, time)
        # temporal branch on the frequency average
        average = np.add.reduce(f2, axis=1, keepdims=True)
        average *= 1 / out_freq
        cache["average"] = average
        temporal = _tap_convolution(average, p["time_W"], self._time_taps, axis=3)
        normed = norms["norm_time"].forward_rows(temporal.reshape(c, -1), training=training)
        gate = _sigmoid(normed)
        swished = normed * gate
        cache["normed"], cache["gate"], cache["swished"] = normed, gate, swished
        out = f2
        out += np.dot(p["point_W"].astype(x.dtype, copy=False), swished).reshape(c, 1, n, time)
        if not self.transition:
            out += x
        np.maximum(out, 0, out=out)
        cache["active"] = out > 0
        self._cache = cache
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if not self._cache:
            raise LayerError("BCResBlock: backward() before forward()")
        if "replay" in self._cache:
            self._forward(_storage(self._cache["replay"]), training=False)
        cache, p, norms = self._cache, self.params, self._norms
        trainable = self.trainable
        c, out_freq, time = self.output_shape
        dtype = grad_out.dtype
        grads: dict[str, np.ndarray] = {}
        grad_sum = _storage(grad_out) * cache["active"]
        n = grad_sum.shape[2]
        # f1 = point_W @ swished, broadcast over frequency
        grad_f1 = np.add.reduce(grad_sum, axis=1).reshape(c, -1)
        if trainable:
            grads["point_W"] = np.dot(grad_f1, cache["swished"].T)
        grad_swished = np.dot(p["point_W"].astype(dtype, copy=False).T, grad_f1)
        gate, normed = cache["gate"], cache["normed"]
        grad_normed = grad_swished * (gate * (1 + normed * (1 - gate)))
        grad_temporal = norms["norm_time"].backward_rows(grad_normed).reshape(c, 1, n, time)
        grad_average, time_grad = _tap_convolution_backward(
            grad_temporal, cache["average"], p["time_W"], self._time_taps, 3, strided=False
        )
        grad_average *= 1 / out_freq
        grad_f2 = grad_sum + grad_average
        grad_f2 = norms["norm_sub"].backward_rows(grad_f2.reshape(c * self.subbands, -1))
        grad_h, freq_grad = _tap_convolution_backward(
            grad_f2.reshape(c, out_freq, n, time),
            cache["h"],
            p["freq_W"],
            self._frequency_taps,
            1,
            strided=self.freq_stride > 1,
        )
        if trainable:
            grads["time_W"], grads["freq_W"] = time_grad, freq_grad
        x = cache["x"]
        if self.transition:
            grad_h = grad_h.reshape(c, -1)
            grad_h *= cache["in_active"]
            grad_pre = norms["norm_in"].backward_rows(grad_h)
            if trainable:
                grads["in_W"] = np.dot(grad_pre, x.reshape(x.shape[0], -1).T)
            grad_input = (
                np.dot(p["in_W"].astype(dtype, copy=False).T, grad_pre).reshape(x.shape)
                if self.needs_input_grad
                else None
            )
        else:
            grad_input = grad_h + grad_sum if self.needs_input_grad else None
        if trainable:
            for name, norm in norms.items():
                for key, value in norm.grads.items():
                    grads[f"{name}.{key}"] = value
        self.grads = grads
        return None if grad_input is None else _as_batch(grad_input)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "freq_stride": self.freq_stride,
            "dilation": self.dilation,
            "subbands": self.subbands,
        }

    def macs(self) -> int:
        """Multiply-accumulates of one forward pass on one input."""
        channels, freq, time = self.input_shape
        c, out_freq, _ = self.output_shape
        total = KERNEL * c * out_freq * time + KERNEL * c * time + c * c * time
        if self.transition:
            total += c * channels * freq * time
        return int(total)

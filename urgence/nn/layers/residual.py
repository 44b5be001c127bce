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


SMALL_BATCH = 16


def _pointwise(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    """1 x 1 convolution (C_out, C_in) on (N, C_in, H, W) -> (N, C_out, H, W).

    One GEMM (tensordot) for a training batch; for the detector's few windows, a matmul
    per window, which skips tensordot's ~15 us of bookkeeping per call."""
    weights = weights.astype(x.dtype, copy=False)
    n, channels, height, width = x.shape
    if n <= SMALL_BATCH:
        z = np.matmul(weights, x.reshape(n, channels, height * width))
        return z.reshape(n, weights.shape[0], height, width)
    z = np.tensordot(weights, x, axes=([1], [1]))
    return z.transpose(1, 0, 2, 3)


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


def _tap_convolution(
    x: np.ndarray, weights: np.ndarray, taps: list[tuple[int, slice, slice]], axis: int
) -> np.ndarray:
    """Depthwise 3-tap convolution of (N, C, H, W) along ``axis`` (2 or 3), weights (C, 3),
    taps from ``_taps``: the centre tap writes every output, the others add where they
    reach."""

    def along(positions: slice) -> tuple[slice, ...]:
        index = [slice(None)] * 4
        index[axis] = positions
        return tuple(index)

    weights = weights.astype(x.dtype, copy=False)
    (centre, _, centre_inputs), *sides = taps
    out = np.multiply(x[along(centre_inputs)], weights[:, centre, None, None])
    for k, outputs, inputs in sides:
        out[along(outputs)] += x[along(inputs)] * weights[:, k, None, None]
    return out


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
        norm_shapes = {"norm_sub": (c * self.subbands, out_freq // self.subbands, time)}
        norm_shapes["norm_time"] = (c, 1, time)
        if self.transition:
            self.params["in_W"] = he((c, channels), channels, c, rng)
            norm_shapes["norm_in"] = (c, freq, time)
        self.params["freq_W"] = he((c, KERNEL), KERNEL, KERNEL, rng)
        self.params["time_W"] = he((c, KERNEL), KERNEL, KERNEL, rng)
        self.params["point_W"] = he((c, c), c, c, rng)
        self._frequency_taps = _taps(freq, out_freq, self.freq_stride, 1)
        self._time_taps = _taps(time, time, 1, self.dilation)
        self._norms = {}
        for name, shape in norm_shapes.items():
            norm = BatchNormalization()
            norm.build(shape, rng)
            self._norms[name] = norm
            for key, value in norm.params.items():
                self.params[f"{name}.{key}"] = value

    def _extra_state(self) -> dict[str, np.ndarray]:
        return {
            f"{name}.{key}": value
            for name, norm in self._norms.items()
            for key, value in norm._extra_state().items()
        }

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
            return self._infer(x)
        return self._forward(x, training=True)

    def _affine(self, name: str, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """A norm with its moving statistics as (scale, shift), broadcastable over (C, H, W)."""
        norm, p = self._norms[name], self.params
        scale = p[f"{name}.gamma"] / np.sqrt(norm.moving_var + norm.epsilon)
        shift = p[f"{name}.beta"] - norm.moving_mean * scale
        return scale.astype(dtype)[:, None, None], shift.astype(dtype)[:, None, None]

    def _infer(self, x: np.ndarray) -> np.ndarray:
        p, dtype = self.params, x.dtype
        n = x.shape[0]
        c, out_freq, time = self.output_shape
        h = x
        if self.transition:
            scale, shift = self._affine("norm_in", dtype)
            h = _pointwise(p["in_W"], x) * scale
            h += shift
            np.maximum(h, 0, out=h)
        f2 = _tap_convolution(h, p["freq_W"], self._frequency_taps, axis=2)
        scale, shift = self._affine("norm_sub", dtype)
        f2 = f2.reshape(n, c * self.subbands, out_freq // self.subbands, time) * scale
        f2 += shift
        f2 = f2.reshape(n, c, out_freq, time)
        average = np.add.reduce(f2, axis=2, keepdims=True)
        average *= 1 / out_freq
        temporal = _tap_convolution(average, p["time_W"], self._time_taps, axis=3)
        scale, shift = self._affine("norm_time", dtype)
        temporal *= scale
        temporal += shift
        temporal *= _sigmoid(temporal)
        out = _pointwise(p["point_W"], temporal)
        out = f2 + out
        if not self.transition:
            out += x
        return np.maximum(out, 0, out=out)

    def _forward(self, x: np.ndarray, *, training: bool) -> np.ndarray:
        self._sync_norms()
        p, norms, cache = self.params, self._norms, {}
        n = x.shape[0]
        c, out_freq, time = self.output_shape
        h = x
        if self.transition:
            pre = norms["norm_in"].forward(_pointwise(p["in_W"], x), training=training)
            cache["in_active"] = pre > 0
            h = np.maximum(pre, 0)
        cache["x"], cache["h"] = x, h
        # frequency-wise depthwise 3 x 1, 'same' padding, strided along frequency; the
        # centre tap covers every output row, the two others all but an edge row
        f2 = _tap_convolution(h, p["freq_W"], self._frequency_taps, axis=2)
        bands = (n, c * self.subbands, out_freq // self.subbands, time)
        f2 = norms["norm_sub"].forward(f2.reshape(bands), training=training).reshape(f2.shape)
        # temporal branch on the frequency average
        average = np.add.reduce(f2, axis=2, keepdims=True)
        average *= 1 / out_freq
        cache["average"] = average
        temporal = _tap_convolution(average, p["time_W"], self._time_taps, axis=3)
        normed = norms["norm_time"].forward(temporal, training=training)
        gate = _sigmoid(normed)
        swished = normed * gate
        cache["normed"], cache["gate"], cache["swished"] = normed, gate, swished
        f1 = _pointwise(p["point_W"], swished)
        out = f2 + f1
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
            self._forward(self._cache["replay"], training=False)
        cache, p, norms = self._cache, self.params, self._norms
        trainable = self.trainable
        n = grad_out.shape[0]
        c, out_freq, time = self.output_shape
        dtype = grad_out.dtype
        grads: dict[str, np.ndarray] = {}
        grad_sum = grad_out * cache["active"]
        # f1 = point_W @ swished, broadcast over frequency
        grad_f1 = grad_sum.sum(axis=2, keepdims=True)
        if trainable:
            grads["point_W"] = np.tensordot(grad_f1, cache["swished"], axes=([0, 2, 3], [0, 2, 3]))
        grad_swished = _pointwise(p["point_W"].T, grad_f1)
        gate, normed = cache["gate"], cache["normed"]
        grad_normed = grad_swished * (gate * (1 + normed * (1 - gate)))
        grad_temporal = norms["norm_time"].backward(grad_normed)
        # dilated temporal depthwise convolution
        average = cache["average"]
        time_w = p["time_W"].astype(dtype, copy=False)
        time_grad = np.zeros((c, KERNEL), dtype=dtype)
        grad_average = np.multiply(grad_temporal, time_w[:, 1, None, None])
        for k, out_steps, in_steps in self._time_taps:
            grad_steps = grad_temporal[..., out_steps]
            time_grad[:, k] = np.einsum("ncft,ncft->c", grad_steps, average[..., in_steps])
            if k != 1:
                grad_average[..., in_steps] += grad_steps * time_w[:, k, None, None]
        if trainable:
            grads["time_W"] = time_grad
        grad_f2 = grad_sum + grad_average / out_freq
        bands = (n, c * self.subbands, out_freq // self.subbands, time)
        grad_f2 = norms["norm_sub"].backward(grad_f2.reshape(bands)).reshape(grad_sum.shape)
        # frequency-wise depthwise convolution
        h = cache["h"]
        freq_w = p["freq_W"].astype(dtype, copy=False)
        freq_grad = np.zeros((c, KERNEL), dtype=dtype)
        grad_h = (np.zeros if self.freq_stride > 1 else np.empty)(h.shape, dtype=dtype)
        for k, out_rows, in_rows in self._frequency_taps:
            grad_rows = grad_f2[:, :, out_rows]
            freq_grad[:, k] = np.einsum("ncft,ncft->c", grad_rows, h[:, :, in_rows])
            contribution = grad_rows * freq_w[:, k, None, None]
            if k == 1 and self.freq_stride == 1:
                grad_h[...] = contribution
            else:
                grad_h[:, :, in_rows] += contribution
        if trainable:
            grads["freq_W"] = freq_grad
        if self.transition:
            grad_pre = norms["norm_in"].backward(grad_h * cache["in_active"])
            if trainable:
                grads["in_W"] = np.tensordot(grad_pre, cache["x"], axes=([0, 2, 3], [0, 2, 3]))
            grad_input = _pointwise(p["in_W"].T, grad_pre) if self.needs_input_grad else None
        else:
            grad_input = grad_h + grad_sum if self.needs_input_grad else None
        if trainable:
            for name, norm in norms.items():
                for key, value in norm.grads.items():
                    grads[f"{name}.{key}"] = value
        self.grads = grads
        return grad_input

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

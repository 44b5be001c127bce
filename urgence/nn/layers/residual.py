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


def _pointwise(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    """1 x 1 convolution (C_out, C_in) on (N, C_in, H, W) -> (N, C_out, H, W), one GEMM."""
    z = np.tensordot(weights.astype(x.dtype, copy=False), x, axes=([1], [1]))
    return z.transpose(1, 0, 2, 3)


def _frequency_taps(rows: int, out_rows: int, stride: int) -> list[tuple[int, slice, slice]]:
    """(tap k, output rows, input rows) of a 3-tap 'same' convolution along frequency:
    output row f reads input row stride * f + k - 1 where it exists. The centre tap first."""
    taps = []
    for k in (1, 0, 2):
        offset = k - 1
        first = 1 if offset < 0 else 0  # the row above output 0 is padding
        last = min(out_rows - 1, (rows - 1 - offset) // stride)
        start = stride * first + offset
        taps.append((k, slice(first, last + 1), slice(start, stride * last + offset + 1, stride)))
    return taps


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
        self._sync_norms()
        p, norms, cache = self.params, self._norms, {}
        n = x.shape[0]
        c, out_freq, time = self.output_shape
        dtype = x.dtype
        h = x
        if self.transition:
            pre = norms["norm_in"].forward(_pointwise(p["in_W"], x), training=training)
            cache["in_active"] = pre > 0
            h = np.maximum(pre, 0)
        cache["x"], cache["h"] = x, h
        # frequency-wise depthwise 3 x 1, 'same' padding, strided along frequency; the
        # centre tap covers every output row, the two others all but an edge row
        freq_w = p["freq_W"].astype(dtype, copy=False)
        centre, *sides = _frequency_taps(h.shape[2], out_freq, self.freq_stride)
        f2 = np.multiply(h[:, :, centre[2]], freq_w[:, 1, None, None])
        for k, out_rows, in_rows in sides:
            f2[:, :, out_rows] += h[:, :, in_rows] * freq_w[:, k, None, None]
        bands = (n, c * self.subbands, out_freq // self.subbands, time)
        f2 = norms["norm_sub"].forward(f2.reshape(bands), training=training).reshape(f2.shape)
        # temporal branch on the frequency average
        average = f2.mean(axis=2, keepdims=True)
        d = self.dilation
        average_padded = np.pad(average, ((0, 0), (0, 0), (0, 0), (d, d)))
        cache["average_padded"] = average_padded
        time_w = p["time_W"].astype(dtype, copy=False)
        temporal = np.zeros((n, c, 1, time), dtype=dtype)
        for k in range(KERNEL):
            temporal += time_w[:, k, None, None] * average_padded[..., k * d : k * d + time]
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
        d = self.dilation
        average_padded = cache["average_padded"]
        time_w = p["time_W"].astype(dtype, copy=False)
        grad_average_padded = np.zeros_like(average_padded)
        time_grad = np.empty((c, KERNEL), dtype=dtype)
        for k in range(KERNEL):
            window = average_padded[..., k * d : k * d + time]
            time_grad[:, k] = (grad_temporal * window).sum(axis=(0, 2, 3))
            grad_average_padded[..., k * d : k * d + time] += (
                time_w[:, k, None, None] * grad_temporal
            )
        if trainable:
            grads["time_W"] = time_grad
        grad_average = grad_average_padded[..., d : d + time]
        grad_f2 = grad_sum + grad_average / out_freq
        bands = (n, c * self.subbands, out_freq // self.subbands, time)
        grad_f2 = norms["norm_sub"].backward(grad_f2.reshape(bands)).reshape(grad_sum.shape)
        # frequency-wise depthwise convolution
        h = cache["h"]
        freq_w = p["freq_W"].astype(dtype, copy=False)
        taps = _frequency_taps(h.shape[2], out_freq, self.freq_stride)
        freq_grad = np.empty((c, KERNEL), dtype=dtype)
        grad_h = (np.zeros if self.freq_stride > 1 else np.empty)(h.shape, dtype=dtype)
        for k, out_rows, in_rows in taps:
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

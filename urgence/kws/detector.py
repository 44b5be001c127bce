"""Keyword detection over a whole call or a live stream.

The signal is cut into 1 s windows every ``hop_s`` (100 ms); the keyword model gives each
window a posterior per label. Posteriors are smoothed (moving average over the last
``smooth_windows`` windows), a window is *active* for the keyword with the highest smoothed
posterior among those that reach their own threshold, and consecutive active
windows (gaps of up to ``gap_windows`` allowed) form a *segment*: one spoken word. Each
segment gives at most one detection, for the keyword with the largest posterior mass over the
segment, and only if that keyword was active for at least ``min_windows`` windows.

Why segments and mass, not the maximum over windows: a short keyword ("gaz") scores high on
fragments of longer words for a window or two (FINDINGS.md); within a segment the whole
word outweighs its fragments, and an isolated fragment is shorter than ``min_windows``.

A segment is decided when it ends, or from ``decide_windows`` windows after it started if it
is still going (bounding the delay); once its word is reported it gives nothing more, and a
different keyword winning after that starts a new segment (the next word).

``StreamingDetector.feed`` takes chunks of any length and returns each detection as soon as it
is decided; ``detect`` runs the same machine on a whole recording (one batched model call),
so both give the same detections. The end of the signal is padded with silence so that its
last samples are seen by a window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np

from urgence.audio.features import FeatureConfig, LogMelStream, log_mel
from urgence.audio.features import windows as cut_windows
from urgence.corpus.vocabulary import KEYWORDS


class PosteriorModel(Protocol):
    """What the detector needs of a model (``KeywordModel`` or a test stub)."""

    labels: Sequence[str]
    feature_config: FeatureConfig
    thresholds: Mapping[str, float]

    def predict_proba(self, windows: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Detection:
    """One spoken keyword: where it is in the call (seconds) and how sure the model is."""

    keyword: str
    service: str  # "15", "17" or "18"
    start_s: float
    end_s: float
    score: float  # peak smoothed posterior, in [0, 1]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class DetectorConfig:
    """Post-processing of window posteriors. Window counts are in hops (``hop_s``)."""

    hop_s: float = 0.1
    smooth_windows: int = 3
    min_windows: int = 3
    gap_windows: int = 1
    decide_windows: int = 4  # 0.4 s after a word starts to win: the delay target is 0.5 s
    edge_s: float = 0.5  # silence before and after the call: edge words get whole windows

    def __post_init__(self) -> None:
        if not 0 < self.hop_s <= 1.0:
            raise ValueError("hop_s must be in (0, 1] seconds")
        if not 0 <= self.edge_s < 1.0:
            raise ValueError("edge_s must be in [0, 1) seconds")
        for name in ("smooth_windows", "min_windows", "decide_windows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.gap_windows < 0:
            raise ValueError("gap_windows must be >= 0")


@dataclass
class _Segment:
    """Consecutive active windows; per keyword: active windows, posterior mass, peak."""

    first: int
    last_active: int
    count: dict[int, int] = field(default_factory=dict)
    mass: dict[int, float] = field(default_factory=dict)
    peak: dict[int, float] = field(default_factory=dict)
    first_window: dict[int, int] = field(default_factory=dict)
    last_window: dict[int, int] = field(default_factory=dict)
    winner: int | None = None  # the keyword reported for this segment, once decided

    def add(self, t: int, column: int, score: float) -> None:
        self.last_active = t
        self.count[column] = self.count.get(column, 0) + 1
        self.mass[column] = self.mass.get(column, 0.0) + score
        self.peak[column] = max(self.peak.get(column, 0.0), score)
        self.first_window.setdefault(column, t)
        self.last_window[column] = t


class _Decider:
    """Window posteriors -> detections: smoothing, thresholds, segments (module docstring)."""

    def __init__(
        self,
        keywords: Sequence[str],
        thresholds: Mapping[str, float],
        config: DetectorConfig,
        clip_s: float,
    ) -> None:
        self.keywords = list(keywords)
        self.thresholds = np.array([float(thresholds[k]) for k in keywords], dtype=np.float32)
        self.config = config
        self.clip_s = clip_s
        self.windows_seen = 0
        # the last smooth_windows - 1 windows, for the moving average of the next ones
        self._recent = np.zeros((0, len(self.keywords)), dtype=np.float32)
        self._segment: _Segment | None = None

    def steps(self, keyword_posteriors: np.ndarray, duration_s: float) -> list[Detection]:
        """The next windows: (n_windows, n_keywords) float32 -> the detections they decide;
        ``duration_s`` is the audio received so far (detections are clamped to it). Blocks of
        any size give the same detections as one window at a time; the smoothing is vectorised and
        the segment logic only visits windows that are active or inside an open segment,
        which is what makes threshold tuning (hundreds of passes over the posteriors of
        hundreds of calls) fast."""
        block = np.asarray(keyword_posteriors, dtype=np.float32)
        n = block.shape[0]
        if n == 0:
            return []
        smoothed = self._smooth(block)
        above = smoothed >= self.thresholds
        active = np.flatnonzero(above.any(axis=1))
        first_t = self.windows_seen
        detections: list[Detection] = []
        i = 0
        while i < n:
            if self._segment is None:
                # nothing open: jump to the next active window, if any
                k = int(np.searchsorted(active, i))
                if k == len(active):
                    break
                i = int(active[k])
            detections += self._advance(first_t + i, smoothed[i], above[i], duration_s)
            i += 1
        self.windows_seen = first_t + n
        return detections

    def _smooth(self, block: np.ndarray) -> np.ndarray:
        """Moving average of each window with the ``smooth_windows - 1`` before it (fewer at
        the start of the stream), summed oldest first as ``np.mean`` over rows does, so the
        result does not depend on how the stream was cut into blocks."""
        width = self.config.smooth_windows
        history = np.concatenate([self._recent, block])
        carried = len(self._recent)
        n = block.shape[0]
        total = np.zeros_like(block)
        count = np.zeros(n, dtype=np.float32)
        for lag in range(width - 1, -1, -1):
            first = max(0, lag - carried)  # first row of the block with a row ``lag`` before it
            if first >= n:
                continue
            total[first:] += history[carried + first - lag : carried + n - lag]
            count[first:] += 1
        self._recent = history[-(width - 1) :] if width > 1 else history[:0]
        return total / count[:, None]

    def _advance(
        self, t: int, smoothed: np.ndarray, above: np.ndarray, duration_s: float
    ) -> list[Detection]:
        """The segment logic for window ``t`` (its smoothed posteriors and which of them
        reach their threshold)."""
        config = self.config
        if above.any():
            best = int(np.argmax(np.where(above, smoothed, -1.0)))
            segment = self._segment
            if segment is not None and segment.winner not in (None, best):
                self._segment = None  # the word already reported is over: another begins
            if self._segment is None:
                self._segment = _Segment(first=t, last_active=t)
            self._segment.add(t, best, float(smoothed[best]))
        segment = self._segment
        if segment is None:
            return []
        if t - segment.last_active > config.gap_windows:
            return self.close(duration_s)
        if segment.winner is None and t - segment.first + 1 >= config.decide_windows:
            return self._decide(segment, duration_s)
        return []

    def close(self, duration_s: float) -> list[Detection]:
        """End the open segment (end of a word, or of the call)."""
        segment, self._segment = self._segment, None
        if segment is None or segment.winner is not None:
            return []
        return self._decide(segment, duration_s)

    def _decide(self, segment: _Segment, duration_s: float) -> list[Detection]:
        """Report the segment's word if its leading keyword was active long enough; otherwise
        leave it undecided (a later window may settle it)."""
        column = max(segment.mass, key=lambda c: (segment.mass[c], -c))
        if segment.count[column] < self.config.min_windows:
            return []
        segment.winner = column
        keyword = self.keywords[column]
        start_s, end_s = self._word_span(
            segment.first_window[column], segment.last_window[column], duration_s
        )
        return [
            Detection(
                keyword=keyword,
                service=KEYWORDS[keyword],
                start_s=start_s,
                end_s=end_s,
                score=round(segment.peak[column], 4),
            )
        ]

    def _word_span(self, first: int, last: int, duration_s: float) -> tuple[float, float]:
        """Where the word lies, from the first and last window in which it was active.

        Smoothing delays the posteriors by (smooth_windows - 1) / 2 windows; the word lies in
        every active window, i.e. in the intersection [start of last, end of first].
        """
        hop_s, clip_s = self.config.hop_s, self.clip_s
        lag = (min(self.config.smooth_windows, first + 1) - 1) / 2
        first_start = (first - lag) * hop_s - self.config.edge_s
        last_start = (last - lag) * hop_s - self.config.edge_s
        start, end = last_start, first_start + clip_s
        if start >= end:  # active over more than a window's length: take the middle
            middle = (first_start + last_start + clip_s) / 2
            start, end = middle - clip_s / 4, middle + clip_s / 4
        start = min(max(start, 0.0), duration_s)
        end = min(max(end, start), duration_s)
        return round(start, 3), round(end, 3)


def config_of(model: PosteriorModel, config: DetectorConfig | None) -> DetectorConfig:
    """The settings given, else those stored with the model, else the defaults."""
    return config or getattr(model, "detector_config", None) or DetectorConfig()


def keyword_columns(labels: Sequence[str]) -> tuple[list[int], list[str]]:
    """The columns of the keywords among a model's labels, and the keywords, in label order."""
    columns = [i for i, label in enumerate(labels) if label in KEYWORDS]
    if not columns:
        raise ValueError(f"the model has no keyword among its labels {list(labels)}")
    return columns, [labels[i] for i in columns]


def _whole_frames(seconds: float, name: str, features: FeatureConfig) -> int:
    frames = seconds * features.sample_rate / features.hop_length
    if abs(frames - round(frames)) > 1e-9:
        raise ValueError(f"{name}={seconds} is not a whole number of {features.hop_ms} ms frames")
    return round(frames)


def _hop_frames(config: DetectorConfig, features: FeatureConfig) -> int:
    return _whole_frames(config.hop_s, "hop_s", features)


def _lead_samples(config: DetectorConfig, features: FeatureConfig) -> int:
    """Silence before the first sample (``edge_s``), a whole number of frames."""
    return _whole_frames(config.edge_s, "edge_s", features) * features.hop_length


def _tail_samples(n_samples: int, config: DetectorConfig, features: FeatureConfig) -> int:
    """Silence after the last sample: at least ``edge_s``, up to the end of a window."""
    if n_samples == 0:
        return 0
    hop = _hop_frames(config, features) * features.hop_length
    lead = _lead_samples(config, features)
    needed = 2 * lead + n_samples
    n_windows = 1 + max(0, -(-(needed - features.clip_samples) // hop))
    return (n_windows - 1) * hop + features.clip_samples - lead - n_samples


class StreamingDetector:
    """Keyword detection on live audio.

    ``feed(samples)`` with (n,) float32 chunks at the model's sample rate (16 kHz), any length,
    returns the detections decided by this chunk; ``finish()`` flushes the end of the call and
    returns the last ones. ``seconds_fed`` is the stream time so far.
    """

    def __init__(self, model: PosteriorModel, config: DetectorConfig | None = None) -> None:
        self.model = model
        self.config = config_of(model, config)
        self.features: FeatureConfig = model.feature_config
        self.hop_frames = _hop_frames(self.config, self.features)
        self._columns, keywords = keyword_columns(list(model.labels))
        self._decider = _Decider(keywords, model.thresholds, self.config, self.features.clip_s)
        self._stream = LogMelStream(self.features)
        lead = np.zeros(_lead_samples(self.config, self.features), np.float32)
        self._frames = self._stream.push(lead)
        self._samples_fed = 0
        self._finished = False

    @property
    def seconds_fed(self) -> float:
        return self._samples_fed / self.features.sample_rate

    def feed(self, samples: np.ndarray, *, last: bool = False) -> list[Detection]:
        """samples: (n,) float32 -> detections decided by now (possibly none).

        ``last=True`` also does ``finish()`` (the windows of the chunk and of the end padding
        then go to the model in one call). Raises ``ValueError`` for a non-1-D, non-float or
        non-finite chunk, and ``RuntimeError`` after ``finish()``.
        """
        if self._finished:
            raise RuntimeError("feed() after finish(): start a new StreamingDetector")
        samples = np.asarray(samples)
        if samples.ndim != 1:
            raise ValueError(f"expected a mono chunk of shape (n,), got shape {samples.shape}")
        self._samples_fed += samples.shape[0]
        if last:
            tail = _tail_samples(self._samples_fed, self.config, self.features)
            samples = np.concatenate([samples, np.zeros(tail, samples.dtype)])
        detections = self._process(self._stream.push(samples))
        if last:
            self._finished = True
            detections += self._decider.close(self.seconds_fed)
        return detections

    def finish(self) -> list[Detection]:
        """Pad the end with silence so every sample is seen by a window, end the open
        segment, and return the remaining detections. The detector cannot be fed after."""
        if self._finished:
            return []
        return self.feed(np.zeros(0, np.float32), last=True)

    def _process(self, new_frames: np.ndarray) -> list[Detection]:
        """Score the windows completed by ``new_frames`` in one model call, then decide."""
        if new_frames.shape[1]:
            self._frames = np.concatenate([self._frames, new_frames], axis=1)
        batch = cut_windows(self._frames, config=self.features, hop_frames=self.hop_frames)
        if not len(batch):
            return []
        posteriors = np.asarray(self.model.predict_proba(batch), dtype=np.float32)
        # the next window starts len(batch) hops further on: drop the frames before it
        self._frames = self._frames[:, len(batch) * self.hop_frames :]
        return self._decider.steps(posteriors[:, self._columns], self.seconds_fed)


def detect(
    model: PosteriorModel, samples: np.ndarray, config: DetectorConfig | None = None
) -> list[Detection]:
    """Detections in a whole recording: the streaming machine fed everything at once, so the
    model is called once on all windows. samples: (n,) float32 at 16 kHz."""
    detector = StreamingDetector(model, config)
    return detector.feed(samples, last=True)


def detect_streaming(
    model: PosteriorModel,
    samples: np.ndarray,
    *,
    chunk_s: float = 0.1,
    config: DetectorConfig | None = None,
) -> list[tuple[Detection, float]]:
    """Feed a recording as live audio in ``chunk_s`` chunks: each detection with the stream
    time (s) at which it was emitted. samples: (n,) float32 at 16 kHz."""
    detector = StreamingDetector(model, config)
    chunk = max(1, round(chunk_s * model.feature_config.sample_rate))
    emitted: list[tuple[Detection, float]] = []
    for start in range(0, samples.shape[0], chunk):
        found = detector.feed(samples[start : start + chunk])
        emitted += [(d, detector.seconds_fed) for d in found]
    emitted += [(d, detector.seconds_fed) for d in detector.finish()]
    return emitted


def window_posteriors(
    model: PosteriorModel, samples: np.ndarray, config: DetectorConfig | None = None
) -> np.ndarray:
    """The posteriors the detector sees: samples (n,) float32 -> (n_windows, n_labels) float32,
    window ``i`` starting at ``i * hop_s - edge_s`` (silence padded as by the detector)."""
    config = config_of(model, config)
    features = model.feature_config
    if samples.shape[0] == 0:
        return np.zeros((0, len(model.labels)), dtype=np.float32)
    padded = np.concatenate(
        [
            np.zeros(_lead_samples(config, features), np.float32),
            samples.astype(np.float32, copy=False),
            np.zeros(_tail_samples(samples.shape[0], config, features), np.float32),
        ]
    )
    frames = log_mel(padded, config=features)
    batch = cut_windows(frames, config=features, hop_frames=_hop_frames(config, features))
    if not len(batch):
        return np.zeros((0, len(model.labels)), dtype=np.float32)
    return np.asarray(model.predict_proba(batch), dtype=np.float32)


def detections_from_posteriors(
    posteriors: np.ndarray,
    *,
    labels: Sequence[str],
    thresholds: Mapping[str, float],
    duration_s: float,
    clip_s: float = 1.0,
    config: DetectorConfig | None = None,
) -> list[Detection]:
    """The post-processing alone: posteriors (n_windows, n_labels) float32 -> detections."""
    config = config or DetectorConfig()
    columns, keywords = keyword_columns(list(labels))
    decider = _Decider(keywords, thresholds, config, clip_s)
    detections = decider.steps(posteriors[:, columns], duration_s)
    return detections + decider.close(duration_s)


def _overlaps(detection: Detection, start_s: float, end_s: float, slack_s: float) -> bool:
    return detection.start_s < end_s + slack_s and detection.end_s > start_s - slack_s


def tune_thresholds(
    model: PosteriorModel,
    calls: Iterable[tuple[np.ndarray, Sequence[tuple[str, float, float]]]],
    *,
    candidates: Sequence[float] = tuple(round(0.3 + 0.05 * i, 2) for i in range(14)),
    config: DetectorConfig | None = None,
    slack_s: float = 0.5,
) -> dict[str, float]:
    """Per-keyword thresholds chosen on validation recordings.

    calls: pairs (samples (n,) float32 16 kHz, true keywords [(keyword, start_s, end_s)]);
    include recordings without keywords, where false alarms come from. For each keyword, the
    candidate threshold that maximises the F1 score of that keyword's detections (a detection
    is a hit if it overlaps a true occurrence of the keyword, within ``slack_s``); ties go to
    the higher threshold (fewer false alarms). The model runs once per recording; candidates
    only re-run the post-processing. Store the result in the model metadata as
    ``thresholds``.
    """
    config = config_of(model, config)
    labels = list(model.labels)
    _, keywords = keyword_columns(labels)
    rate = model.feature_config.sample_rate
    prepared = [
        (window_posteriors(model, samples, config), truth, samples.shape[0] / rate)
        for samples, truth in calls
    ]
    never = 2.0  # a threshold no posterior reaches: silences the other keywords
    best: dict[str, float] = {}
    for keyword in keywords:
        results: list[tuple[float, float]] = []
        for threshold in candidates:
            thresholds = {k: (threshold if k == keyword else never) for k in keywords}
            hits = misses = false_alarms = 0
            for posteriors, truth, duration_s in prepared:
                found = detections_from_posteriors(
                    posteriors,
                    labels=labels,
                    thresholds=thresholds,
                    duration_s=duration_s,
                    clip_s=model.feature_config.clip_s,
                    config=config,
                )
                wanted = [(s, e) for k, s, e in truth if k == keyword]
                matched = sum(any(_overlaps(d, s, e, slack_s) for d in found) for s, e in wanted)
                hits += matched
                misses += len(wanted) - matched
                false_alarms += sum(
                    not any(_overlaps(d, s, e, slack_s) for s, e in wanted) for d in found
                )
            results.append((2 * hits / max(2 * hits + misses + false_alarms, 1), threshold))
        best[keyword] = float(max(results)[1])
    return best

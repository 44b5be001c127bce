import numpy as np
import pytest

from urgence.audio.features import FeatureConfig, log_mel
from urgence.corpus.vocabulary import KEYWORDS, LABELS, SILENCE
from urgence.kws.detector import (
    Detection,
    DetectorConfig,
    StreamingDetector,
    _Decider,
    detect,
    detect_streaming,
    detections_from_posteriors,
    tune_thresholds,
    window_posteriors,
)

SR = 16000
KEYWORD_LIST = list(KEYWORDS)
# one pure tone per keyword, 250 Hz apart: a tone burst stands for a spoken keyword
TONES = {keyword: 500.0 + 250.0 * i for i, keyword in enumerate(KEYWORD_LIST)}


class ToneModel:
    """A stand-in keyword model: the posterior of a keyword is the share of the window's
    centre that holds its tone (the loudest mel band, looked up in a table), the rest goes
    to ``_silence_``. It depends only on the window's content, like a real network."""

    def __init__(self, thresholds: dict[str, float] | None = None) -> None:
        self.labels = LABELS
        self.feature_config = FeatureConfig()
        self.thresholds = thresholds or dict.fromkeys(KEYWORDS, 0.5)
        self.calls: list[int] = []
        band_of = {}
        for keyword, hz in TONES.items():
            tone = np.sin(2 * np.pi * hz * np.arange(SR) / SR).astype(np.float32)
            band_of[keyword] = int(np.argmax(log_mel(tone, config=self.feature_config).mean(1)))
        assert len(set(band_of.values())) == len(band_of), "tones must fall in distinct bands"
        self.band_keyword = {band: LABELS.index(k) for k, band in band_of.items()}

    def predict_proba(self, windows: np.ndarray) -> np.ndarray:
        self.calls.append(len(windows))
        out = np.zeros((len(windows), len(self.labels)), dtype=np.float32)
        centre = windows[:, :, 24:74]  # the middle half second
        loud = centre.max(axis=1) > np.log(1e-2)  # (N, frames): a tone is sounding
        bands = centre.argmax(axis=1)  # (N, frames)
        for i in range(len(windows)):
            share = 0.0
            if loud[i].any():
                band = int(np.bincount(bands[i][loud[i]]).argmax())
                column = self.band_keyword.get(band)
                if column is not None:
                    share = float(loud[i].mean())
                    out[i, column] = share
            out[i, LABELS.index(SILENCE)] = 1.0 - share
        return out


def make_call(bursts: list[tuple[str, float, float]], duration_s: float, rng) -> np.ndarray:
    """Quiet noise with a tone burst (keyword, start_s, end_s) per keyword."""
    y = (0.001 * rng.standard_normal(int(duration_s * SR))).astype(np.float32)
    for keyword, start, end in bursts:
        i, j = int(start * SR), int(end * SR)
        t = np.arange(j - i) / SR
        y[i:j] += 0.3 * np.sin(2 * np.pi * TONES[keyword] * t).astype(np.float32)
    return y


def stream(model, y: np.ndarray, chunk_sizes: list[int]) -> list[tuple[Detection, float]]:
    """Feed y in chunks cycling through chunk_sizes; detections with the stream time."""
    detector = StreamingDetector(model)
    found, i, k = [], 0, 0
    while i < len(y):
        size = chunk_sizes[k % len(chunk_sizes)]
        found += [(d, (i + size) / SR) for d in detector.feed(y[i : i + size])]
        i, k = i + size, k + 1
    found += [(d, len(y) / SR) for d in detector.finish()]
    return found


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def model():
    return ToneModel()


@pytest.fixture
def call(rng):
    bursts = [("incendie", 1.0, 1.6), ("brûlure", 3.5, 3.9), ("gaz", 6.2, 6.6)]
    return bursts, make_call(bursts, 7.3, rng)


def test_each_burst_is_one_detection_at_its_time(model, call):
    bursts, y = call
    found = detect(model, y)
    assert [d.keyword for d in found] == [k for k, _, _ in bursts]
    for detection, (keyword, start, end) in zip(found, bursts, strict=True):
        assert detection.service == KEYWORDS[keyword]
        assert abs(detection.start_s - start) < 0.3 and abs(detection.end_s - end) < 0.3
        assert 0.0 <= detection.score <= 1.0


def test_whole_recording_is_one_model_call(model, call):
    detect(model, call[1])
    assert len(model.calls) == 1
    # windows every 0.1 s from -0.5 s until one covers the 0.5 s of silence after the end
    padded_s = len(call[1]) / SR + 2 * 0.5
    assert model.calls[0] == 1 + int(np.ceil(round((padded_s - 1.0) / 0.1, 6)))


@pytest.mark.parametrize(
    "chunk_sizes",
    [[320], [1600], [8000], [16000 // 3], [320, 8000, 1111, 4096], [7]],
    ids=["20ms", "100ms", "500ms", "odd", "mixed", "tiny"],
)
def test_chunked_equals_whole(model, call, chunk_sizes):
    whole = detect(model, call[1])
    chunked = [d for d, _ in stream(model, call[1], chunk_sizes)]
    assert chunked == whole


def test_detections_arrive_soon_after_the_word(model, call):
    bursts, y = call
    emitted = detect_streaming(model, y, chunk_s=0.1)
    assert emitted == stream(model, y, [1600])
    assert [d for d, _ in emitted] == detect(model, y)
    for detection, emitted_s in emitted:
        end = next(e for k, _, e in bursts if k == detection.keyword)
        assert emitted_s - end <= 0.6  # decided at most decide_windows after it wins


def test_no_tone_no_detection(model, rng):
    assert detect(model, make_call([], 5.0, rng)) == []


def test_short_and_empty_recordings(model, rng):
    assert detect(model, np.zeros(0, np.float32)) == []
    short = make_call([("vol", 0.1, 0.45)], 0.5, rng)  # shorter than a window: padded
    assert [d.keyword for d in detect(model, short)] == ["vol"]


def test_bad_chunks_raise_value_error(model):
    detector = StreamingDetector(model)
    with pytest.raises(ValueError):
        detector.feed(np.zeros((2, 100), np.float32))
    with pytest.raises(ValueError):
        detector.feed(np.array([0.0, np.nan], np.float32))
    detector.finish()
    with pytest.raises(RuntimeError):
        detector.feed(np.zeros(10, np.float32))


def bump(n_windows: int, centre: int, width: float, height: float) -> np.ndarray:
    t = np.arange(n_windows)
    return height * np.exp(-0.5 * ((t - centre) / width) ** 2)


def posteriors_with(*bumps: tuple[str, int, float, float], n_windows: int = 80) -> np.ndarray:
    p = np.zeros((n_windows, len(LABELS)), dtype=np.float32)
    for keyword, centre, width, height in bumps:
        p[:, LABELS.index(keyword)] += bump(n_windows, centre, width, height)
    p[:, LABELS.index(SILENCE)] = np.clip(1.0 - p.sum(axis=1), 0.0, 1.0)
    return p


def run_posteriors(p: np.ndarray) -> list[Detection]:
    return detections_from_posteriors(
        p, labels=LABELS, thresholds=dict.fromkeys(KEYWORDS, 0.5), duration_s=len(p) * 0.1 + 0.9
    )


def test_one_bump_is_one_detection_even_with_wiggles(rng):
    p = posteriors_with(("malaise", 30, 3.0, 0.95))
    p[:, LABELS.index("malaise")] += 0.08 * rng.standard_normal(len(p)).astype(np.float32)
    found = run_posteriors(np.clip(p, 0, 1))
    assert [d.keyword for d in found] == ["malaise"]
    assert found[0].score > 0.8


def test_two_bumps_far_apart_are_two_detections():
    found = run_posteriors(posteriors_with(("vol", 20, 2.0, 0.9), ("vol", 60, 2.0, 0.9)))
    assert [d.keyword for d in found] == ["vol", "vol"]
    assert found[0].end_s < found[1].start_s


def test_fragment_of_a_longer_word_is_suppressed():
    # "gaz" wins two windows on the tail of "agression": one word, one detection
    p = posteriors_with(("agression", 30, 2.5, 0.9), ("gaz", 35, 0.8, 0.95))
    assert [d.keyword for d in run_posteriors(p)] == ["agression"]


def test_isolated_blip_is_not_a_detection():
    assert run_posteriors(posteriors_with(("gaz", 30, 0.5, 0.99))) == []


def test_window_posteriors_match_the_detector_windows(model, call):
    p = window_posteriors(model, call[1])
    assert p.shape == (model.calls[0], len(LABELS)) and p.dtype == np.float32
    assert detections_from_posteriors(
        p, labels=LABELS, thresholds=model.thresholds, duration_s=len(call[1]) / SR
    ) == detect(model, call[1])


def test_tune_thresholds_rejects_a_keyword_that_fires_on_the_wrong_word(rng):
    # the stub hears "vol" wherever its tone sounds, also in calls whose truth has no "vol":
    # a high threshold that only the real, longer "vol" words reach is the best choice
    model = ToneModel()
    calls = [
        (make_call([("vol", 1.0, 1.6)], 3.0, rng), [("vol", 1.0, 1.6)]),
        (make_call([("vol", 1.0, 1.6)], 3.0, rng), [("vol", 1.0, 1.6)]),
        (make_call([("vol", 1.0, 1.25)], 3.0, rng), []),  # a short sound-alike
    ]
    thresholds = tune_thresholds(model, calls, candidates=[0.3, 0.5, 0.7, 0.9])
    assert set(thresholds) == set(KEYWORDS)
    assert detect(ToneModel({**thresholds, "vol": 0.3}), calls[2][0]) != []  # fires at 0.3
    assert detect(ToneModel(thresholds), calls[2][0]) == []
    assert len(detect(ToneModel(thresholds), calls[0][0])) == 1


def test_config_is_validated():
    with pytest.raises(ValueError):
        DetectorConfig(hop_s=0)
    with pytest.raises(ValueError):
        StreamingDetector(ToneModel(), DetectorConfig(hop_s=0.105))


def test_each_keyword_is_held_to_its_own_threshold():
    p = posteriors_with(("incendie", 30, 3.0, 0.6), ("gaz", 30, 3.0, 0.3))
    thresholds = {**dict.fromkeys(KEYWORDS, 0.5), "incendie": 0.7, "gaz": 0.25}
    found = detections_from_posteriors(p, labels=LABELS, thresholds=thresholds, duration_s=9.0)
    assert [d.keyword for d in found] == ["gaz"]  # incendie scores higher but not enough


def test_a_keyword_right_after_a_reported_one_is_not_lost():
    # "incendie" is reported early (decide_windows), then "gaz" wins without a gap
    p = posteriors_with(("incendie", 20, 2.0, 0.95), ("gaz", 28, 2.0, 0.95))
    assert [d.keyword for d in run_posteriors(p)] == ["incendie", "gaz"]


def test_a_short_lead_does_not_block_the_word_that_follows():
    # two windows of a fragment open the segment; the real word wins after decide_windows
    p = posteriors_with(("vol", 19, 0.7, 0.9), ("agression", 24, 2.5, 0.9))
    assert [d.keyword for d in run_posteriors(p)] == ["agression"]


def reference_detections(p: np.ndarray, thresholds: dict[str, float], config: DetectorConfig):
    """The detector's rules window by window, written plainly (the loop oracle for the
    vectorised smoothing and the skipping of quiet windows): smoothing by ``np.mean`` over
    the last windows, active keyword, segments, decision by mass."""
    columns = [LABELS.index(k) for k in KEYWORD_LIST]
    limit = np.array([thresholds[k] for k in KEYWORD_LIST], np.float32)
    found, segment = [], None

    def decide(seg):
        column = max(seg["mass"], key=lambda c: (seg["mass"][c], -c))
        if seg["count"][column] < config.min_windows:
            return
        seg["winner"] = column
        found.append((KEYWORD_LIST[column], seg["first_window"][column], seg["peak"][column]))

    for t in range(len(p)):
        smoothed = p[max(0, t - config.smooth_windows + 1) : t + 1][:, columns].mean(axis=0)
        above = smoothed >= limit
        if above.any():
            best = int(np.argmax(np.where(above, smoothed, -1.0)))
            if segment is not None and segment["winner"] not in (None, best):
                segment = None
            if segment is None:
                segment = {"first": t, "count": {}, "mass": {}, "peak": {}, "first_window": {}}
                segment["winner"] = None
            segment["last"] = t
            segment["count"][best] = segment["count"].get(best, 0) + 1
            segment["mass"][best] = segment["mass"].get(best, 0.0) + float(smoothed[best])
            segment["peak"][best] = max(segment["peak"].get(best, 0.0), float(smoothed[best]))
            segment["first_window"].setdefault(best, t)
        if segment is None:
            continue
        if t - segment["last"] > config.gap_windows:
            if segment["winner"] is None:
                decide(segment)
            segment = None
        elif segment["winner"] is None and t - segment["first"] + 1 >= config.decide_windows:
            decide(segment)
    if segment is not None and segment["winner"] is None:
        decide(segment)
    return found


@pytest.mark.parametrize("smooth_windows", [1, 2, 3, 5])
@pytest.mark.parametrize("gap_windows", [0, 1, 3])
def test_vectorised_decider_matches_the_window_by_window_rules(rng, smooth_windows, gap_windows):
    config = DetectorConfig(smooth_windows=smooth_windows, gap_windows=gap_windows, min_windows=2)
    n_windows = 400
    bumps = [
        (KEYWORD_LIST[int(rng.integers(len(KEYWORD_LIST)))], int(c), float(w), float(h))
        for c, w, h in zip(
            rng.integers(0, n_windows, 40),
            rng.uniform(0.5, 4, 40),
            rng.uniform(0.3, 1, 40),
            strict=True,
        )
    ]
    p = posteriors_with(*bumps, n_windows=n_windows)
    p += 0.05 * rng.random(p.shape, dtype=np.float32)
    thresholds = {k: float(rng.choice([0.3, 0.45, 0.6])) for k in KEYWORD_LIST}
    expected = reference_detections(p, thresholds, config)
    assert len(expected) > 10  # the case exercises the segment logic
    whole = detections_from_posteriors(
        p, labels=LABELS, thresholds=thresholds, duration_s=n_windows * 0.1 + 0.9, config=config
    )
    assert [(d.keyword, d.score) for d in whole] == [(k, round(s, 4)) for k, _, s in expected]
    # the same windows cut into blocks of any size, as a stream delivers them
    decider = _Decider(KEYWORD_LIST, thresholds, config, clip_s=1.0)
    columns = [LABELS.index(k) for k in KEYWORD_LIST]
    pieces, start = [], 0
    while start < n_windows:
        size = int(rng.integers(1, 12))
        pieces += decider.steps(p[start : start + size, columns], n_windows * 0.1 + 0.9)
        start += size
    pieces += decider.close(n_windows * 0.1 + 0.9)
    assert pieces == whole

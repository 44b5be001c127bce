import csv

import numpy as np
import pytest
import soundfile as sf

from urgence.audio.features import FeatureConfig
from urgence.corpus.vocabulary import LABELS, UNKNOWN
from urgence.kws.evaluate import (
    classification_report,
    clip_windows,
    decide,
    evaluate_probs,
    forced_keyword_choice,
    load_labelled_clips,
    plot_confusion,
    score_clips,
)

CONFIG = FeatureConfig()


def _burst(rng, n_samples, start, length):
    y = 0.001 * rng.standard_normal(n_samples).astype(np.float32)
    y[start : start + length] += 0.5 * rng.standard_normal(length).astype(np.float32)
    return y


def test_short_clip_is_padded_to_one_window(rng):
    windows, weights = clip_windows(_burst(rng, 8000, 2000, 3000), config=CONFIG)
    assert windows.shape == (1, 40, 98)
    assert weights[0] == pytest.approx(1.0, abs=1e-6)


def test_window_weights_favour_the_windows_holding_the_word(rng):
    # 3 s of near-silence with a 0.4 s burst starting at 2.0 s
    y = _burst(rng, 48000, 32000, 6400)
    windows, weights = clip_windows(y, config=CONFIG, hop_frames=10)
    assert windows.shape[1:] == (40, 98)
    best = int(weights.argmax())
    # the best windows start between 1.4 s and 2.0 s (they contain the whole burst)
    assert 1.3 <= best * 0.1 <= 2.0
    assert weights[0] < 0.05


class _StubModel:
    """Answers label k for a window whose loudest band is k (a deterministic oracle)."""

    feature_config = CONFIG
    labels = LABELS

    def __init__(self):
        self.calls = []

    def predict_proba(self, windows):
        self.calls.append(len(windows))
        probs = np.full((len(windows), len(LABELS)), 0.01, dtype=np.float32)
        probs[:, 0] = 0.9  # always "malaise"
        return probs / probs.sum(axis=1, keepdims=True)


def test_score_clips_averages_in_one_batched_call(rng):
    model = _StubModel()
    clips = [_burst(rng, 16000, 4000, 4000), _burst(rng, 30000, 10000, 4000)]
    probs = score_clips(model, clips)
    assert probs.shape == (2, len(LABELS))
    assert len(model.calls) == 1
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert decide(probs, LABELS) == ["malaise", "malaise"]


def test_thresholds_follow_the_detector_rule():
    probs = np.zeros((3, len(LABELS)), dtype=np.float32)
    probs[0, LABELS.index("gaz")] = 0.55  # wins, but below its threshold
    probs[0, LABELS.index(UNKNOWN)] = 0.45
    probs[1, LABELS.index("gaz")] = 0.95
    probs[1, LABELS.index(UNKNOWN)] = 0.05
    probs[2, LABELS.index("vol")] = 0.40  # loses to unknown, but reaches its threshold
    probs[2, LABELS.index(UNKNOWN)] = 0.60
    thresholds = {"gaz": 0.6, "vol": 0.35}
    assert decide(probs, LABELS, thresholds) == [UNKNOWN, "gaz", "vol"]
    assert decide(probs, LABELS) == ["gaz", "gaz", UNKNOWN]  # arg-max without thresholds
    assert forced_keyword_choice(probs, LABELS) == ["gaz", "gaz", "vol"]


def test_report_counts_precision_recall_and_false_accepts():
    true = ["vol", "vol", "gaz", UNKNOWN, UNKNOWN]
    predicted = ["vol", "gaz", "gaz", "vol", UNKNOWN]
    report = classification_report(true, predicted, labels=LABELS, groups=list("aabbb"))
    assert report["accuracy"] == pytest.approx(3 / 5)
    assert report["keyword_accuracy"] == pytest.approx(2 / 3)
    assert report["false_accepts"] == 1 and report["false_accept_rate"] == pytest.approx(0.5)
    assert report["per_class"]["vol"] == {"support": 2, "precision": 0.5, "recall": 0.5}
    assert report["per_class"]["gaz"]["precision"] == pytest.approx(0.5)
    assert report["per_group"]["a"] == {"n": 2, "accuracy": 0.5}
    matrix = np.array(report["confusion"]["matrix"])
    assert matrix.sum() == 5 and matrix[LABELS.index("vol"), LABELS.index("gaz")] == 1


def test_labels_csv_layout_and_unknown_mapping(tmp_path, rng):
    rows = [("a.wav", "incendie", "v1", "clean"), ("b.wav", "bonjour", "v1", "phone")]
    with (tmp_path / "labels.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "keyword", "voice", "channel"])
        writer.writerows(rows)
    for name, *_ in rows:
        sf.write(tmp_path / name, _burst(rng, 16000, 4000, 4000), 16000)
    (tmp_path / "c.wav").write_bytes(b"not audio")  # not listed: ignored
    clips = load_labelled_clips(tmp_path, known_labels=LABELS)
    assert clips.labels == ["incendie", UNKNOWN]
    assert clips.groups == ["v1/clean", "v1/phone"]


def test_recordings_layout_reports_unreadable_files(tmp_path, rng):
    good = tmp_path / "agathe" / "incendie"
    good.mkdir(parents=True)
    sf.write(good / "1.wav", _burst(rng, 16000, 4000, 4000), 16000)
    (good / "2.wav").write_bytes(b"RIFF....garbage")
    clips = load_labelled_clips(tmp_path, known_labels=LABELS)
    assert clips.labels == ["incendie"] and clips.groups == ["agathe"]
    assert len(clips.skipped) == 1 and "2.wav" in clips.skipped[0]


def test_evaluate_probs_and_confusion_figure(tmp_path):
    probs = np.eye(len(LABELS), dtype=np.float32)[[0, 1, 12]]
    report = evaluate_probs(probs, ["malaise", "hémorragie", UNKNOWN], labels=LABELS)
    assert report["accuracy"] == 1.0 and report["forced_choice_accuracy"] == 1.0
    path = plot_confusion(report, tmp_path / "cm.png", title="test")
    assert path.stat().st_size > 1000

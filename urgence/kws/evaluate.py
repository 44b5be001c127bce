"""Honest evaluation of a keyword model on labelled clips.

A clip is a short recording of one word (or of no word). It may be shorter or longer than the
model's 1 s window: ``clip_windows`` cuts the candidate windows and ``score_clips`` averages
the posteriors of the windows that hold most of the clip's energy. Taking the maximum over
windows instead lets a short word ("gaz") fire on a fragment of a longer one (FINDINGS.md).

Three data layouts are read by ``load_labelled_clips``:
- a folder with ``labels.csv`` (columns ``file``, ``keyword``, and optional ``voice``,
  ``channel``): e.g. ``validation_other_voices``;
- the user-recordings layout ``<root>/<speaker>/<label>/*.wav``;
- the Speech Commands layout ``<root>/<label>/<speaker>_nohash_<n>.wav``.
"""

from __future__ import annotations

import csv
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from urgence.audio.features import FeatureConfig, log_mel
from urgence.audio.io import AudioError, load_audio
from urgence.corpus.vocabulary import KEYWORDS, UNKNOWN

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}


class ClipClassifier:
    """Any trained ``urgence.nn`` classifier of 1 s log-mel windows, keyword model or not
    (the Speech Commands pretraining model has English labels): what evaluation needs."""

    def __init__(
        self,
        network,
        *,
        labels: Sequence[str],
        feature_config: FeatureConfig | None = None,
        thresholds: dict[str, float] | None = None,
    ) -> None:
        self.network = network
        self.labels = tuple(_nfc(label) for label in labels)
        self.feature_config = feature_config or FeatureConfig()
        self.thresholds = dict(thresholds or {})

    @classmethod
    def load(cls, path: str | Path) -> ClipClassifier:
        """Raises ``urgence.nn.ModelFileError`` when the file is not a classifier we made."""
        from urgence.nn import ModelFileError, load_model

        network = load_model(path)
        metadata = network.metadata
        if "labels" not in metadata:
            raise ModelFileError(f"{path}: metadata has no 'labels': not a keyword classifier")
        config = metadata.get("feature_config")
        return cls(
            network,
            labels=metadata["labels"],
            feature_config=FeatureConfig.from_dict(config) if config else None,
            thresholds=metadata.get("thresholds"),
        )

    def predict_proba(self, windows: np.ndarray) -> np.ndarray:
        """windows: (N, n_mels, n_frames) float32 -> (N, len(labels)) float32."""
        return self.network.predict_proba(windows[:, None])


@dataclass
class LabelledClips:
    """Clips with their true labels and a group (voice/speaker, channel) for breakdowns."""

    samples: list[np.ndarray]  # each (n,) float32, 16 kHz
    labels: list[str]
    groups: list[str]
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "path: reason"


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def load_labelled_clips(root: str | Path, *, known_labels: Sequence[str]) -> LabelledClips:
    """Read a folder of labelled clips in one of the three layouts (module docstring).

    Labels outside ``known_labels`` map to ``_unknown_`` when the model has that class,
    otherwise the clip is skipped and listed in ``skipped``. Unreadable files are skipped too.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no such data folder: {root}")
    entries: list[tuple[Path, str, str]] = []  # path, label, group
    labels_csv = root / "labels.csv"
    if labels_csv.exists():
        with labels_csv.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                group = "/".join(row[k] for k in ("voice", "channel") if row.get(k))
                entries.append((root / row["file"], _nfc(row["keyword"]), group or "all"))
    else:
        for label_or_speaker in sorted(p for p in root.iterdir() if p.is_dir()):
            name = _nfc(label_or_speaker.name)
            inner_dirs = [p for p in label_or_speaker.iterdir() if p.is_dir()]
            if inner_dirs:  # <speaker>/<label>/*.wav
                for label_dir in sorted(inner_dirs):
                    for path in sorted(label_dir.iterdir()):
                        entries.append((path, _nfc(label_dir.name), name))
            else:  # <label>/<speaker>_nohash_<n>.wav
                for path in sorted(label_or_speaker.iterdir()):
                    entries.append((path, name, path.name.split("_nohash_")[0]))

    known = set(known_labels)
    clips = LabelledClips([], [], [], [])
    for path, label, group in entries:
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        if label not in known:
            if UNKNOWN not in known or label in KEYWORDS:
                clips.skipped.append(f"{path}: label {label!r} not in the model")
                continue
            label = UNKNOWN
        try:
            samples = load_audio(path)
        except AudioError as exc:
            clips.skipped.append(f"{path}: {exc}")
            continue
        clips.samples.append(samples)
        clips.labels.append(label)
        clips.groups.append(group)
        clips.files.append(str(path))
    return clips


def clip_windows(samples: np.ndarray, *, config: FeatureConfig, hop_frames: int = 10):
    """Candidate 1 s windows of a clip and the share of the clip's energy each one holds.

    samples: (n,) float32 at ``config.sample_rate``. Returns windows (M, n_mels, n_frames)
    float32 and weights (M,) float32 in [0, 1]. A clip shorter than a window is centred in
    silence-padding first.
    """
    clip_len = config.clip_samples
    if len(samples) < clip_len:
        pad = clip_len - len(samples)
        samples = np.pad(samples, (pad // 2, pad - pad // 2))
    frames = log_mel(samples, config=config)  # (n_mels, T)
    energy = np.exp(frames.astype(np.float64)).sum(axis=0)
    energy = np.maximum(energy - energy.min(), 0.0)
    n_win = config.n_frames
    starts = list(range(0, frames.shape[1] - n_win + 1, hop_frames))
    if starts[-1] != frames.shape[1] - n_win:
        starts.append(frames.shape[1] - n_win)
    cumulative = np.concatenate([[0.0], np.cumsum(energy)])
    total = cumulative[-1] or 1.0
    weights = np.array([(cumulative[s + n_win] - cumulative[s]) / total for s in starts])
    windows = np.stack([frames[:, s : s + n_win] for s in starts])
    return windows.astype(np.float32), weights.astype(np.float32)


def score_clips(model, clips: Sequence[np.ndarray], *, share: float = 0.9) -> np.ndarray:
    """Posteriors (N, K) float32 of each clip: the mean over its windows holding at least
    ``share`` of the best window's energy share (the windows that contain the word)."""
    all_windows, owners = [], []
    for i, samples in enumerate(clips):
        windows, weights = clip_windows(samples, config=model.feature_config)
        keep = weights >= share * weights.max()
        all_windows.append(windows[keep])
        owners += [i] * int(keep.sum())
    probs = model.predict_proba(np.concatenate(all_windows))
    owners_arr = np.asarray(owners)
    out = np.zeros((len(clips), probs.shape[1]), dtype=np.float64)
    np.add.at(out, owners_arr, probs)
    out /= np.bincount(owners_arr, minlength=len(clips))[:, None]
    return out.astype(np.float32)


def degrade(
    clips: Sequence[np.ndarray],
    *,
    rng: np.random.Generator,
    noises: Sequence[np.ndarray] = (),
    snr_db: float | None = None,
    telephone: bool = False,
) -> list[np.ndarray]:
    """The clips as a call would carry them: real noise at ``snr_db`` (a random recording
    of ``noises`` each), then the telephone channel. Silent clips get no noise (their SNR is
    undefined). Each (n,) float32 -> (n,) float32."""
    from urgence.audio import augment

    out = []
    for y in clips:
        if snr_db is not None and noises and float(np.mean(y.astype(np.float64) ** 2)) > 0:
            y = augment.add_noise(y, noises[int(rng.integers(len(noises)))], snr_db=snr_db, rng=rng)
        if telephone:
            y = augment.telephone(y)
        out.append(y)
    return out


def decide(
    probs: np.ndarray, labels: Sequence[str], thresholds: dict[str, float] | None = None
) -> list[str]:
    """The label each row answers.

    Without thresholds: the arg-max. With the model's per-keyword thresholds, the rule of
    the streaming detector: the most probable keyword if its posterior reaches its
    threshold (whatever ``_unknown_`` scores), else the most probable rejection class."""
    if not thresholds:
        return [labels[int(row.argmax())] for row in probs]
    keyword_columns = [i for i, label in enumerate(labels) if label in KEYWORDS]
    other_columns = [i for i, label in enumerate(labels) if label not in KEYWORDS]
    answers = []
    for row in probs:
        best = keyword_columns[int(row[keyword_columns].argmax())]
        if row[best] >= thresholds.get(labels[best], 1.0) or not other_columns:
            answers.append(labels[best])
        else:
            answers.append(labels[other_columns[int(row[other_columns].argmax())]])
    return answers


def classification_report(
    true: Sequence[str],
    predicted: Sequence[str],
    *,
    labels: Sequence[str],
    groups: Sequence[str] | None = None,
    forced: Sequence[str] | None = None,
) -> dict:
    """Accuracy, per-class precision/recall, confusion matrix, per-group accuracy, keyword
    recall with rejection allowed, false acceptance of non-keywords, forced-choice accuracy
    (``forced``: the best keyword regardless of the rejection classes)."""
    index = {label: i for i, label in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(true, predicted, strict=True):
        confusion[index[t], index[p]] += 1
    per_class = {}
    for label, i in index.items():
        support = int(confusion[i].sum())
        predicted_n = int(confusion[:, i].sum())
        if support == 0 and predicted_n == 0:
            continue
        per_class[label] = {
            "support": support,
            "precision": float(confusion[i, i] / predicted_n) if predicted_n else None,
            "recall": float(confusion[i, i] / support) if support else None,
        }
    correct = [t == p for t, p in zip(true, predicted, strict=True)]
    is_kw = [t in KEYWORDS for t in true]
    kw_total = sum(is_kw)
    non_kw = [p for t, p in zip(true, predicted, strict=True) if t not in KEYWORDS]
    report = {
        "n": len(true),
        "accuracy": float(np.mean(correct)) if correct else None,
        "keyword_clips": kw_total,
        "keyword_correct": int(sum(c for c, k in zip(correct, is_kw, strict=True) if k)),
        "non_keyword_clips": len(non_kw),
        "false_accepts": int(sum(p in KEYWORDS for p in non_kw)),
        "per_class": per_class,
        "confusion": {"labels": list(labels), "matrix": confusion.tolist()},
    }
    report["keyword_accuracy"] = report["keyword_correct"] / kw_total if kw_total else None
    report["false_accept_rate"] = report["false_accepts"] / len(non_kw) if non_kw else None
    if forced is not None and kw_total:
        hits = sum(f == t for f, t, k in zip(forced, true, is_kw, strict=True) if k)
        report["forced_choice_accuracy"] = hits / kw_total
    if groups is not None:
        by_group: dict[str, list[bool]] = defaultdict(list)
        for g, c in zip(groups, correct, strict=True):
            by_group[g].append(c)
        report["per_group"] = {
            g: {"n": len(v), "accuracy": float(np.mean(v))} for g, v in sorted(by_group.items())
        }
    return report


def forced_keyword_choice(probs: np.ndarray, labels: Sequence[str]) -> list[str]:
    """The most probable keyword of each row, ignoring ``_unknown_`` and ``_silence_``."""
    kw_idx = [i for i, label in enumerate(labels) if label in KEYWORDS]
    return [labels[kw_idx[int(row[kw_idx].argmax())]] for row in probs]


def evaluate_probs(
    probs: np.ndarray,
    true: Sequence[str],
    *,
    labels: Sequence[str],
    thresholds: dict[str, float] | None = None,
    groups: Sequence[str] | None = None,
) -> dict:
    predicted = decide(probs, labels, thresholds)
    return classification_report(
        true, predicted, labels=labels, groups=groups, forced=forced_keyword_choice(probs, labels)
    )


def plot_confusion(report: dict, path: str | Path, *, title: str = "") -> Path:
    """Save the confusion matrix of ``report`` as a PNG (rows: truth, columns: answer)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = report["confusion"]["labels"]
    matrix = np.asarray(report["confusion"]["matrix"], dtype=np.float64)
    keep = [i for i in range(len(labels)) if matrix[i].sum() or matrix[:, i].sum()]
    matrix = matrix[np.ix_(keep, keep)]
    names = [labels[i] for i in keep]
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * len(names), 0.8 + 0.5 * len(names)))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            if matrix[i, j]:
                colour = "white" if share[i, j] > 0.6 else "black"
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("réponse du modèle")
    ax.set_ylabel("mot prononcé")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


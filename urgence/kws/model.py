"""The keyword model as the detector sees it: a network plus what it was trained with.

A model file is the pair ``<path>.npz`` (weights) + ``<path>.json`` (architecture and
metadata) written by ``urgence.nn``. The metadata must hold ``labels`` (class names, the
network's output order), ``feature_config`` (``FeatureConfig.to_dict()``) and may hold
``thresholds`` (keyword -> detection threshold, see ``urgence.kws.detector.tune_thresholds``)
and ``detector`` (``DetectorConfig`` fields); ``store_tuning`` writes both into a model file.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import numpy as np

import urgence
from urgence.audio.features import FeatureConfig
from urgence.corpus.vocabulary import KEYWORDS
from urgence.kws.detector import DetectorConfig
from urgence.nn import ModelFileError, Sequential, load_model
from urgence.nn.fusion import fold_batch_norm
from urgence.nn.serialization import model_paths

MODEL_ENV_VAR = "URGENCE_MODEL"
# Without tuned thresholds: on a 2-epoch DS-CNN, 0.5 gave ~600 false alarms per hour of
# running speech and 0.7 ~130, at the same routing accuracy (dev measurement).
DEFAULT_THRESHOLD = 0.7
# Windows per network call: bounds memory on long recordings (activations of a conv net on
# thousands of windows would take gigabytes) while keeping the matrix products large.
PREDICT_BATCH = 32


class Network(Protocol):
    """What ``KeywordModel`` needs of a network (``urgence.nn.Sequential`` has it)."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...


def default_model_path() -> Path:
    """``$URGENCE_MODEL`` if set, else the shipped ``models/kws`` beside the package."""
    from_env = os.environ.get(MODEL_ENV_VAR)
    if from_env:
        return Path(from_env)
    return Path(urgence.__file__).resolve().parents[1] / "models" / "kws"


class KeywordModel:
    """A trained keyword classifier over 1 s log-mel windows.

    ``labels``: class names in output order (keywords, ``_unknown_``, ``_silence_``).
    ``feature_config``: the features the network was trained on.
    ``thresholds``: keyword -> minimum smoothed posterior for a detection.
    ``detector_config``: the post-processing the thresholds were tuned with.
    """

    def __init__(
        self,
        network: Network,
        *,
        labels: Sequence[str],
        feature_config: FeatureConfig,
        thresholds: Mapping[str, float] | None = None,
        detector: Mapping[str, Any] | None = None,
        source: str = "<memory>",
    ) -> None:
        self.network = network
        # what predict_proba runs: the same function with BatchNormalization folded into the
        # convolutions (urgence.nn.fusion), ~15% less time per window; ``network`` stays the
        # trained model, the one store_tuning saves
        self.inference_network: Network = (
            fold_batch_norm(network) if isinstance(network, Sequential) else network
        )
        self.labels: tuple[str, ...] = tuple(unicodedata.normalize("NFC", x) for x in labels)
        self.feature_config = feature_config
        self.source = source
        keywords = [label for label in self.labels if label in KEYWORDS]
        if not keywords:
            raise ModelFileError(f"{source}: labels {list(self.labels)} hold no keyword")
        thresholds = {unicodedata.normalize("NFC", k): v for k, v in (thresholds or {}).items()}
        unknown = set(thresholds) - set(keywords)
        if unknown:
            raise ModelFileError(f"{source}: thresholds for non-keywords {sorted(unknown)}")
        for keyword, value in thresholds.items():
            if not 0.0 < float(value) <= 1.0:
                raise ModelFileError(f"{source}: threshold of {keyword!r} must be in (0, 1]")
        self.thresholds: dict[str, float] = {
            k: float(thresholds.get(k, DEFAULT_THRESHOLD)) for k in keywords
        }
        try:
            self.detector_config = DetectorConfig(**(detector or {}))
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{source}: bad detector settings: {exc}") from exc

    @classmethod
    def load(cls, path: str | Path | None = None) -> KeywordModel:
        """Load ``<path>.npz`` + ``<path>.json`` (a suffix on ``path`` is ignored).

        ``path=None`` uses ``default_model_path()``. Raises ``ModelFileError`` when the files
        are missing, unreadable, or do not describe a keyword model that accepts
        ``(1, 1, n_mels, n_frames)`` windows and returns one posterior per label.
        """
        npz_path, json_path = model_paths(path if path is not None else default_model_path())
        path = npz_path.with_suffix("")
        if not npz_path.is_file() or not json_path.is_file():
            raise ModelFileError(
                f"no keyword model at {path} (need {npz_path.name} and {json_path.name}; "
                f"train one, or give its path with --model or {MODEL_ENV_VAR})"
            )
        network = load_model(path)
        metadata: dict[str, Any] = getattr(network, "metadata", None) or {}
        missing = [key for key in ("labels", "feature_config") if key not in metadata]
        if missing:
            raise ModelFileError(f"{path}: not a keyword model, metadata lacks {missing}")
        try:
            feature_config = FeatureConfig.from_dict(metadata["feature_config"])
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}: bad feature_config: {exc}") from exc
        model = cls(
            network,
            labels=metadata["labels"],
            feature_config=feature_config,
            thresholds=metadata.get("thresholds"),
            detector=metadata.get("detector"),
            source=str(path),
        )
        model._check_shapes()
        return model

    def _check_shapes(self) -> None:
        config = self.feature_config
        probe = np.zeros((1, config.n_mels, config.n_frames), dtype=np.float32)
        try:
            out = self.predict_proba(probe)
        except Exception as exc:
            raise ModelFileError(
                f"{self.source}: the network does not accept "
                f"(1, 1, {config.n_mels}, {config.n_frames}) windows: {exc}"
            ) from exc
        if out.shape != (1, len(self.labels)):
            raise ModelFileError(
                f"{self.source}: the network gives {out.shape[1:]} outputs for "
                f"{len(self.labels)} labels"
            )

    @property
    def keywords(self) -> tuple[str, ...]:
        """The keyword labels, in output order."""
        return tuple(label for label in self.labels if label in KEYWORDS)

    def predict_proba(self, windows: np.ndarray) -> np.ndarray:
        """windows: (N, n_mels, n_frames) float32 log-mel -> (N, len(labels)) float32 posteriors.

        The network sees (N, 1, n_mels, n_frames); it is called in batches of
        ``PREDICT_BATCH`` windows.
        """
        config = self.feature_config
        expected = (config.n_mels, config.n_frames)
        if windows.ndim != 3 or windows.shape[1:] != expected:
            raise ValueError(
                f"expected windows of shape (N, {expected[0]}, {expected[1]}), got {windows.shape}"
            )
        n = windows.shape[0]
        out = np.empty((n, len(self.labels)), dtype=np.float32)
        for start in range(0, n, PREDICT_BATCH):
            batch = np.ascontiguousarray(windows[start : start + PREDICT_BATCH], np.float32)
            out[start : start + len(batch)] = self.inference_network.predict_proba(batch[:, None])
        return out


def store_tuning(
    path: str | Path, *, thresholds: Mapping[str, float], detector: DetectorConfig
) -> KeywordModel:
    """Write tuned ``thresholds`` and ``detector`` settings into the metadata of the keyword
    model file at ``path`` (atomically, weights unchanged); returns the updated model.
    Raises ``ModelFileError`` (also for thresholds that are not keywords or not in (0, 1])."""
    current = KeywordModel.load(path)
    tuned = KeywordModel(
        current.network,
        labels=current.labels,
        feature_config=current.feature_config,
        thresholds=thresholds,
        detector=asdict(detector),
        source=current.source,
    )
    metadata = {
        **current.network.metadata,
        "thresholds": {k: round(v, 4) for k, v in tuned.thresholds.items()},
        "detector": asdict(tuned.detector_config),
    }
    current.network.save(current.source, metadata=metadata)
    return tuned

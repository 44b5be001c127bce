import pytest

from urgence.corpus.unknown_words import (
    french_vocabulary,
    is_keyword_derivative,
    sound_alikes,
    unknown_words,
)
from urgence.corpus.vocabulary import KEYWORDS, fold


@pytest.fixture(scope="module")
def vocabulary() -> list[str]:
    return french_vocabulary(5000)


def test_vocabulary_is_large_and_plain(vocabulary):
    assert len(vocabulary) == 5000
    assert len(set(vocabulary)) == 5000
    assert all(w.isalpha() and len(w) >= 3 for w in vocabulary)


def test_vocabulary_excludes_keywords_and_their_inflections(vocabulary):
    folded = {fold(w) for w in vocabulary}
    for word in [*KEYWORDS, "brûlures", "incendies", "violence", "vols", "vole", "agressions"]:
        assert fold(word) not in folded, word
    assert not any(w.startswith(("incendi", "hemorragi", "electrocutio")) for w in folded)


def test_derivatives_are_detected_but_different_words_are_not():
    assert is_keyword_derivative("incendiaire")
    assert is_keyword_derivative("Brûlures")
    assert not is_keyword_derivative("volume")
    assert not is_keyword_derivative("gazon")


def test_unknown_words_contain_every_sound_alike_once():
    words = unknown_words(500)
    assert set(sound_alikes()) <= set(words)
    assert len(words) == len(set(words))
    assert "Malaisie" in words and "volet" in words


def test_bad_size_is_refused():
    with pytest.raises(ValueError):
        french_vocabulary(0)

import numpy as np

from urgence.corpus.phrases import (
    GENERIC_TEMPLATES,
    KEYWORD_PHRASES,
    generic_phrase,
    keyword_phrase,
)
from urgence.corpus.vocabulary import KEYWORDS, fold


def _tokens(text: str) -> list[str]:
    return [fold(t.strip(",.")) for t in text.split()]


def test_every_keyword_has_several_phrases_containing_it_as_a_word():
    assert set(KEYWORD_PHRASES) == set(KEYWORDS)
    for keyword, phrases in KEYWORD_PHRASES.items():
        assert len(phrases) >= 5
        for phrase in phrases:
            assert fold(keyword) in _tokens(phrase), phrase


def test_keyword_appears_at_different_positions():
    for keyword, phrases in KEYWORD_PHRASES.items():
        positions = {_tokens(p).index(fold(keyword)) == 0 for p in phrases}
        assert positions == {True, False}, keyword  # at the start and elsewhere


def test_random_phrases_come_from_the_lists_and_use_the_generator():
    rng = np.random.default_rng(0)
    drawn = {keyword_phrase("gaz", rng) for _ in range(40)}
    assert drawn == set(KEYWORD_PHRASES["gaz"])
    assert generic_phrase("volet", np.random.default_rng(1)) in {
        t.format("volet") for t in GENERIC_TEMPLATES
    }

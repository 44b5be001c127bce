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


def test_random_context_phrases_put_the_keyword_among_other_words():
    from urgence.corpus.phrases import CONTEXT_WORDS, KEYWORD_DETERMINERS, random_context_phrase

    vocabulary = ["maison", "rouge", "demain", "parler", "vite"]
    rng = np.random.default_rng(3)
    lengths = set()
    for keyword in KEYWORDS:
        for _ in range(20):
            phrase = random_context_phrase(keyword, vocabulary, rng)
            tokens = phrase.split()
            at = [fold(t) for t in tokens].index(fold(keyword))
            others = tokens[:at] + tokens[at + 1 :]
            determiner_words = {w for d in KEYWORD_DETERMINERS[keyword] for w in d.split()}
            assert set(others) <= set(vocabulary) | determiner_words, phrase
            assert len(others) <= 2 * (CONTEXT_WORDS[1] - 1) + 2
            lengths.add(len(tokens))
    assert len(lengths) >= 6  # contexts of many lengths, the keyword alone included
    again = random_context_phrase("gaz", vocabulary, np.random.default_rng(5))
    assert again == random_context_phrase("gaz", vocabulary, np.random.default_rng(5))

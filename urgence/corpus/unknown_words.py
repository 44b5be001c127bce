"""Words for the `_unknown_` class: a large French vocabulary plus the keywords' sound-alikes.

The vocabulary is the ``wordfreq`` package's French list (shipped with the package, no
download). Keyword forms, their homophones and words derived from a keyword's stem
(``incendiaire``, ``brûlures``...) are removed: they would teach the model that the keyword
is not the keyword. The sound-alikes are different words chosen outside those families.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from urgence.corpus.vocabulary import (
    KEYWORDS,
    SOUND_ALIKES,
    fold,
    is_excluded_from_unknown,
)

# Keywords long enough that their stem (the keyword minus its last letter) identifies a
# family of derived words; "vol" and "gaz" are too short (volume, gazon are different words).
_MIN_STEM_KEYWORD = 5


def _keyword_stems() -> tuple[str, ...]:
    return tuple(fold(k)[:-1] for k in KEYWORDS if len(k) >= _MIN_STEM_KEYWORD)


def is_keyword_derivative(word: str) -> bool:
    """True for keyword forms, homophones and words built on a long keyword's stem."""
    return is_excluded_from_unknown(word) or fold(word).startswith(_keyword_stems())


def sound_alikes() -> list[str]:
    """Every sound-alike of every keyword (hard negatives), in a fixed order."""
    return [word for words in SOUND_ALIKES.values() for word in words]


def french_vocabulary(n_words: int = 5000, *, min_letters: int = 3) -> list[str]:
    """The ``n_words`` most frequent French words from ``wordfreq`` that are plain words
    (letters, at least ``min_letters``) and not keyword derivatives, most frequent first."""
    if n_words <= 0:
        raise ValueError(f"n_words must be positive, got {n_words}")
    from wordfreq import top_n_list

    words = []
    for word in top_n_list("fr", n_words * 2):
        if len(word) >= min_letters and word.isalpha() and not is_keyword_derivative(word):
            words.append(word)
            if len(words) == n_words:
                break
    return words


def unknown_words(n_words: int = 5000) -> list[str]:
    """The `_unknown_` vocabulary: the French list plus the sound-alikes (no duplicates)."""
    seen: set[str] = set()
    words = []
    for word in [*sound_alikes(), *french_vocabulary(n_words)]:
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


# one-letter French words (other one-letter tokens of the list are elided fragments: l', d')
_ONE_LETTER_WORDS = frozenset({"a", "à", "y"})


@lru_cache(maxsize=2)
def natural_vocabulary(n_words: int = 5000) -> tuple[tuple[str, ...], np.ndarray]:
    """(words, probabilities): the ``n_words`` most frequent French words of ``wordfreq``,
    short function words included ("de", "la", "vous"), without elided fragments or keyword
    derivatives, each drawn as often as French uses it. Drawn this way, random words sound
    more like running speech, where the 50 most frequent words make half of what is said
    (the 12 first, "de" to "a", 30%); ``french_vocabulary`` (three letters or more, drawn
    uniformly) has none of the short ones."""
    if n_words <= 0:
        raise ValueError(f"n_words must be positive, got {n_words}")
    from wordfreq import top_n_list, word_frequency

    words = [
        w
        for w in top_n_list("fr", n_words)
        if w.isalpha()
        and (len(w) >= 2 or w in _ONE_LETTER_WORDS)
        and w != "qu"
        and not is_keyword_derivative(w)
    ]
    weights = np.array([word_frequency(w, "fr") for w in words], dtype=np.float64)
    return tuple(words), weights / weights.sum()

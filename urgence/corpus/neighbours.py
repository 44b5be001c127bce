"""Phonetic neighbours of the keywords: French words that hold a near copy of a keyword's sounds.

The hand-written sound-alikes (``vocabulary.SOUND_ALIKES``, ~7 per keyword) do not cover
what a short keyword meets in speech: the shipped session-5 model heard "gaz" in "je
*regarde*", "médecin de *garde*" and "*exactement*" at 0.99, and "vol" in words around
/vɔl/. Here espeak-ng transcribes the most frequent French words; a word is a neighbour of a
keyword when some stretch of its phonemes is within ``max_distance(keyword)`` edits
(substitution, insertion, deletion of one phoneme) of the keyword's phonemes. Short keywords
get hundreds of neighbours ("gaz": garde, regarde, gagner, exemple, base...), long ones few.
The corpus speaks them as `_unknown_` words and puts them into its running speech
(``urgence.corpus.build``), where the mining step finds the ones a model still confuses.

Keyword forms, homophones and words derived from a keyword are never neighbours
(``unknown_words.is_keyword_derivative``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from urgence.corpus.synth import phonemes
from urgence.corpus.unknown_words import is_keyword_derivative
from urgence.corpus.vocabulary import KEYWORDS, SOUND_ALIKES

# candidates: this many of the most frequent French words (wordfreq)
NEIGHBOUR_CANDIDATES = 20000
_IGNORED = set("ˈˌ-_ ")  # stress marks and espeak-ng's word and clause joints


def phoneme_tokens(text: str) -> tuple[str, ...]:
    """espeak-ng's phonemes of ``text`` as a tuple, one entry per phoneme (a nasal vowel
    "ɑ̃" or a long one "aː" is one entry; stress and word boundaries are dropped)."""
    tokens: list[str] = []
    for char in phonemes(text):
        if char in _IGNORED:
            continue
        if tokens and (unicodedata.combining(char) or char == "ː"):
            tokens[-1] += char
        else:
            tokens.append(char)
    return tuple(tokens)


def max_distance(keyword_phonemes: Sequence[str]) -> int:
    """Edits allowed for a neighbour: 1 for up to 5 phonemes ("gaz", "malaise"), then one
    more per 3 phonemes ("électrocution", 12 phonemes: 4)."""
    return max(1, len(keyword_phonemes) // 3)


def substring_distances(pattern: Sequence[str], sequences: Sequence[Sequence[str]]) -> np.ndarray:
    """(len(sequences),) int: for each sequence, the least edit distance between ``pattern``
    and any contiguous stretch of the sequence (Sellers' algorithm: a free start and end in
    the sequence), all sequences at once."""
    n = len(sequences)
    if n == 0:
        return np.zeros(0, np.int64)
    symbols = {s: i for i, s in enumerate(sorted({t for seq in sequences for t in seq}))}
    width = max((len(seq) for seq in sequences), default=0)
    codes = np.full((n, max(width, 1)), -1, np.int64)  # -1: past the end of a sequence
    for row, seq in enumerate(sequences):
        codes[row, : len(seq)] = [symbols[t] for t in seq]
    lengths = np.array([len(seq) for seq in sequences])
    pattern_codes = [symbols.get(t, -2) for t in pattern]  # -2: matches nothing
    previous = np.zeros((n, width + 1), np.int64)  # a stretch may start anywhere: row 0 is 0
    for i, code in enumerate(pattern_codes, start=1):
        current = np.empty_like(previous)
        current[:, 0] = i
        substitution = previous[:, :-1] + (codes[:, :width] != code)
        deletion = previous[:, 1:] + 1
        best = np.minimum(substitution, deletion)
        for j in range(1, width + 1):  # insertions chain along the sequence
            current[:, j] = np.minimum(best[:, j - 1], current[:, j - 1] + 1)
        previous = current
    # the stretch may end anywhere within each sequence
    inside = np.arange(width + 1)[None, :] <= lengths[:, None]
    return np.where(inside, previous, np.iinfo(np.int64).max).min(axis=1)


@lru_cache(maxsize=4)
def confusable_words(candidates: int = NEIGHBOUR_CANDIDATES) -> dict[str, tuple[str, ...]]:
    """keyword -> its hand-written sound-alikes, then its phonetic neighbours among the
    ``candidates`` most frequent French words (most frequent first), without repeats."""
    from wordfreq import top_n_list

    words = [w for w in top_n_list("fr", candidates) if w.isalpha() and len(w) >= 2]
    words = [w for w in words if not is_keyword_derivative(w)]
    transcribed = [phoneme_tokens(w) for w in words]
    result = {}
    for keyword in KEYWORDS:
        target = phoneme_tokens(keyword)
        close = substring_distances(target, transcribed) <= max_distance(target)
        found = [w for w, near in zip(words, close, strict=True) if near]
        result[keyword] = tuple(dict.fromkeys([*SOUND_ALIKES[keyword], *found]))
    return result

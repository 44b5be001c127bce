import numpy as np
import pytest

from urgence.corpus.build import (
    CONFUSABLE_SHARE,
    PAIR_NEIGHBOURS,
    minimal_pair_phrase,
    pair_words,
    running_text,
)
from urgence.corpus.neighbours import (
    confusable_words,
    max_distance,
    phoneme_tokens,
    substring_distances,
)
from urgence.corpus.phrases import KEYWORD_PHRASES
from urgence.corpus.synth import SynthesisError, phonemes
from urgence.corpus.unknown_words import is_keyword_derivative
from urgence.corpus.vocabulary import KEYWORDS, SOUND_ALIKES


def _edit_distance(a, b) -> int:
    table = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = min(
                table[i - 1][j] + 1,
                table[i][j - 1] + 1,
                table[i - 1][j - 1] + (a[i - 1] != b[j - 1]),
            )
    return table[-1][-1]


def _substring_distance_oracle(pattern, sequence) -> int:
    """Every contiguous stretch of the sequence (the empty one included), written out."""
    stretches = [
        sequence[i:j] for i in range(len(sequence) + 1) for j in range(i, len(sequence) + 1)
    ]
    return min(_edit_distance(pattern, stretch) for stretch in stretches)


def test_substring_distances_match_the_loop_oracle(rng):
    alphabet = list("abcdé") + ["ɑ̃"]
    sequences = [tuple(rng.choice(alphabet, int(rng.integers(0, 9)))) for _ in range(60)]
    for _ in range(10):
        pattern = tuple(rng.choice(alphabet, int(rng.integers(1, 5))))
        expected = [_substring_distance_oracle(pattern, s) for s in sequences]
        np.testing.assert_array_equal(substring_distances(pattern, sequences), expected)
    assert substring_distances(("a",), []).shape == (0,)


def test_phonemes_come_from_espeak_one_entry_per_phoneme():
    assert phoneme_tokens("gaz") == ("ɡ", "a", "z")
    assert phoneme_tokens("incendie") == ("ɛ̃", "s", "ɑ̃", "d", "i")  # nasal vowels stay whole
    assert phoneme_tokens("je regarde") == ("ʒ", "ə", "ʁ", "ə", "ɡ", "a", "ʁ", "d")
    assert max_distance(phoneme_tokens("gaz")) == 1
    assert max_distance(phoneme_tokens("électrocution")) >= 3
    with pytest.raises(SynthesisError, match="voice"):
        phonemes("gaz", voice="no-such-voice")


def test_neighbours_sound_close_and_are_never_the_keyword():
    words = confusable_words()
    assert list(words) == list(KEYWORDS)
    for keyword, found in words.items():
        assert found[: len(SOUND_ALIKES[keyword])] == SOUND_ALIKES[keyword]
        assert len(set(found)) == len(found)
        assert not any(is_keyword_derivative(w) for w in found[len(SOUND_ALIKES[keyword]) :])
    # what the session-5 model confused with "gaz" in calls, found from the sounds alone
    assert {"garde", "regarde", "exactement"} <= set(words["gaz"])
    assert {"école", "volonté"} <= set(words["vol"])
    # a short keyword has many neighbours, a long one few
    assert len(words["gaz"]) > 100 and len(words["électrocution"]) < 30


def test_running_speech_holds_confusable_words_in_some_sentences():
    vocabulary = ["maison", "rouge", "je", "vais", "demain"]
    confusables = {"gaz": ("garde", "regarde"), "vol": ("volet",), "malaise": ()}
    rng = np.random.default_rng(0)
    texts = [running_text(vocabulary, rng, confusables).split() for _ in range(600)]
    extra = [[w for w in t if w not in vocabulary and not w.isdigit()] for t in texts]
    holding = [e for e in extra if e]
    assert abs(len(holding) / len(texts) - CONFUSABLE_SHARE) < 0.08
    assert all(1 <= len(e) <= 2 and set(e) <= {"garde", "regarde", "volet"} for e in holding)
    # keywords are drawn first: "volet" (vol's only word) as often as gaz's two together
    counts = {w: sum(e.count(w) for e in holding) for w in ("garde", "regarde", "volet")}
    assert 0.7 < counts["volet"] / (counts["garde"] + counts["regarde"]) < 1.4


def test_minimal_pairs_put_a_close_word_in_the_keyword_place():
    words = pair_words(confusable_words(), "gaz")
    assert len(words) == PAIR_NEIGHBOURS and len({w.lower() for w in words}) == len(words)
    # the hand-written sound-alikes first, then the most frequent neighbours
    assert words[:2] == ["gazon", "gare"] and {"garde", "regarde"} <= set(words)
    assert all(w.isalpha() for w in words)
    assert len(pair_words(confusable_words(), "intoxication")) == 5  # all it has
    rng = np.random.default_rng(0)
    vocabulary = ["maison", "rouge"]
    for _ in range(50):
        text = minimal_pair_phrase("gaz", "garde", vocabulary, rng)
        assert "garde" in text.split() and "gaz" not in text.split()
    # carrier phrases keep their other words: "une fuite de gaz" gives "une fuite de garde"
    texts = {minimal_pair_phrase("gaz", "garde", vocabulary, rng) for _ in range(200)}
    carriers = {p.replace("gaz", "garde") for p in KEYWORD_PHRASES["gaz"]}
    assert carriers & texts and texts - carriers

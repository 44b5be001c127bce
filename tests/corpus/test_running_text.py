import numpy as np

from urgence.corpus.build import NUMBERS_SHARE, RUNNING_SPEECH_WORDS, running_text
from urgence.corpus.unknown_words import is_keyword_derivative, natural_vocabulary


def test_running_speech_mixes_words_and_spoken_numbers():
    vocabulary = ["maison", "rouge", "je", "vais", "demain"]
    rng = np.random.default_rng(0)
    texts = [running_text(vocabulary, rng).split() for _ in range(400)]
    with_numbers = [t for t in texts if any(token.isdigit() for token in t)]
    # about NUMBERS_SHARE of the sentences hold numbers, the rest words only
    assert abs(len(with_numbers) / len(texts) - NUMBERS_SHARE) < 0.08
    for tokens in texts:
        words = [token for token in tokens if not token.isdigit()]
        assert set(words) <= set(vocabulary)
        assert RUNNING_SPEECH_WORDS[0] <= len(words) < RUNNING_SPEECH_WORDS[1]


def test_natural_running_speech_draws_words_as_often_as_french_uses_them():
    vocabulary = ["blorg", "zwip"]  # no French words: a sentence tells where it came from
    rng = np.random.default_rng(0)
    texts = [running_text(vocabulary, rng, natural_share=1.0).split() for _ in range(300)]
    words = [w for t in texts for w in t if not w.isdigit()]
    natural, probabilities = natural_vocabulary()
    assert set(words) <= set(natural) and not set(words) & set(vocabulary)
    # "de" is the most frequent French word: about its share of the words drawn
    share = words.count("de") / len(words)
    assert abs(share - probabilities[natural.index("de")]) < 0.02
    # half the sentences: a share of 0.5 of them are natural, the rest from the vocabulary
    texts = [running_text(vocabulary, rng, natural_share=0.5).split() for _ in range(400)]
    plain = [t for t in texts if set(w for w in t if not w.isdigit()) <= set(vocabulary)]
    assert abs(len(plain) / len(texts) - 0.5) < 0.08


def test_a_natural_share_of_zero_draws_the_same_sentences_as_before():
    vocabulary = ["maison", "rouge", "je", "vais", "demain"]
    first = [running_text(vocabulary, np.random.default_rng(3)) for _ in range(5)]
    second = [running_text(vocabulary, np.random.default_rng(3), None, 0.0) for _ in range(5)]
    assert first == second


def test_natural_vocabulary_has_function_words_and_no_fragments_or_keywords():
    natural, probabilities = natural_vocabulary()
    assert {"de", "la", "vous", "à", "garde"} <= set(natural)
    assert not {"l", "d", "qu", "j"} & set(natural)
    assert not any(is_keyword_derivative(w) for w in natural)
    assert abs(probabilities.sum() - 1.0) < 1e-9 and (probabilities > 0).all()
    assert probabilities[natural.index("de")] > 100 * probabilities[natural.index("garde")]

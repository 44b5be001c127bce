import numpy as np

from urgence.corpus.build import NUMBERS_SHARE, RUNNING_SPEECH_WORDS, running_text


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

import numpy as np
import pytest

from urgence.corpus.synth import SAMPLE_RATE, SynthesisError, french_voices, synthesize


def test_synthesize_returns_float32_16k_with_plausible_duration():
    speech = synthesize("incendie")
    assert speech.samples.dtype == np.float32
    assert speech.samples.ndim == 1
    assert speech.sample_rate == SAMPLE_RATE
    assert 0.3 < speech.duration_s < 1.5
    assert np.abs(speech.samples).max() <= 1.0
    assert np.sqrt(np.mean(speech.samples**2)) > 0.01


def test_word_timings_are_ordered_and_inside_the_signal():
    text = "il y a un incendie dans la cuisine"
    speech = synthesize(text, voice="fr+m3", rate=200)
    assert [w for w, _, _ in speech.words] == text.split()
    previous_end = 0.0
    for _, start, end in speech.words:
        assert 0.0 <= start < end <= speech.duration_s + 1e-6
        assert start >= previous_end - 1e-6
        previous_end = end


def test_apostrophe_words_keep_their_full_text():
    words = [w for w, _, _ in synthesize("c'est une agression").words]
    assert words == ["c'est", "une", "agression"]


def test_faster_rate_gives_shorter_speech():
    slow = synthesize("cambriolage", rate=120).duration_s
    fast = synthesize("cambriolage", rate=300).duration_s
    assert fast < 0.8 * slow


def test_french_voices_lists_the_variants():
    voices = french_voices()
    assert voices[0] == "fr"
    assert len(voices) > 90
    assert "fr+m3" in voices and "fr+f2" in voices
    assert all(v == "fr" or v.startswith("fr+") for v in voices)


def test_bad_input_raises_documented_errors():
    with pytest.raises(ValueError):
        synthesize("  ")
    with pytest.raises(ValueError):
        synthesize("gaz", rate=10)
    with pytest.raises(SynthesisError):
        synthesize("gaz", voice="no-such-voice-xyz")


def test_every_french_voice_speaks():
    for voice in french_voices():
        speech = synthesize("gaz", voice=voice)
        assert np.sqrt(np.mean(speech.samples**2)) > 0.005, voice


def test_concurrent_calls_do_not_mix_their_output():
    from concurrent.futures import ThreadPoolExecutor

    texts = ["il y a un incendie", "ça sent le gaz dans la cave"] * 4
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda t: synthesize(t, voice="fr+m2"), texts))
    for text, speech in zip(texts, results, strict=True):
        assert [w for w, _, _ in speech.words] == text.split()
        assert speech.words[-1][1] < speech.duration_s

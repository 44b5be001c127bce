import numpy as np
import pytest

from urgence.corpus import pico
from urgence.corpus.clips import context_clip, context_negative, cut_word, speech_bounds
from urgence.corpus.synth import SAMPLE_RATE, SynthesisError

needs_pico = pytest.mark.skipif(not pico.pico_available(), reason="pico2wave not installed")


def test_voices_are_fixed_distinct_and_span_the_formant_range():
    voices = pico.pico_voices(40)
    assert voices == pico.pico_voices(40)
    assert len({v.name for v in voices}) == 40 and voices[7].name == "pico:07"
    formants = [v.formant for v in voices]
    assert formants == sorted(formants)
    assert pico.FORMANT_RANGE[0] <= formants[0] < 0.82 and 1.1 < formants[-1] <= 1.12
    for voice in voices:
        assert pico.PITCH_RANGE[0] <= voice.pitch <= pico.PITCH_RANGE[1]
        assert pico.SPEED_RANGE[0] <= voice.speed <= pico.SPEED_RANGE[1]
    assert pico.pico_voices(0) == []
    with pytest.raises(ValueError):
        pico.pico_voices(-1)


def test_split_around_finds_the_word_without_case_accents_or_punctuation():
    assert pico._split_around("attendez, Électrocution, oui", "électrocution") == (
        "attendez,",
        "Électrocution,",
        "oui",
    )
    assert pico._split_around("incendie dans la cuisine", "incendie")[0] == ""
    with pytest.raises(ValueError, match="not a word sequence"):
        pico._split_around("un incendie", "gaz")


def test_missing_program_is_a_clear_synthesis_error(monkeypatch):
    monkeypatch.setattr(pico, "PICO_COMMAND", "no-such-pico2wave")
    with pytest.raises(SynthesisError, match="libttspico-utils"):
        pico.synthesize_pico("bonjour", voice=pico.pico_voices(1)[0])


@needs_pico
def test_empty_text_is_refused():
    with pytest.raises(ValueError):
        pico.synthesize_pico("  ", voice=pico.pico_voices(1)[0])


def _spectral_centroid(y):
    spectrum = np.abs(np.fft.rfft(y.astype(np.float64)))
    frequencies = np.fft.rfftfreq(len(y), 1 / SAMPLE_RATE)
    return float((spectrum * frequencies).sum() / spectrum.sum())


@needs_pico
def test_low_formant_voices_sound_lower_than_high_ones():
    voices = pico.pico_voices(10)
    low = pico.synthesize_pico("une hémorragie importante", voice=voices[0])
    high = pico.synthesize_pico("une hémorragie importante", voice=voices[-1])
    assert low.dtype == np.float32 and np.abs(low).max() <= 1.0
    assert _spectral_centroid(low) < 0.9 * _spectral_centroid(high)
    # the speed correction keeps durations of the same order despite the resampling
    assert 0.6 < len(low) / len(high) < 1.7


@needs_pico
def test_phrase_is_spoken_in_pieces_with_the_target_span_exact():
    rng = np.random.default_rng(0)
    speech = pico.speak_pico(
        "il y a un incendie dans la cuisine", "incendie", voice=pico.pico_voices(4)[1], rng=rng
    )
    assert [w for w, _, _ in speech.words] == ["il y a un", "incendie", "dans la cuisine"]
    starts = [s for _, s, _ in speech.words]
    ends = [e for _, _, e in speech.words]
    assert starts == sorted(starts) and all(s < e for s, e in zip(starts, ends, strict=True))
    assert ends[-1] == pytest.approx(speech.duration_s)
    # the span holds the word from its first to its last audible sample, pauses around it
    start, end = round(starts[1] * SAMPLE_RATE), round(ends[1] * SAMPLE_RATE)
    gap_before = speech.samples[round(ends[0] * SAMPLE_RATE) : start]
    assert len(gap_before) >= pico.JOIN_PAUSE_S[0] * SAMPLE_RATE - 1 and not gap_before.any()
    first, last = speech_bounds(speech.samples[start:end])
    assert first < 0.05 * SAMPLE_RATE and end - start - last < 0.05 * SAMPLE_RATE
    # the clip makers of the corpus work on it as on espeak-ng speech
    word = cut_word(speech, "incendie")
    assert 0.2 * SAMPLE_RATE < len(word) <= end - start
    assert context_clip(speech, "incendie", rng=rng).shape == (SAMPLE_RATE,)
    negative = context_negative(speech, "incendie", rng=rng)
    assert negative.shape == (SAMPLE_RATE,) and np.abs(negative).max() > 0.01


@needs_pico
def test_a_text_without_target_is_one_piece():
    speech = pico.speak_pico(
        "cinquante-six rue des lilas",
        None,
        voice=pico.pico_voices(1)[0],
        rng=np.random.default_rng(1),
    )
    assert len(speech.words) == 1 and speech.duration_s > 0.8

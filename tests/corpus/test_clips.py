import numpy as np
import pytest

from urgence.corpus.clips import (
    CLIP_SAMPLES,
    ClipError,
    cut_word,
    from_int16,
    make_clip,
    place_in_window,
    squeeze_to_fit,
    to_int16,
    trim_silence,
    word_span,
)
from urgence.corpus.synth import SAMPLE_RATE, synthesize


def _tone(seconds: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_trim_silence_keeps_the_sound_and_a_margin():
    y = np.concatenate([np.zeros(8000, np.float32), _tone(0.3), np.zeros(8000, np.float32)])
    trimmed = trim_silence(y, margin_s=0.02)
    assert trimmed.dtype == np.float32
    assert 0.3 * SAMPLE_RATE <= len(trimmed) <= 0.36 * SAMPLE_RATE + 2 * 160
    assert len(trim_silence(np.zeros(16000, np.float32))) == 0


def test_place_in_window_keeps_the_word_inside_at_varying_offsets():
    rng = np.random.default_rng(0)
    word = _tone(0.4)
    starts = set()
    for _ in range(20):
        clip = place_in_window(word, rng=rng)
        assert clip.shape == (CLIP_SAMPLES,) and clip.dtype == np.float32
        nonzero = np.flatnonzero(clip)
        starts.add(int(nonzero[0]))
        assert np.isclose(np.sum(clip**2), np.sum(word**2))  # nothing cut off
    assert len(starts) > 10
    with pytest.raises(ClipError):
        place_in_window(_tone(1.2), rng=rng)


def test_fit_length_speeds_up_slightly_long_words_and_refuses_very_long_ones():
    fitted = squeeze_to_fit(_tone(1.2))
    assert len(fitted) <= CLIP_SAMPLES and len(fitted) > 0.95 * CLIP_SAMPLES
    assert len(squeeze_to_fit(_tone(0.5))) == 8000
    with pytest.raises(ClipError):
        squeeze_to_fit(_tone(2.0))


def test_cut_word_from_a_phrase_has_the_right_length_and_energy():
    phrase = synthesize("il y a un incendie dans la cuisine", voice="fr+m1", rate=170)
    alone = synthesize("incendie", voice="fr+m1", rate=170)
    word = cut_word(phrase, "incendie")
    isolated = trim_silence(alone.samples)
    assert 0.5 * len(isolated) < len(word) < 1.5 * len(isolated)
    start, end, first, last = word_span(phrase, "incendie")
    assert not first and not last
    assert len(word) <= (end - start) * SAMPLE_RATE + 1
    rms = np.sqrt(np.mean(word**2))
    assert rms > 0.3 * np.sqrt(np.mean(isolated**2))
    clip = make_clip(word, rng=np.random.default_rng(1))
    assert clip.shape == (CLIP_SAMPLES,)


def test_cut_word_reports_a_missing_word():
    with pytest.raises(ClipError, match="not found"):
        cut_word(synthesize("il y a du gaz"), "incendie")


def test_make_clip_refuses_silence():
    with pytest.raises(ClipError):
        make_clip(np.zeros(4000, np.float32), rng=np.random.default_rng(0))


def test_int16_round_trip_is_close():
    clips = np.random.default_rng(0).uniform(-1, 1, (3, 100)).astype(np.float32)
    stored = to_int16(clips)
    assert stored.dtype == np.int16
    assert np.abs(from_int16(stored) - clips).max() < 1e-4


def test_context_clip_keeps_the_neighbouring_words(rng):
    from urgence.corpus.clips import CLIP_SAMPLES, context_clip, cut_word
    from urgence.corpus.synth import synthesize

    speech = synthesize("il y a un incendie dans la cuisine", voice="fr+m3")
    clip = context_clip(speech, "incendie", rng=rng)
    assert clip.shape == (CLIP_SAMPLES,) and clip.dtype == np.float32
    word = cut_word(speech, "incendie")
    # the whole word is inside the window...
    energy_word = float(np.sum(word.astype(np.float64) ** 2))
    assert float(np.sum(clip.astype(np.float64) ** 2)) >= 0.95 * energy_word
    # ...and so is speech of its neighbours: the window holds more than the word alone
    assert float(np.sum(clip.astype(np.float64) ** 2)) > 1.05 * energy_word


def test_context_negative_holds_the_neighbours_but_not_the_word():
    from urgence.corpus.clips import CLIP_SAMPLES, context_negative, word_span
    from urgence.corpus.synth import SAMPLE_RATE, synthesize

    speech = synthesize("il y a un incendie dans la cuisine de ma voisine", voice="fr+m3")
    start_s, end_s, _, _ = word_span(speech, "incendie")
    word = speech.samples[round(start_s * SAMPLE_RATE) : round(end_s * SAMPLE_RATE)]
    for seed in range(8):
        clip = context_negative(speech, "incendie", rng=np.random.default_rng(seed))
        assert clip.shape == (CLIP_SAMPLES,) and clip.dtype == np.float32
        assert np.sqrt(np.mean(clip**2)) > 0.01  # speech, not silence
        # no stretch of the word's samples appears in the window
        probe = word[len(word) // 2 : len(word) // 2 + 400]
        hits = np.lib.stride_tricks.sliding_window_view(clip, probe.size)
        assert not np.any(np.all(hits == probe, axis=1))


def test_context_negative_refuses_a_phrase_that_is_only_the_word():
    from urgence.corpus.clips import ClipError, context_negative
    from urgence.corpus.synth import synthesize

    speech = synthesize("incendie", voice="fr+m3")
    with pytest.raises(ClipError):
        context_negative(speech, "incendie", rng=np.random.default_rng(0))

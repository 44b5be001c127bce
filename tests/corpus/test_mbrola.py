import dataclasses

import numpy as np
import pytest
import soundfile as sf

from urgence.corpus import build, mbrola
from urgence.corpus.clips import cut_word, speech_bounds
from urgence.corpus.splits import split_of
from urgence.corpus.synth import SAMPLE_RATE, SynthesisError

INSTALLED = mbrola.mbrola_voices()
needs_mbrola = pytest.mark.skipif(
    not {"fr1", "fr4"} <= set(INSTALLED), reason="MBROLA voices fr1 and fr4 not installed"
)


def _trimmed(samples: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(samples) > 0.01)
    return samples[loud[0] : loud[-1] + 1]


def _median_pitch_hz(samples: np.ndarray) -> float:
    """Median F0 of the loud 40 ms frames, from the autocorrelation peak in 60-400 Hz."""
    n, pitches = 640, []
    for i in range(0, len(samples) - n, n // 2):
        frame = samples[i : i + n]
        if np.sqrt(np.mean(frame**2)) < 0.05:
            continue
        ac = np.correlate(frame, frame, "full")[n - 1 :]
        low, high = SAMPLE_RATE // 400, SAMPLE_RATE // 60
        lag = low + int(np.argmax(ac[low:high]))
        if ac[lag] > 0.3 * ac[0]:
            pitches.append(SAMPLE_RATE / lag)
    return float(np.median(pitches))


def test_the_voices_are_split_like_every_speaker_and_some_are_never_trained_on():
    splits = {v: split_of(mbrola.speaker_id(v)) for v in mbrola.MBROLA_VOICES}
    assert splits["fr3"] == "test" and splits["fr4"] == "val"
    assert sum(s == "train" for s in splits.values()) == 7


@needs_mbrola
def test_the_voices_of_validation_other_voices_are_never_in_a_corpus(shared_data):
    assert set(mbrola.VALIDATION_VOICES) <= set(mbrola.mbrola_voices())
    assert not set(mbrola.VALIDATION_VOICES) & set(mbrola.corpus_voices())
    # they are that set's v1 and v2: the same word at the same rate, sample for sample
    for voice, other in zip(mbrola.VALIDATION_VOICES, ("v1", "v2"), strict=True):
        clip = shared_data / "validation_other_voices" / f"{other}_clean_125_incendie.wav"
        theirs, _ = sf.read(clip, dtype="float32")
        ours = mbrola.synthesize_mbrola("incendie", voice=voice, rate=125)
        assert abs(len(_trimmed(theirs)) - len(_trimmed(ours))) < 0.01 * SAMPLE_RATE


def test_bad_requests_are_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match="empty"):
        mbrola.synthesize_mbrola("  ", voice="fr1")
    with pytest.raises(ValueError, match="unknown MBROLA voice"):
        mbrola.synthesize_mbrola("bonjour", voice="us1")
    monkeypatch.setattr(mbrola, "MBROLA_COMMAND", "no-such-mbrola")
    assert mbrola.mbrola_voices() == []
    with pytest.raises(SynthesisError, match="scripts/setup-system.sh"):
        mbrola.synthesize_mbrola("bonjour", voice="fr1")


@needs_mbrola
def test_voices_speak_french_at_16_khz_and_sound_different():
    for voice in ("fr1", "fr4"):
        samples = mbrola.synthesize_mbrola("incendie", voice=voice)
        assert samples.dtype == np.float32 and samples.ndim == 1
        assert 0.3 < len(samples) / SAMPLE_RATE < 1.5  # one word, not silence nor a sentence
        assert np.abs(samples).max() <= 1.0 and np.sqrt(np.mean(samples**2)) > 0.01
    # fr1 is a man (~100 Hz), fr4 a woman (~190 Hz): the voice asked for is the one heard
    sentence = "il y a un incendie dans la cuisine"
    male = _median_pitch_hz(mbrola.synthesize_mbrola(sentence, voice="fr1"))
    female = _median_pitch_hz(mbrola.synthesize_mbrola(sentence, voice="fr4"))
    assert 70 < male < 130 and female > 1.5 * male
    slow = mbrola.synthesize_mbrola("il y a un incendie", voice="fr1", rate=120)
    fast = mbrola.synthesize_mbrola("il y a un incendie", voice="fr1", rate=240)
    assert len(slow) > 1.4 * len(fast)


@needs_mbrola
def test_a_text_starting_with_a_dash_is_spoken_not_read_as_an_option():
    assert len(mbrola.synthesize_mbrola("-- vol", voice="fr1")) > 0.1 * SAMPLE_RATE


@needs_mbrola
def test_a_phrase_holds_the_target_with_its_span(rng):
    speech = mbrola.speak_mbrola(
        "il y a un incendie dans la cuisine", "incendie", voice="fr1", rng=rng
    )
    assert [w for w, _, _ in speech.words] == ["il y a un", "incendie", "dans la cuisine"]
    word = cut_word(speech, "incendie")
    first, last = speech_bounds(word)
    assert 0.25 < (last - first) / SAMPLE_RATE < 1.0
    alone = mbrola.speak_mbrola("incendie", "incendie", voice="fr1", rng=rng)
    assert len(alone.words) == 1


def test_shards_per_voice_are_planned_and_refused_when_no_voice_is_installed(monkeypatch):
    small = build.BuildConfig.small(shared=None, voices=1, pico_voices=0, random_voices=0)
    assert not [s for s in build.plan_shards(small) if s.kind == "mbrola"]
    monkeypatch.setattr(build, "corpus_voices", lambda: ["fr2", "fr3"])
    two = dataclasses.replace(small, mbrola_shards=2)
    names = [s.name for s in build.plan_shards(two) if s.kind == "mbrola"]
    assert names == ["mbrola-fr2-0", "mbrola-fr2-1", "mbrola-fr3-0", "mbrola-fr3-1"]
    with pytest.raises(build.BuildError, match="mbrola-shards must be >= 0"):
        build.plan_shards(dataclasses.replace(small, mbrola_shards=-1))
    monkeypatch.setattr(build, "corpus_voices", lambda: [])
    with pytest.raises(build.BuildError, match="needs MBROLA voices"):
        build.plan_shards(two)


@needs_mbrola
def test_a_corpus_trains_on_the_training_voices_only(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "corpus_voices", lambda: ["fr2", "fr3"])
    config = build.BuildConfig.small(
        shared=None, voices=1, pico_voices=0, random_voices=0, mbrola_shards=1
    )
    build.build_corpus(tmp_path, config, verbose=False)
    rows = {}
    for split in ("train", "test"):
        with np.load(tmp_path / f"features_{split}.npz", allow_pickle=False) as data:
            rows[split] = set(data["speaker"].tolist())
    assert "mbrola:fr2" in rows["train"] and "mbrola:fr2" not in rows["test"]
    assert "mbrola:fr3" in rows["test"] and "mbrola:fr3" not in rows["train"]

import re

import numpy as np
import pytest

from urgence.corpus.splits import split_of
from urgence.corpus.vocabulary import KEYWORDS, is_excluded_from_unknown, keyword_of_form
from urgence.triage import calls as calls_module
from urgence.triage.calls import (
    CONTEXT_SENTENCES,
    KEYWORD_PHRASES,
    KEYWORD_SENTENCES,
    NO_KEYWORD_SENTENCES,
    TWO_KEYWORD_SENTENCES,
    TWO_SERVICE_PAIRS,
    CallPlan,
    CallsFileError,
    generate_calls,
    heldout_voices,
    keyword_sentence,
    load_calls,
    plan_call,
    save_calls,
    speak_plan,
)

WORD = re.compile(r"[\w’-]+")


def words(text):
    return [w for part in WORD.findall(text) for w in part.split("'")]


def test_enough_varied_templates():
    assert len(set(KEYWORD_SENTENCES)) >= 60
    assert all(t.count("{np}") == 1 and "{np2}" not in t for t in KEYWORD_SENTENCES)
    assert all(t.count("{np}") == 1 and t.count("{np2}") == 1 for t in TWO_KEYWORD_SENTENCES)
    assert set(KEYWORD_PHRASES) == set(KEYWORDS)
    assert all(KEYWORDS[a] != KEYWORDS[b] for a, b in TWO_SERVICE_PAIRS)


def test_keyword_phrases_hold_exactly_their_keyword():
    for keyword, phrases in KEYWORD_PHRASES.items():
        for phrase in phrases:
            found = [keyword_of_form(w) for w in words(phrase) if keyword_of_form(w)]
            assert found == [keyword], phrase


def test_sentences_without_keywords_have_none():
    for sentence in (*CONTEXT_SENTENCES, *NO_KEYWORD_SENTENCES, *KEYWORD_SENTENCES):
        filler = sentence.replace("{np}", "").replace("{place}", "")
        assert not any(is_excluded_from_unknown(w) for w in words(filler)), sentence
    for place in calls_module.PLACES:
        assert not any(is_excluded_from_unknown(w) for w in words(place)), place


def test_keyword_sentence_holds_the_keywords(rng):
    for keywords in (("gaz",), ("incendie", "brûlure")):
        sentence = keyword_sentence(keywords, rng)
        assert [keyword_of_form(w) for w in words(sentence) if keyword_of_form(w)] == list(keywords)


def test_heldout_voices_are_test_split():
    voices = heldout_voices()
    assert len(voices) >= 5
    assert all(split_of(f"espeak:{v}") == "test" for v in voices)


def test_plans_repeat_with_the_seed():
    voices = heldout_voices()
    a = plan_call("a", ("vol",), np.random.default_rng(3), voices=voices)
    b = plan_call("a", ("vol",), np.random.default_rng(3), voices=voices)
    assert a == b and a.keywords == ("vol",)


def test_generated_calls(rng):
    noises = {"hum": (0.1 * np.sin(np.arange(16000) / 5)).astype(np.float32)}
    calls = generate_calls(10, rng, noises=noises, two_service_share=0.1)
    assert sum(not c.keywords for c in calls) == 2
    assert sum(len(c.services) == 2 for c in calls) == 1
    assert {c.channel for c in calls} == {"clean", "telephone"}
    for call in calls:
        assert call.samples.dtype == np.float32 and np.abs(call.samples).max() <= 0.9 + 1e-6
        assert 5.0 <= call.duration_s <= 35.0
        assert call.services == sorted({KEYWORDS[k] for k, _, _ in call.keywords})
        for _, start, end in call.keywords:
            assert 0 <= start < end <= call.duration_s


def test_missing_keyword_is_a_value_error():
    plan = CallPlan(name="x", sentences=("Bonjour.",), voice="fr", keywords=("gaz",))
    with pytest.raises(ValueError, match="planned keywords"):
        speak_plan(plan)


def test_bad_arguments(rng):
    with pytest.raises(ValueError):
        generate_calls(0, rng, noises={"n": np.ones(10, np.float32)})
    with pytest.raises(ValueError):
        generate_calls(3, rng, noises={})


def test_validation_voices_are_another_held_out_split():
    val = heldout_voices("val")
    assert val and not set(val) & set(heldout_voices())
    with pytest.raises(ValueError):
        heldout_voices("train")


def test_saved_calls_come_back_identical(rng, tmp_path):
    noises = {"hum": (0.1 * np.sin(np.arange(16000) / 5)).astype(np.float32)}
    calls = generate_calls(4, rng, noises=noises, two_service_share=0.25)
    recipe = {"calls": 4, "seed": 3, "voices": "test", "noises": ["hum"]}
    path = tmp_path / "calls.npz"
    save_calls(path, calls, recipe=recipe)
    back = load_calls(path, recipe=dict(recipe))
    assert [c.name for c in back] == [c.name for c in calls]
    for original, loaded in zip(calls, back, strict=True):
        assert np.array_equal(original.samples, loaded.samples)
        assert loaded.samples.dtype == np.float32
        assert (loaded.text, loaded.voice, loaded.channel, loaded.noise) == (
            original.text,
            original.voice,
            original.channel,
            original.noise,
        )
        assert loaded.keywords == original.keywords and loaded.services == original.services
        assert loaded.snr_db == original.snr_db
    assert not list(tmp_path.glob("*.partial"))


def test_saved_calls_of_another_recipe_or_a_broken_file_are_refused(rng, tmp_path):
    noises = {"hum": (0.1 * np.sin(np.arange(16000) / 5)).astype(np.float32)}
    recipe = {"calls": 1, "seed": 0, "voices": "test", "noises": ["hum"]}
    path = tmp_path / "calls.npz"
    save_calls(path, generate_calls(1, rng, noises=noises), recipe=recipe)
    with pytest.raises(CallsFileError, match="generated with"):
        load_calls(path, recipe={**recipe, "seed": 1})
    broken = tmp_path / "broken.npz"
    broken.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CallsFileError, match="cannot read"):
        load_calls(broken, recipe=recipe)
    other = tmp_path / "other.npz"
    np.savez(other, description=np.array('{"format": "something else"}'))
    with pytest.raises(CallsFileError, match="not a file of generated calls"):
        load_calls(other, recipe=recipe)

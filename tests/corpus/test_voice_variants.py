"""Random espeak-ng variants: fixed settings, a data folder espeak-ng accepts, new voices."""

from __future__ import annotations

import numpy as np
import pytest

from urgence.audio.features import FeatureConfig, log_mel
from urgence.corpus import voice_variants
from urgence.corpus.build import BuildConfig, BuildError, plan_shards
from urgence.corpus.splits import split_of
from urgence.corpus.synth import french_voices, synthesize

# every setting a variant file may hold, with how many numbers follow it (None: any)
_SETTINGS = {
    "language": None,
    "name": None,
    "gender": None,
    "pitch": 2,
    "formant": 4,
    "voicing": 1,
    "consonants": 2,
    "breath": 6,
    "roughness": 1,
    "flutter": 1,
    "tone": 8,
    "echo": 2,
    "klatt": 1,
}


def test_names_are_numbered_and_bounded():
    assert voice_variants.names(3) == ["fr+rnd000", "fr+rnd001", "fr+rnd002"]
    assert voice_variants.names(0) == []
    with pytest.raises(ValueError):
        voice_variants.names(voice_variants.COUNT + 1)
    with pytest.raises(ValueError):
        voice_variants.names(-1)


def test_variant_files_are_fixed_distinct_and_well_formed():
    texts = [voice_variants.variant_text(i) for i in range(voice_variants.COUNT)]
    assert texts == [voice_variants.variant_text(i) for i in range(voice_variants.COUNT)]
    assert len(set(texts)) == len(texts)
    for index, text in enumerate(texts):
        lines = text.strip().split("\n")
        assert lines[0] == "language variant"
        assert lines[1] == f"name rnd{index:03d}"
        for line in lines:
            key, *values = line.split()
            assert key in _SETTINGS, line
            if _SETTINGS[key] is not None:
                assert len(values) == _SETTINGS[key], line
                assert all(v.lstrip("-").isdigit() for v in values), line
    # the options really vary across voices
    assert sum("breath" in t for t in texts) > 10
    assert sum("klatt" in t for t in texts) > 10
    assert sum("gender female" in t for t in texts) > voice_variants.COUNT // 4


def _fake_data(root):
    (root / "voices" / "!v").mkdir(parents=True)
    (root / "voices" / "!v" / "m3").write_text("language variant\nname male3\n")
    (root / "lang").mkdir()
    (root / "lang" / "fr").write_text("name French\n")
    (root / "phontab").write_bytes(b"\0\1")
    return root


def test_data_folder_links_the_source_and_adds_the_variants(tmp_path, monkeypatch):
    monkeypatch.setattr(voice_variants.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    source = _fake_data(tmp_path / "data")
    folder = voice_variants.data_folder(source)
    assert folder != source and folder.parent == tmp_path / "tmp"
    assert (folder / "phontab").read_bytes() == b"\0\1"
    assert (folder / "lang" / "fr").read_text() == "name French\n"
    variants = folder / "voices" / "!v"
    assert (variants / "m3").read_text() == "language variant\nname male3\n"
    assert (variants / "rnd005").read_text() == voice_variants.variant_text(5)
    # m3 is the fake data's only training-split variant: every jittered voice comes from it
    assert (variants / "jit003").read_text() == voice_variants.jittered_text(
        3, "language variant\nname male3\n"
    )
    assert len(list(variants.glob("jit*"))) == voice_variants.JITTER_COUNT
    assert voice_variants.data_folder(source) == folder  # made once, then reused
    assert [p.name for p in (tmp_path / "tmp").iterdir()] == [folder.name]  # no staging left


def test_data_folder_falls_back_to_the_source_when_it_cannot_write(tmp_path, monkeypatch):
    monkeypatch.setattr(voice_variants.tempfile, "gettempdir", lambda: str(tmp_path / "missing"))
    source = _fake_data(tmp_path / "data")
    assert voice_variants.data_folder(source) == source.resolve()


def _mean_spectrum(samples: np.ndarray) -> np.ndarray:
    return log_mel(samples, config=FeatureConfig()).mean(axis=1)


def test_random_voices_speak_and_sound_unlike_the_default_voice():
    text = "il y a une fuite de gaz dans la cuisine"
    default = _mean_spectrum(synthesize(text, voice="fr").samples)
    distances = []
    for voice in voice_variants.names(6):
        speech = synthesize(text, voice=voice)
        assert [w for w, _, _ in speech.words] == text.split()
        assert np.sqrt(np.mean(speech.samples**2)) > 0.005, voice
        distances.append(np.abs(_mean_spectrum(speech.samples) - default).mean())
    again = _mean_spectrum(synthesize(text, voice="fr").samples)
    # espeak's own noise between two syntheses of one voice is far smaller
    assert min(distances) > 3 * np.abs(again - default).mean() + 0.05
    assert not any("rnd" in voice for voice in french_voices())


def test_corpus_plan_holds_the_random_voices():
    shards = plan_shards(BuildConfig.small(shared=None, voices=2, random_voices=3))
    voices = [s.items[0] for s in shards if s.kind == "espeak"]
    assert voices[2:] == voice_variants.names(3)
    with pytest.raises(BuildError, match="random-voices"):
        plan_shards(BuildConfig.small(shared=None, random_voices=voice_variants.COUNT + 1))


_STEPH = """language variant
name Steph
gender female

pitch 166 200
flutter 1
tone 100 255 600 70 1200 22 2000 66 3000 12

formant 0 99  80 150
formant 2 99 70 110 150
formant 4 9 59 110
stressAmp 16 16 24 24 16 16 20 24
consonants 55 90
"""


def _numbers(text: str) -> dict[str, list[list[int]]]:
    found: dict[str, list[list[int]]] = {}
    for line in text.splitlines():
        key, *values = line.split() or [""]
        if key and key not in ("language", "name", "gender"):
            found.setdefault(key, []).append([int(v) for v in values])
    return found


def test_jittered_voices_are_numbered_and_bounded():
    assert voice_variants.jittered_names(2) == ["fr+jit000", "fr+jit001"]
    with pytest.raises(ValueError):
        voice_variants.jittered_names(voice_variants.JITTER_COUNT + 1)
    assert split_of("espeak:fr+jit007") == "train"


def test_jittered_text_scales_each_voice_setting_within_its_range():
    source = _numbers(_STEPH)
    texts = [voice_variants.jittered_text(i, _STEPH) for i in range(20)]
    assert texts[4] == voice_variants.jittered_text(4, _STEPH)  # fixed per index
    assert len(set(texts)) == len(texts)
    for index, text in enumerate(texts):
        lines = text.strip().split("\n")
        assert lines[:2] == ["language variant", f"name jit{index:03d}"]
        jittered = _numbers(text)
        assert set(jittered) == set(source) | {"voicing"}  # voicing added around 100
        assert 60 <= jittered["voicing"][0][0] <= 160
        # untouched settings are copied, formant 0's frequency and the formant numbers too
        assert jittered["flutter"] == source["flutter"]
        assert jittered["stressAmp"] == source["stressAmp"]
        (low, high), (pitch_low, pitch_high) = source["pitch"][0], jittered["pitch"][0]
        assert 0.84 * low <= pitch_low <= 1.19 * low and 0.84 * high <= pitch_high <= 1.19 * high
        for before, after in zip(source["formant"], jittered["formant"], strict=True):
            assert after[0] == before[0] and after[4:] == before[4:]
            if before[0] == 0:
                assert after[1] == before[1]
            else:
                assert 0.94 * before[1] - 1 <= after[1] <= 1.06 * before[1] + 1
            assert 0.74 * before[2] - 1 <= after[2] <= 1.34 * before[2] + 1
        tone = jittered["tone"][0]
        assert tone[0::2] == source["tone"][0][0::2]  # frequencies kept, amplitudes scaled
        assert all(1 <= a <= 255 for a in tone[1::2])
        assert all(
            0.59 * b - 1 <= a <= 1.61 * b + 1
            for a, b in zip(jittered["consonants"][0], source["consonants"][0], strict=True)
        )
    # the factors really vary across voices
    assert len({_numbers(t)["voicing"][0][0] for t in texts}) > 10


def test_jittered_voices_come_from_training_variants_only():
    variants = [v[3:] for v in french_voices() if v.startswith("fr+")]
    sources = voice_variants.jitter_sources(variants)
    assert sources == voice_variants.jitter_sources(reversed(variants))  # a fixed order
    assert sources and all(split_of(f"espeak:fr+{v}") == "train" for v in sources)
    assert {"steph2", "steph3"}.isdisjoint(sources)  # validation and test relatives of steph
    assert "steph" in sources


def test_jittered_voices_speak_and_refuse_a_held_out_source():
    text = "il y a une fuite de gaz"
    for voice in voice_variants.jittered_names(2):
        speech = synthesize(text, voice=voice)
        assert [w for w, _, _ in speech.words] == text.split()
        assert np.sqrt(np.mean(speech.samples**2)) > 0.005, voice
    shards = plan_shards(
        BuildConfig.small(shared=None, voices=2, random_voices=0, jittered_voices=2)
    )
    voices = [s.items[0] for s in shards if s.kind == "espeak"]
    assert voices[2:] == voice_variants.jittered_names(2)
    variants = [v[3:] for v in french_voices() if v.startswith("fr+")]
    source = voice_variants.jitter_sources(variants)[0]
    with pytest.raises(BuildError, match=source):
        plan_shards(
            BuildConfig.small(shared=None, jittered_voices=1, holdout=(f"espeak:fr+{source}",))
        )
    with pytest.raises(BuildError, match="jittered-voices"):
        plan_shards(BuildConfig.small(shared=None, jittered_voices=voice_variants.JITTER_COUNT + 1))


def test_jittered_text_copies_what_is_not_numbers_and_drops_comments():
    text = voice_variants.jittered_text(
        0, "language variant\nformant 1 100 80 90 // louder\n// breath 1 2\nbreath x y\n"
    )
    lines = text.splitlines()
    assert "breath x y" in lines and "//" not in text
    formant = next(line for line in lines if line.startswith("formant 1 "))
    assert len(formant.split()) == 5  # jittered, its comment gone

"""Random espeak-ng variants: fixed settings, a data folder espeak-ng accepts, new voices."""

from __future__ import annotations

import numpy as np
import pytest

from urgence.audio.features import FeatureConfig, log_mel
from urgence.corpus import voice_variants
from urgence.corpus.build import BuildConfig, BuildError, plan_shards
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
    assert sum("gender female" in t for t in texts) > 30


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

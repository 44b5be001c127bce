import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from urgence.audio.features import FeatureConfig, log_mel
from urgence.corpus.build import (
    TRAIN_SNR_DB,
    BuildConfig,
    BuildError,
    build_corpus,
    plan_shards,
    shard_rng,
)
from urgence.corpus.dataset import read_npz
from urgence.corpus.mining import _corpus_build_config
from urgence.corpus.pico import pico_available
from urgence.corpus.splits import SPLITS
from urgence.corpus.vocabulary import KEYWORDS, LABELS, SILENCE, UNKNOWN

FEATURE_KEYS = ("x", "label", "speaker", "source", "augmented")


def _features(corpus, split):
    return read_npz(corpus / f"features_{split}.npz", FEATURE_KEYS)


def test_tiny_build_writes_every_file(tiny_corpus):
    for split in SPLITS:
        assert (tiny_corpus / f"features_{split}.npz").is_file()
    assert len(list((tiny_corpus / "clips").glob("*.npz"))) == len(
        list((tiny_corpus / "features").glob("*.npz"))
    )
    manifest = json.loads((tiny_corpus / "build.json").read_text(encoding="utf-8"))
    assert manifest["labels"] == list(LABELS)
    assert manifest["feature_config"]["n_frames"] == 98
    assert manifest["summary"]["features"]["train"] > 0
    # mining draws its augmentations from the saved build settings, tuples included
    saved = _corpus_build_config(tiny_corpus)
    assert saved.content_key() == BuildConfig.small(shared=saved.shared).content_key()
    assert saved.train_snr_db == TRAIN_SNR_DB


def test_every_class_is_present_with_the_right_sources(tiny_corpus):
    data = _features(tiny_corpus, "train")
    present = {LABELS[i] for i in data["label"]}
    assert set(KEYWORDS) <= present
    keyword_sources = {s for s, y in zip(data["source"], data["label"], strict=True) if y < 12}
    phrase_sources = {"espeak-phrase", "espeak-context"}
    assert "espeak-isolated" in keyword_sources and keyword_sources & phrase_sources
    assert keyword_sources <= {"espeak-isolated"} | phrase_sources
    all_sources = set()
    for split in SPLITS:
        all_sources |= set(_features(tiny_corpus, split)["source"])
    assert {"speech-commands", "noise"} <= all_sources
    if pico_available():
        assert {"pico-isolated", "pico-neighbours"} <= all_sources
    labels_by_source = {}
    for split in SPLITS:
        part = _features(tiny_corpus, split)
        for source, label in zip(part["source"], part["label"], strict=True):
            labels_by_source.setdefault(str(source), set()).add(LABELS[label])
    assert labels_by_source["noise"] == {SILENCE}
    assert labels_by_source["speech-commands"] == {UNKNOWN}


def test_training_clips_get_augmented_copies_and_eval_clips_one(tiny_corpus):
    clips = {s: 0 for s in SPLITS}
    for shard in (tiny_corpus / "clips").glob("*.npz"):
        for split in read_npz(shard, ("split",))["split"]:
            clips[str(split)] += 1
    copies = BuildConfig.small().augment_copies
    for split in SPLITS:
        data = _features(tiny_corpus, split)
        expected = clips[split] * (1 + copies if split == "train" else 2)
        assert len(data["label"]) == expected
        assert data["augmented"].sum() == expected - clips[split]
        assert data["x"].shape == (expected, 40, 98)


def test_clean_features_are_the_log_mel_of_the_stored_clips(tiny_corpus):
    shard = sorted((tiny_corpus / "clips").glob("espeak-*.npz"))[0]
    clips = read_npz(shard, ("audio",))["audio"]
    features = read_npz(tiny_corpus / "features" / shard.name, ("x", "augmented"))
    clean = features["x"][~features["augmented"]].astype(np.float32)
    expected = log_mel(clips[0].astype(np.float32) / 32768, config=FeatureConfig())
    np.testing.assert_allclose(clean[0], expected, atol=0.02)
    augmented = features["x"][features["augmented"]].astype(np.float32)
    assert not np.allclose(augmented[0], clean[0], atol=0.1)


def test_speakers_never_cross_splits(tiny_corpus):
    seen = {}
    for split in SPLITS:
        data = _features(tiny_corpus, split)
        for speaker, source in zip(data["speaker"], data["source"], strict=True):
            if source == "noise":  # noise recordings are split by halves, not by name
                continue
            assert seen.setdefault(str(speaker), split) == split, speaker


def test_clip_placement_varies(tiny_corpus):
    shard = sorted((tiny_corpus / "clips").glob("espeak-*.npz"))[0]
    audio = read_npz(shard, ("audio",))["audio"]
    first_sample = {
        int(np.flatnonzero(np.abs(a) > 100)[0]) for a in audio if np.any(np.abs(a) > 100)
    }
    assert len(first_sample) > len(audio) // 2


def test_rerun_skips_finished_shards_and_resumes_a_missing_one(tmp_path, tiny_corpus, fake_shared):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    config = BuildConfig.small(shared=str(fake_shared))
    summary = build_corpus(corpus, config, verbose=False)
    assert summary.shards_built == 0
    assert summary.shards_skipped == len(plan_shards(config))
    victim = sorted((corpus / "features").glob("*.npz"))[0]
    clips_before = (corpus / "clips" / victim.name).read_bytes()
    victim.unlink()
    summary = build_corpus(corpus, config, verbose=False)
    assert summary.shards_built == 1
    assert victim.is_file()
    assert (corpus / "clips" / victim.name).read_bytes() == clips_before


def test_other_parameters_in_the_same_folder_are_refused(tmp_path, tiny_corpus, fake_shared):
    with pytest.raises(BuildError, match="seed"):
        build_corpus(tiny_corpus, BuildConfig.small(shared=str(fake_shared), seed=9), verbose=False)


def test_build_without_shared_data_with_user_recordings(tmp_path):
    speaker = tmp_path / "recordings" / "alice" / "hemorragie"
    speaker.mkdir(parents=True)
    t = np.arange(8000) / 16000
    sf.write(speaker / "1.wav", 0.3 * np.sin(2 * np.pi * 200 * t), 16000)
    (speaker / "bad.wav").write_bytes(b"garbage")
    config = BuildConfig.small(
        shared=None, voices=1, asterisk_clips=0, recordings=str(tmp_path / "recordings")
    )
    summary = build_corpus(tmp_path / "out", config, verbose=False)
    assert any("bad.wav" in p for p in summary.problems)
    sources, labels = set(), set()
    for split in SPLITS:
        data = _features(tmp_path / "out", split)
        sources |= set(data["source"])
        labels |= {
            LABELS[i] for i, s in zip(data["label"], data["source"], strict=True) if s == "user"
        }
    assert "user" in sources and "speech-commands" not in sources
    assert labels == {"hémorragie"}
    assert summary.clips[SILENCE]  # generated when no noise recordings are given


def test_plan_is_deterministic_and_spreads_voices(fake_shared):
    config = BuildConfig.small(shared=str(fake_shared), voices=4)
    first, second = plan_shards(config), plan_shards(config)
    assert first == second
    voices = [s.items[0] for s in first if s.kind == "espeak"]
    # four of espeak-ng's voices, then the small build's one random variant
    assert len(voices) == 5 and voices[0] == "fr" and voices[4] == "fr+rnd000"


def test_bad_options_raise_build_errors(tmp_path):
    with pytest.raises(BuildError, match="voices"):
        plan_shards(BuildConfig.small(shared=None, voices=0))
    with pytest.raises(BuildError, match="muffle"):
        plan_shards(BuildConfig.small(shared=None, muffle=1.5))
    with pytest.raises(BuildError, match="train-snr-db"):
        plan_shards(BuildConfig.small(shared=None, train_snr_db=(20.0, 10.0)))
    with pytest.raises(BuildError, match="natural-running"):
        plan_shards(BuildConfig.small(shared=None, natural_running=-0.1))
    with pytest.raises(BuildError, match="pairs-per-keyword"):
        plan_shards(BuildConfig.small(shared=None, pairs_per_keyword=-1))
    with pytest.raises(BuildError, match="shared data folder not found"):
        build_corpus(tmp_path / "x", BuildConfig.small(shared=str(tmp_path / "nope")))
    assert not (tmp_path / "x").exists()


def test_shard_generators_depend_on_seed_and_name_only():
    a = shard_rng(0, "espeak-fr").random(3)
    assert np.array_equal(a, shard_rng(0, "espeak-fr").random(3))
    assert not np.array_equal(a, shard_rng(1, "espeak-fr").random(3))
    assert not np.array_equal(a, shard_rng(0, "espeak-fr+m1").random(3))


def test_minimal_pairs_are_unknown_clips_of_keyword_phrases(tmp_path):
    config = BuildConfig.small(shared=None, voices=1, random_voices=0, pico_voices=0)
    build_corpus(tmp_path / "c", replace(config, pairs_per_keyword=2), verbose=False)
    clips = np.load(next((tmp_path / "c" / "clips").glob("espeak-*.npz")))
    pairs = clips["source"] == "espeak-pairs"
    assert pairs.sum() == 2 * len(KEYWORDS)
    assert (clips["label"][pairs] == LABELS.index(UNKNOWN)).all()
    assert not any(k in str(t).split() for t in clips["text"][pairs] for k in KEYWORDS)

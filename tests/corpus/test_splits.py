from collections import Counter

import pytest

from urgence.corpus.splits import SPLITS, split_of


def test_split_is_deterministic_and_one_of_the_three():
    for speaker in ("espeak:fr+m3", "speech_commands:0a1b2c3d", "user:alice"):
        assert split_of(speaker) == split_of(speaker)
        assert split_of(speaker) in SPLITS


def test_proportions_are_about_80_10_10():
    counts = Counter(split_of(f"speaker-{i}") for i in range(5000))
    assert 0.77 < counts["train"] / 5000 < 0.83
    assert 0.08 < counts["val"] / 5000 < 0.12
    assert 0.08 < counts["test"] / 5000 < 0.12


def test_holdout_patterns_send_whole_families_to_test():
    family = [f"espeak:fr+f{i}" for i in range(1, 6)]
    assert all(split_of(s, holdout=["espeak:fr+f*"]) == "test" for s in family)
    assert split_of("espeak:fr+m3", holdout=["espeak:fr+f*"]) == split_of("espeak:fr+m3")


def test_empty_speaker_is_refused():
    with pytest.raises(ValueError):
        split_of("")


def test_random_voices_are_training_voices_unless_held_out():
    from urgence.corpus.voice_variants import names

    ids = [f"espeak:{voice}" for voice in names(40)]
    assert {split_of(i) for i in ids} == {"train"}
    assert split_of("espeak:fr+rnd000", holdout=["espeak:fr+rnd00*"]) == "test"

import dataclasses

import numpy as np
import pytest

from urgence.app.cli import main
from urgence.corpus.build import BuildConfig, build_corpus
from urgence.corpus.mining import MiningConfig, mine_hard_examples, save_mined
from urgence.corpus.splits import split_of
from urgence.corpus.vocabulary import KEYWORDS, LABELS, SILENCE, UNKNOWN
from urgence.kws.train import TrainConfig, load_task

SMALL = MiningConfig(sentences_per_voice=1, phrases_per_keyword=1, copies=1)


class FixedModel:
    """Gives every window the same posteriors: which windows are hard is then known."""

    labels = LABELS

    def __init__(self, **scores: float) -> None:
        self.row = np.zeros(len(LABELS), np.float32)
        for label, score in scores.items():
            self.row[LABELS.index(label)] = score

    def predict_proba(self, windows: np.ndarray) -> np.ndarray:
        assert windows.ndim == 3 and windows.shape[1:] == (40, 98)
        return np.tile(self.row, (len(windows), 1))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    build_corpus(out, BuildConfig.small(shared=None, voices=4, pico_voices=0), verbose=False)
    return out


@pytest.fixture(scope="module")
def unsure(corpus):
    """A model that is never sure: gaz at 0.3 everywhere, every other keyword at 0."""
    return mine_hard_examples(FixedModel(gaz=0.3, _unknown_=0.7), corpus, SMALL)


def test_an_unsure_model_yields_both_kinds_from_training_voices_only(unsure):
    labels = [LABELS[i] for i in unsure["label"]]
    negatives = [s for s, label in zip(unsure["source"], labels, strict=True) if label == UNKNOWN]
    positives = [label for label in labels if label != UNKNOWN]
    assert negatives and all(s.endswith("-mined") for s in negatives)
    # every keyword phrase gives windows that hold its keyword, each scored below 0.5
    assert set(positives) == set(KEYWORDS)
    assert SILENCE not in labels
    assert all(split_of(speaker) == "train" for speaker in unsure["speaker"])
    assert unsure["x"].shape == (len(labels), 40, 98) and unsure["x"].dtype == np.float16
    assert np.isfinite(unsure["x"]).all() and not unsure["augmented"].any()


def test_a_confident_model_has_no_hard_positives_and_a_silent_one_no_hard_negatives(corpus, unsure):
    confident = mine_hard_examples(FixedModel(**dict.fromkeys(KEYWORDS, 0.6)), corpus, SMALL)
    assert (confident["label"] == LABELS.index(UNKNOWN)).all()
    n_negatives = (unsure["label"] == LABELS.index(UNKNOWN)).sum()
    # same seed, same sentences; espeak-ng is not bit-for-bit repeatable, so a sentence may
    # last a window more or less
    assert abs(len(confident["label"]) - n_negatives) <= 0.05 * n_negatives
    silent = mine_hard_examples(FixedModel(_silence_=1.0), corpus, SMALL)
    assert len(silent["label"]) and (silent["label"] != LABELS.index(UNKNOWN)).all()


def test_two_workers_mine_the_same_voices_in_the_same_order(corpus, unsure):
    shared = mine_hard_examples(FixedModel(gaz=0.3, _unknown_=0.7), corpus, SMALL, workers=2)

    def voices_in_order(mined):
        return list(dict.fromkeys(mined["speaker"]))

    assert voices_in_order(shared) == voices_in_order(unsure) and len(voices_in_order(shared)) > 1
    # espeak-ng is not bit-for-bit repeatable: a sentence may last a window more or less
    assert abs(len(shared["label"]) - len(unsure["label"])) <= 0.05 * len(unsure["label"])
    assert set(shared["label"]) == set(unsure["label"])
    with pytest.raises(ValueError, match="workers"):
        mine_hard_examples(FixedModel(), corpus, SMALL, workers=0)


def test_positive_windows_hold_the_word_with_a_margin(corpus):
    """With a margin wider than a window no window can hold the word: no positives."""
    wide = MiningConfig(sentences_per_voice=0, phrases_per_keyword=1, copies=0, margin_s=0.6)
    mined = mine_hard_examples(FixedModel(_silence_=1.0), corpus, wide)
    assert len(mined["label"]) == 0


def test_a_model_with_other_labels_is_refused(corpus):
    model = FixedModel()
    model.labels = ["yes", "no", UNKNOWN, SILENCE]
    with pytest.raises(ValueError, match="labels"):
        mine_hard_examples(model, corpus, SMALL)


def test_training_adds_the_mined_rows(corpus, unsure, tmp_path, rng):
    path = save_mined(unsure, tmp_path / "mined.npz")
    plain = load_task(TrainConfig(data=str(corpus)), rng)
    more = load_task(TrainConfig(data=str(corpus), extra_train=[str(path)]), rng)
    assert len(more.y_train) == len(plain.y_train) + len(unsure["label"])
    np.testing.assert_array_equal(more.y_train[len(plain.y_train) :], unsure["label"])
    assert more.x_train.dtype == np.float32


def test_cli_refuses_a_folder_that_is_not_a_corpus(tmp_path, capsys):
    code = main(["corpus", "mine", "--corpus", str(tmp_path), "--model", "models/kws"])
    assert code == 2
    assert "not a built corpus" in capsys.readouterr().err


def test_minimal_pair_phrases_are_mined_for_hard_negatives(corpus):
    pairs = MiningConfig(
        sentences_per_voice=0, phrases_per_keyword=0, copies=0, pairs_per_keyword=1
    )
    mined = mine_hard_examples(FixedModel(gaz=0.3, _unknown_=0.7), corpus, pairs)
    assert len(mined["label"]) and (mined["label"] == LABELS.index(UNKNOWN)).all()
    assert all(s.endswith("-mined-pair") for s in mined["source"])
    # a model sure of nothing keeps none of their windows
    quiet = mine_hard_examples(FixedModel(_unknown_=1.0), corpus, pairs)
    assert not len(quiet["label"])
    # pairs for one keyword only: one phrase per voice instead of twelve
    gaz_only = dataclasses.replace(pairs, pair_keywords=("gaz",))
    few = mine_hard_examples(FixedModel(gaz=0.3, _unknown_=0.7), corpus, gaz_only)
    assert 0 < len(few["label"]) < len(mined["label"]) / 4


def test_cli_refuses_minimal_pairs_for_a_non_keyword(tmp_path, capsys):
    args = ["corpus", "mine", "--corpus", str(tmp_path), "--pair-keywords", "gaz,_unknown_"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert "only keywords get minimal pairs" in capsys.readouterr().err


def test_mining_config_refuses_minimal_pairs_for_a_non_keyword():
    with pytest.raises(ValueError, match="pair_keywords"):
        MiningConfig(pairs_per_keyword=1, pair_keywords=("gaz", "garde"))


def test_call_sentences_make_every_mined_sentence_when_asked(corpus, monkeypatch):
    from urgence.corpus import dialogue

    drawn = []
    real = dialogue.call_sentence

    def counting(rng, keyword=None):
        drawn.append(keyword)
        return real(rng, keyword)

    monkeypatch.setattr(dialogue, "call_sentence", counting)
    mine_hard_examples(FixedModel(gaz=0.3, _unknown_=0.7), corpus, SMALL)
    assert drawn == []  # the corpus was built without them
    every = dataclasses.replace(SMALL, call_sentences=1.0)
    mine_hard_examples(FixedModel(gaz=0.3, _unknown_=0.7), corpus, every)
    # per training voice: its one running-speech sentence and one phrase per keyword
    voices = drawn.count(None)
    assert voices >= 1 and all(drawn.count(k) == voices for k in KEYWORDS)
    with pytest.raises(ValueError, match="call_sentences"):
        MiningConfig(call_sentences=1.5)


def test_the_score_cuts_decide_which_windows_are_kept(corpus):
    # every keyword scored 0.6 in every window (not a distribution: only the cuts matter)
    doubtful = FixedModel(**dict.fromkeys(KEYWORDS, 0.6))
    keywords_only = dataclasses.replace(SMALL, sentences_per_voice=0)
    # no hard positive under the default cut of 0.5; under a cut of 0.9, every keyword's
    assert not len(mine_hard_examples(doubtful, corpus, keywords_only)["label"])
    wider = dataclasses.replace(keywords_only, max_positive_score=0.9)
    kept = mine_hard_examples(doubtful, corpus, wider)["label"]
    assert set(kept) == {LABELS.index(k) for k in KEYWORDS}
    # running speech is a hard negative at the default cut of 0.25, not at 0.7
    speech_only = dataclasses.replace(SMALL, phrases_per_keyword=0)
    assert len(mine_hard_examples(doubtful, corpus, speech_only)["label"])
    stricter = dataclasses.replace(speech_only, min_negative_score=0.7)
    assert not len(mine_hard_examples(doubtful, corpus, stricter)["label"])
    with pytest.raises(ValueError, match="max_positive_score"):
        MiningConfig(max_positive_score=0.0)


@pytest.fixture
def mine_cli(tmp_path, monkeypatch):
    """Runs ``urgence corpus mine`` with extra arguments up to the mining, and returns the
    MiningConfig the CLI made of them."""
    from urgence.corpus import mining

    seen = {}

    def record(model, corpus, config, **_):
        seen["config"] = config
        raise ValueError("stop here")

    (tmp_path / "build.json").write_text("{}", encoding="utf-8")
    monkeypatch.setattr(mining, "mine_hard_examples", record)
    monkeypatch.setattr("urgence.kws.model.KeywordModel.load", lambda path: object())

    def run(*extra: str) -> MiningConfig:
        assert main(["corpus", "mine", "--corpus", str(tmp_path), "--model", "m", *extra]) == 2
        return seen["config"]

    return run


def test_cli_passes_the_score_cuts(mine_cli):
    config = mine_cli("--max-positive-score", "0.9", "--min-negative-score", "0.3")
    assert config.max_positive_score == 0.9
    assert config.min_negative_score == 0.3


def test_single_words_are_mined_for_hard_negatives(corpus, unsure):
    words = dataclasses.replace(SMALL, words_per_voice=3)
    mined = mine_hard_examples(FixedModel(gaz=0.3, _unknown_=0.7), corpus, words)
    from_words = np.char.endswith(mined["source"], "-mined-word")
    assert from_words.any() and (mined["label"][from_words] == LABELS.index(UNKNOWN)).all()
    assert all(split_of(speaker) == "train" for speaker in mined["speaker"][from_words])
    # beside the sentences and phrases, not instead of them (espeak-ng is not bit-for-bit
    # repeatable, so their windows are compared by kind, not row by row)
    for key in ("label", "speaker", "source"):
        assert set(mined[key][~from_words]) == set(unsure[key])
    # three short words per voice, each a clean and a noisy copy of at most ~2 s of windows
    voices = len(set(mined["speaker"][from_words]))
    assert from_words.sum() <= voices * 3 * 2 * 25
    # a model sure of nothing keeps none of their windows
    words_only = dataclasses.replace(words, sentences_per_voice=0, phrases_per_keyword=0)
    assert not len(mine_hard_examples(FixedModel(_unknown_=1.0), corpus, words_only)["label"])
    with pytest.raises(ValueError, match="words_per_voice"):
        MiningConfig(words_per_voice=-1)


def test_cli_passes_the_words_per_voice(mine_cli):
    assert mine_cli().words_per_voice == 0
    assert mine_cli("--words-per-voice", "40").words_per_voice == 40

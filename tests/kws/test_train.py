import json

import numpy as np
import pytest

from urgence.corpus.build import BuildConfig, build_corpus
from urgence.corpus.dataset import load_split, read_npz
from urgence.corpus.vocabulary import LABELS
from urgence.kws.evaluate import ClipClassifier
from urgence.kws.train import TrainConfig, keyword_budget, load_task, make_model, train
from urgence.nn import load_model


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    build_corpus(out, BuildConfig.small(shared=None, voices=3), verbose=False)
    return out


def _config(tiny_corpus, tmp_path, **overrides):
    values = dict(
        data=str(tiny_corpus),
        out=str(tmp_path / "model"),
        run_dir=str(tmp_path / "run"),
        architecture="dscnn",
        width=8,
        epochs=2,
        batch_size=16,
        max_train=64,
    )
    values.update(overrides)
    return TrainConfig(**values)


def test_config_file_then_overrides(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"epochs": 3, "architecture": "compact_cnn"}))
    config = TrainConfig.from_sources(path, ["epochs=5", "init_from=models/base"])
    settings = (config.epochs, config.architecture, config.init_from)
    assert settings == (5, "compact_cnn", "models/base")
    with pytest.raises(ValueError, match="unknown training settings"):
        TrainConfig.from_sources(None, ["epoch=3"])
    with pytest.raises(ValueError, match="key=value"):
        TrainConfig.from_sources(None, ["epochs"])


def test_make_model_builds_a_bcresnet_and_refuses_time_stride_elsewhere(tiny_corpus, tmp_path):
    labels = tuple(f"c{i}" for i in range(14))
    config = _config(tiny_corpus, tmp_path, architecture="bcresnet", time_stride=2)
    model = make_model(config, labels)
    assert model.output_shape == (14,) and "BCResBlock" in model.summary()
    with pytest.raises(ValueError, match="bcresnet"):
        make_model(_config(tiny_corpus, tmp_path, time_stride=2), labels)


def test_resume_refuses_a_run_with_another_config(tiny_corpus, tmp_path):
    train(_config(tiny_corpus, tmp_path), verbose=0, stop_after_epoch=1)
    with pytest.raises(ValueError, match="another config"):
        train(_config(tiny_corpus, tmp_path, lr=0.1), resume=True, verbose=0)


def test_keyword_budget_keeps_whole_clips_of_few_voices(rng):
    unknown = LABELS.index("_unknown_")
    # voice a: 4 clips of keyword 0 (2 rows each), 1 clip of keyword 1; voice b: 3 clips of
    # keyword 0; voice c: unknown words only
    y = np.array([0] * 8 + [1] * 2 + [0] * 6 + [unknown] * 4)
    speakers = np.array(["a"] * 10 + ["b"] * 6 + ["c"] * 4)
    clip_ids = np.repeat(np.arange(10), 2)
    keep = keyword_budget(y, speakers, clip_ids, voices=1, clips_per_voice=2, rng=rng)
    kept_voices = set(speakers[keep][y[keep] != unknown])
    assert len(kept_voices) == 1
    # the unknown class shrinks to the keywords' rows per class: 2 clips x 2 rows, + 1 clip
    # x 2 rows of keyword 1 at most, over 2 keyword classes
    assert 1 <= (y[keep] == unknown).sum() <= 4
    kept_keyword_clips = clip_ids[keep][y[keep] != unknown]
    for clip in np.unique(kept_keyword_clips):  # keyword clips are kept whole
        assert (kept_keyword_clips == clip).sum() == 2
    per_keyword = {k: len(np.unique(clip_ids[keep][y[keep] == k])) for k in (0, 1)}
    assert per_keyword[0] == 2 and per_keyword[1] <= 1


def test_exclude_sources_leaves_out_exactly_those_rows(tiny_corpus, tmp_path, rng):
    sources = read_npz(tiny_corpus / "features_train.npz", ("source",))["source"]
    dropped = "espeak-unknown"
    assert (sources == dropped).any()
    config = _config(tiny_corpus, tmp_path, max_train=None, exclude_sources=[dropped])
    data = load_task(config, rng)
    assert len(data.y_train) == len(sources) - (sources == dropped).sum()
    with pytest.raises(ValueError, match="keyword budget"):
        TrainConfig.from_sources(None, ['exclude_sources=["asterisk"]', "keyword_voices=2"])


def test_train_exports_a_keyword_model_with_metadata(tiny_corpus, tmp_path):
    out = train(_config(tiny_corpus, tmp_path), verbose=0)
    model = ClipClassifier.load(out)
    assert model.labels == LABELS
    meta = model.network.metadata
    assert meta["feature_config"]["n_frames"] == 98
    assert len(meta["history"]) == 2 and meta["best_epoch"] in (1, 2)
    assert meta["macs"] > 0 and meta["params"] == model.network.count_params()
    probs = model.predict_proba(np.zeros((3, 40, 98), np.float32))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_resume_continues_an_interrupted_run_exactly(tiny_corpus, tmp_path):
    whole = train(_config(tiny_corpus, tmp_path / "a"), verbose=0)
    # same run, interrupted after epoch 1, then resumed
    part_dir = tmp_path / "b"
    assert train(_config(tiny_corpus, part_dir), verbose=0, stop_after_epoch=1) is None
    assert not (part_dir / "model.json").exists()
    resumed = train(_config(tiny_corpus, part_dir), resume=True, verbose=0)
    a, b = load_model(whole), load_model(resumed)
    for before, after in zip(a.metadata["history"], b.metadata["history"], strict=True):
        before.pop("seconds"), after.pop("seconds")
        assert after == pytest.approx(before)
    for key, value in a.get_weights().items():
        np.testing.assert_array_equal(value, b.get_weights()[key])


def test_transfer_freezes_the_base(tiny_corpus, tmp_path):
    base = train(_config(tiny_corpus, tmp_path / "base", epochs=1), verbose=0)
    before = load_model(base).get_weights()
    head = train(
        _config(
            tiny_corpus,
            tmp_path / "head",
            epochs=1,
            init_from=str(base),
            freeze_base=True,
            keyword_voices=2,
            clips_per_voice_keyword=1,
            max_train=None,
        ),
        verbose=0,
    )
    after = load_model(head)
    all_rows = len(load_split(tiny_corpus, "train")[1])
    assert 0 < after.metadata["training_rows"] < all_rows  # the keyword budget applied
    n_layers = len(after.layers)
    for key, value in before.items():
        index = int(key.split(".")[0])
        if index < n_layers - 2:  # everything but the new classifier is unchanged
            np.testing.assert_array_equal(value, after.get_weights()[key])


def test_evaluate_command_on_corpus_and_degraded_clips(tiny_corpus, tmp_path, capsys):
    from urgence.app.cli import main

    model = train(_config(tiny_corpus, tmp_path, epochs=1), verbose=0)
    assert main(["evaluate", str(model), str(tiny_corpus), "--split", "train", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] > 0 and 0.0 <= report["accuracy"] <= 1.0
    assert set(report["per_class"]) <= set(LABELS)
    figure = tmp_path / "cm.png"
    args = ["evaluate", str(model), str(tiny_corpus), "--split", "train", "--telephone"]
    assert main([*args, "--figure", str(figure)]) == 0
    out = capsys.readouterr().out
    assert "telephone" in out and "accuracy" in out and figure.stat().st_size > 1000
    assert main(["evaluate", str(tmp_path / "nope"), str(tiny_corpus)]) == 2


def test_freeze_layers_keeps_only_the_first_layers_of_the_base(tiny_corpus, tmp_path):
    base = train(_config(tiny_corpus, tmp_path / "base", epochs=1), verbose=0)
    before = load_model(base).get_weights()
    tuned = train(
        _config(tiny_corpus, tmp_path / "tuned", epochs=1, init_from=str(base), freeze_layers=4),
        verbose=0,
    )
    after = load_model(tuned).get_weights()
    frozen = {k for k in before if int(k.split(".")[0]) < 4}
    assert frozen and any(k.startswith("1.") for k in frozen)  # the first convolution
    for key in frozen:
        np.testing.assert_array_equal(before[key], after[key])
    changed = [k for k in before if int(k.split(".")[0]) >= 4 and k in after]
    assert any(not np.array_equal(before[k], after[k]) for k in changed)
    with pytest.raises(ValueError, match="needs init_from"):
        TrainConfig.from_sources(None, ["freeze_layers=4"])


def test_time_shift_moves_each_window_and_fills_with_the_band_floor(rng):
    from urgence.kws.train import _time_shift_batch

    x = rng.normal(size=(32, 3, 20)).astype(np.float32)
    shifted = _time_shift_batch(x, 4, rng)
    assert shifted.shape == x.shape and shifted.dtype == np.float32
    seen = set()
    for original, moved in zip(x, shifted, strict=True):
        floor = original.min(axis=1, keepdims=True)
        matches = [
            s
            for s in range(-4, 5)
            if np.array_equal(
                moved[:, max(s, 0) : 20 + min(s, 0)], original[:, max(-s, 0) : 20 - max(s, 0)]
            )
            and np.array_equal(moved[:, : max(s, 0)], np.broadcast_to(floor, (3, max(s, 0))))
            and np.array_equal(moved[:, 20 + min(s, 0) :], np.broadcast_to(floor, (3, -min(s, 0))))
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 3  # the shifts vary from window to window


def test_smoothed_targets_sum_to_one_and_favour_the_label():
    from urgence.kws.train import smoothed_targets

    rows = smoothed_targets(np.array([0, 3, 3]), 5, 0.1)
    assert rows.shape == (3, 5) and rows.dtype == np.float32
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(rows[1], [0.02, 0.02, 0.02, 0.92, 0.02], rtol=1e-6)
    assert (rows.argmax(axis=1) == [0, 3, 3]).all()
    with pytest.raises(ValueError):
        smoothed_targets(np.array([0]), 5, 1.0)


def test_training_on_two_processes_learns_and_leaves_no_worker(tiny_corpus, tmp_path):
    import multiprocessing

    config = _config(tiny_corpus, tmp_path, processes=2, epochs=3, max_train=None, width=16)
    out = train(config, verbose=0)
    history = load_model(out).metadata["history"]
    assert history[-1]["loss"] < history[0]["loss"]
    assert not multiprocessing.active_children()


def test_a_base_with_the_same_classes_keeps_its_classifier(tiny_corpus, tmp_path):
    """keep_classifier: a mining round can continue training instead of restarting the head."""
    base = train(_config(tiny_corpus, tmp_path / "base", epochs=1), verbose=0)
    trained = load_model(base)
    labels = tuple(trained.metadata["labels"])
    x = load_split(tiny_corpus, "val")[0][:8, None]
    kept = make_model(
        _config(tiny_corpus, tmp_path / "a", init_from=str(base), keep_classifier=True), labels
    )
    np.testing.assert_allclose(kept.predict(x), trained.predict(x), rtol=1e-5, atol=1e-6)
    fresh = make_model(_config(tiny_corpus, tmp_path / "b", init_from=str(base)), labels)
    assert not np.allclose(fresh.predict(x), trained.predict(x), atol=1e-3)
    with pytest.raises(ValueError, match="keep_classifier needs a base with the task's labels"):
        make_model(
            _config(tiny_corpus, tmp_path / "c", init_from=str(base), keep_classifier=True),
            labels[::-1],
        )


def test_corpus_rows_draws_from_the_corpus_and_keeps_every_extra_row(tiny_corpus, tmp_path):
    x, y, speakers, _ = load_split(tiny_corpus, "train")
    extra = tmp_path / "mined.npz"
    np.savez(extra, x=x[:5] + 1.0, label=y[:5], speaker=np.asarray(["mined"] * 5))
    config = _config(tiny_corpus, tmp_path, max_train=None, corpus_rows=7, extra_train=[str(extra)])
    data = load_task(config, np.random.default_rng(0))
    assert len(data.y_train) == 7 + 5
    assert list(data.speakers_train[-5:]) == ["mined"] * 5
    np.testing.assert_array_equal(data.x_train[-5:], x[:5] + 1.0)
    other = load_task(config, np.random.default_rng(1))
    assert not np.array_equal(other.x_train[:7], data.x_train[:7])  # another draw


def test_the_words_task_has_a_class_per_french_word_and_per_english_word(tmp_path):
    """task=words: a base that tells French words apart, Speech Commands' words beside them."""
    from tests.corpus.conftest import make_fake_shared
    from urgence.corpus.words import WordsConfig, build_words

    shared = make_fake_shared(tmp_path / "shared", np.random.default_rng(3))
    words = tmp_path / "words"
    # of 8 voices spread over the list, one is a validation voice
    config = WordsConfig(words=13, voices=8, pico_voices=0, shared=str(shared), workers=1)
    build_words(words, config, log=lambda message: None)
    commands = shared / "data" / "speech_commands_v002_test"
    train_config = _config(
        words, tmp_path, task="words", speech_commands=str(commands), max_train=None, epochs=1
    )
    data = load_task(train_config, np.random.default_rng(0))
    french = json.loads((words / "words.json").read_text("utf-8"))["labels"]
    assert data.labels[:13] == tuple(french)
    assert data.labels[13:] == ("en:bed", "en:stop", "en:yes")
    english_rows = data.y_train >= 13
    assert english_rows.any() and (~english_rows).any()
    assert set(data.speakers_train[english_rows]) <= {"0a1b2c3d", "4e5f6a7b", "8c9d0e1f"}
    model = load_model(train(train_config, verbose=0))
    assert model.metadata["labels"] == list(data.labels)
    alone = load_task(_config(words, tmp_path, task="words"), np.random.default_rng(0))
    assert alone.labels == tuple(french)
    assert len(alone.y_val) > 0 and (alone.y_train < 13).all()


def test_a_run_without_validation_rows_is_refused_before_training(tmp_path):
    from urgence.corpus.words import WordsConfig, build_words

    words = tmp_path / "words"
    # the first, middle and last voices of the list are all training voices
    build_words(words, WordsConfig(words=12, voices=3, pico_voices=0, shared=None, workers=1))
    with pytest.raises(ValueError, match="no validation rows"):
        train(_config(words, tmp_path, task="words"), verbose=0)
    assert not (tmp_path / "model.npz").exists()


def test_a_model_started_from_another_records_the_others_architecture(tiny_corpus, tmp_path):
    """A mining round (init_from) keeps its base's network: the model file says which, not
    the configuration's unused defaults, down a chain of rounds."""
    base = train(
        _config(
            tiny_corpus,
            tmp_path / "base",
            epochs=1,
            architecture="bcresnet",
            width=12,
            time_stride=4,
        ),
        verbose=0,
    )
    tuned = train(
        _config(tiny_corpus, tmp_path / "tuned", epochs=1, init_from=str(base)), verbose=0
    )
    again = train(
        _config(tiny_corpus, tmp_path / "again", epochs=1, init_from=str(tuned)), verbose=0
    )
    built = {"architecture": "bcresnet", "width": 12, "time_stride": 4}
    for model in (base, tuned, again):
        assert load_model(model).metadata["architecture"] == "bcresnet"
        assert load_model(model).metadata["network"] == built
    assert load_model(again).metadata["training"]["width"] == 8  # the unused setting


def test_averaged_weights_are_exported_beside_the_raw_ones(tiny_corpus, tmp_path):
    plain = train(_config(tiny_corpus, tmp_path / "plain", epochs=1), verbose=0)
    config = _config(tiny_corpus, tmp_path / "ema", epochs=1, ema_momentum=0.9)
    averaged = load_model(train(config, verbose=0))
    last, raw = (
        load_model(tmp_path / "ema" / "run" / "last"),
        load_model(tmp_path / "ema" / "run" / "raw"),
    )
    # averaging does not change the training: the raw weights are the plain run's
    for key, value in load_model(plain).get_weights().items():
        np.testing.assert_array_equal(raw.get_weights()[key], value)
    moving = last.optimizer.averaged()
    exported = averaged.get_weights()
    assert moving and all(np.array_equal(exported[k], v) for k, v in moving.items())
    assert not all(np.array_equal(exported[k], raw.get_weights()[k]) for k in moving)
    # the normalisation statistics were recomputed for the averaged weights
    statistics = [k for k in exported if k.endswith("moving_mean")]
    assert statistics and not all(
        np.array_equal(exported[k], raw.get_weights()[k]) for k in statistics
    )
    assert "raw_val_accuracy" in averaged.metadata["history"][0]
    assert ClipClassifier.load(tmp_path / "ema" / "run" / "raw").labels == LABELS
    # without recomputing, they are the last weights' own
    config = _config(tiny_corpus, tmp_path / "kept", epochs=1, ema_momentum=0.9, ema_norm_batches=0)
    kept = load_model(train(config, verbose=0)).get_weights()
    for key in statistics:
        np.testing.assert_array_equal(kept[key], raw.get_weights()[key])

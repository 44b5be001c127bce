import numpy as np
import soundfile as sf

from urgence.app.cli import main


def test_corpus_build_small_prints_the_table(tmp_path, capsys):
    out = tmp_path / "corpus"
    status = main(
        [
            "corpus",
            "build",
            "--out",
            str(out),
            "--small",
            "--voices",
            "1",
            "--no-shared",
            "--quiet",
            "--workers",
            "1",
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "_silence_" in printed and "hémorragie" in printed and "feature rows" in printed
    assert (out / "features_train.npz").is_file()
    assert (
        main(
            [
                "corpus",
                "build",
                "--out",
                str(out),
                "--small",
                "--voices",
                "1",
                "--no-shared",
                "--quiet",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert "0 shards built" in capsys.readouterr().out


def test_corpus_build_reports_a_missing_shared_folder(tmp_path, capsys):
    status = main(
        [
            "corpus",
            "build",
            "--out",
            str(tmp_path / "c"),
            "--small",
            "--shared",
            str(tmp_path / "missing"),
        ]
    )
    assert status == 2
    assert "shared data folder not found" in capsys.readouterr().err


def test_corpus_recordings_lists_clips_and_problems(tmp_path, capsys):
    folder = tmp_path / "rec" / "bob" / "electrocution"
    folder.mkdir(parents=True)
    sf.write(folder / "1.wav", np.zeros(1600), 16000)
    (tmp_path / "rec" / "bob" / "salut").mkdir()
    assert main(["corpus", "recordings", str(tmp_path / "rec")]) == 0
    captured = capsys.readouterr()
    assert "bob\télectrocution\t1" in captured.out
    assert "salut" in captured.err
    assert main(["corpus", "recordings", str(tmp_path / "none")]) == 2


def test_corpus_words_passes_its_options_and_refuses_bad_ones(tmp_path, capsys, monkeypatch):
    import urgence.corpus.words as words

    seen = {}

    def fake_build(out, config, *, log):
        seen.update(out=out, config=config)
        return {"train": 10, "val": 2}

    monkeypatch.setattr(words, "build_words", fake_build)
    args = ["corpus", "words", "--out", str(tmp_path), "--words", "300", "--augment-copies", "2"]
    assert main([*args, "--pico-voices", "0", "--quiet"]) == 0
    assert seen["config"].words == 300 and seen["config"].augment_copies == 2
    assert seen["config"].pico_voices == 0 and seen["config"].keywords
    assert main([*args, "--no-keywords", "--quiet"]) == 0
    assert not seen["config"].keywords and seen["config"].closest
    assert main([*args, "--frequent-only", "--quiet"]) == 0
    assert not seen["config"].keywords and not seen["config"].closest
    assert "10 training rows, 2 validation rows" in capsys.readouterr().out
    assert main(["corpus", "words", "--out", str(tmp_path), "--words", "5"]) == 2
    assert "--words must be >= 12" in capsys.readouterr().err

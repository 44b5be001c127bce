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

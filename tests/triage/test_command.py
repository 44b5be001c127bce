import json

import numpy as np
import pytest
import soundfile as sf

from urgence.app.cli import main
from urgence.kws.model import KeywordModel
from urgence.triage.pipeline import triage_file


@pytest.fixture
def calls(tmp_path, rng):
    good = tmp_path / "appel.wav"
    sf.write(good, (0.01 * rng.standard_normal(32000)).astype(np.float32), 16000)
    silent = tmp_path / "vide.wav"
    sf.write(silent, np.zeros(8000, np.float32), 16000)
    broken = tmp_path / "casse.wav"
    broken.write_bytes(b"not audio at all")
    return good, silent, broken


def test_json_lines_with_an_unreadable_file(incendie_model_path, calls, capsys):
    good, silent, broken = calls
    status = main(
        [
            "triage",
            str(good),
            str(broken),
            str(silent),
            "--json",
            "--model",
            str(incendie_model_path),
        ]
    )
    assert status != 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["file"] for line in lines] == [str(good), str(broken), str(silent)]
    assert set(lines[1]) == {"file", "error"}
    assert lines[0]["service"] == "18" and lines[0]["detections"][0]["keyword"] == "incendie"
    assert lines[0] == {**lines[0], "duration_s": 2.0}
    for line in (lines[0], lines[2]):
        assert set(line) == {
            "file",
            "duration_s",
            "service",
            "service_label",
            "confidence",
            "services",
            "detections",
            "processing_s",
        }


def test_french_lines_and_success(incendie_model_path, calls, capsys):
    good = calls[0]
    assert main(["triage", str(good), "--model", str(incendie_model_path)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("appel.wav  18 Pompiers (0,")
    assert "« incendie » à " in line and line.endswith(" s")


def test_no_keyword_line(tmp_path, calls, capsys, constant_model):
    path = constant_model(tmp_path / "deaf", {})
    assert main(["triage", str(calls[0]), "--model", str(path)]) == 0
    assert capsys.readouterr().out.strip() == (
        "appel.wav  aucun mot-clé — à transmettre à l'opérateur"
    )


def test_model_loaded_once(incendie_model_path, calls, capsys, monkeypatch):
    loads = []
    real = KeywordModel.load.__func__
    monkeypatch.setattr(
        KeywordModel, "load", classmethod(lambda cls, p=None: loads.append(p) or real(cls, p))
    )
    main(["triage", *map(str, calls), "--model", str(incendie_model_path)])
    assert len(loads) == 1
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_missing_model_is_a_clear_error(tmp_path, calls, capsys):
    assert main(["triage", str(calls[0]), "--model", str(tmp_path / "none")]) == 2
    assert "no keyword model" in capsys.readouterr().err


def test_pipeline_result_matches_cli(incendie_model_path, calls, capsys):
    main(["triage", str(calls[0]), "--json", "--model", str(incendie_model_path)])
    cli = json.loads(capsys.readouterr().out)
    direct = triage_file(calls[0], KeywordModel.load(incendie_model_path))
    assert {**cli, "processing_s": 0} == {**direct, "processing_s": 0}

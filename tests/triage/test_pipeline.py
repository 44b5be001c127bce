import numpy as np
import soundfile as sf

from urgence.kws.model import KeywordModel
from urgence.triage.pipeline import french_number, summary_line, triage_file, triage_samples

FIELDS = {
    "file",
    "duration_s",
    "service",
    "service_label",
    "confidence",
    "services",
    "detections",
    "processing_s",
}


def test_samples_to_triage_dict(incendie_model_path, rng):
    model = KeywordModel.load(incendie_model_path)
    y = (0.01 * rng.standard_normal(48000)).astype(np.float32)
    result = triage_samples(y, model, name="appel")
    assert set(result) == FIELDS
    assert result["duration_s"] == 3.0
    assert result["service"] == "18" and result["service_label"] == "18 Pompiers"
    assert [d["keyword"] for d in result["detections"]] == ["incendie"]
    assert 0.0 <= result["confidence"] <= 1.0 and result["processing_s"] >= 0


def test_file_at_8k_stereo_is_read(incendie_model_path, tmp_path, rng):
    path = tmp_path / "appel.wav"
    sf.write(path, 0.01 * rng.standard_normal((16000, 2)), 8000)
    result = triage_file(path, KeywordModel.load(incendie_model_path))
    assert result["file"] == str(path) and result["duration_s"] == 2.0
    assert result["service"] == "18"


def test_unreadable_file_gives_an_error_dict(incendie_model_path, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF nonsense")
    model = KeywordModel.load(incendie_model_path)
    for path in (bad, tmp_path / "missing.wav"):
        result = triage_file(path, model)
        assert set(result) == {"file", "error"} and result["error"]


def test_french_summary_lines():
    result = {
        "file": "/calls/appel.wav",
        "service": "18",
        "services": [
            {"service": "18", "label": "18 Pompiers", "score": 0.94},
            {"service": "15", "label": "15 SAMU", "score": 0.8},
        ],
        "detections": [
            {"keyword": "incendie", "service": "18", "start_s": 2.26, "end_s": 2.9},
            {"keyword": "brûlure", "service": "15", "start_s": 5.0, "end_s": 5.5},
        ],
    }
    assert summary_line(result) == (
        "appel.wav  18 Pompiers (0,94)  « incendie » à 2,3 s ; 15 SAMU (0,80)  « brûlure » à 5,0 s"
    )
    none = {"file": "a.wav", "service": None, "services": [], "detections": []}
    assert summary_line(none) == "a.wav  aucun mot-clé — à transmettre à l'opérateur"
    assert summary_line({"file": "b.wav", "error": "b.wav: empty file"}).startswith("b.wav  erreur")
    assert french_number(0.5, 2) == "0,50"

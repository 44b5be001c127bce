"""End to end: the shipped model on the shipped example calls gives the expected services."""

import json
from pathlib import Path

import pytest

import urgence
from urgence.triage.pipeline import triage_file

ROOT = Path(urgence.__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
EXPECTED = json.loads((EXAMPLES / "expected.json").read_text(encoding="utf-8"))
SHIPPED = ROOT / "models" / "kws"


def test_examples_are_small_and_described():
    wavs = sorted(EXAMPLES.glob("*.wav"))
    assert [w.name for w in wavs] == sorted(EXPECTED)
    assert all(w.stat().st_size < 300_000 for w in wavs)
    assert sum(w.stat().st_size for w in wavs) < 1_500_000
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    assert all(f"`{w.name}`" in readme for w in wavs)
    assert any(not e["services"] for e in EXPECTED.values())  # one for the operator
    assert any(len(e["services"]) == 2 for e in EXPECTED.values())


@pytest.fixture(scope="module")
def shipped_model():
    if not SHIPPED.with_suffix(".json").exists():
        pytest.skip("no shipped model yet (models/kws.json): train one to run this test")
    from urgence.kws.model import KeywordModel

    return KeywordModel.load(SHIPPED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_model_routes_each_example(shipped_model, name):
    result = triage_file(EXAMPLES / name, shipped_model)
    expected = EXPECTED[name]["services"]
    listed = [s["service"] for s in result["services"]]
    if expected:
        assert result["service"] in expected, result
        assert set(expected) <= set(listed), result
    else:
        assert result["service"] is None, result

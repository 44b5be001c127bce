"""The call log: durable detections, status life cycle, recovery after a crash."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

import pytest

from urgence.app.store import (
    SOURCE_LIVE,
    SOURCE_UPLOAD,
    STATUS_ACTIVE,
    STATUS_DONE,
    STATUS_INTERRUPTED,
    CallStore,
    StoreError,
)

TRIAGE = {"service": "18", "service_label": "18 Pompiers", "confidence": 0.9, "services": []}


def _detection(keyword: str, start_s: float) -> SimpleNamespace:
    return SimpleNamespace(keyword=keyword, service="18", start_s=start_s, end_s=start_s + 0.6,
                           score=0.93)


def test_call_life_cycle(tmp_path):
    store = CallStore(tmp_path / "calls.db")
    call_id = store.start_call(SOURCE_LIVE, "micro")
    assert store.get_call(call_id)["status"] == STATUS_ACTIVE
    store.add_detection(call_id, _detection("incendie", 2.0))
    store.add_detection(call_id, _detection("gaz", 1.0))
    store.finish_call(call_id, TRIAGE, duration_s=4.5)

    call = store.get_call(call_id)
    assert call["status"] == STATUS_DONE
    assert call["service_label"] == "18 Pompiers"
    assert call["duration_s"] == pytest.approx(4.5)
    assert call["triage"] == TRIAGE
    assert [d["keyword"] for d in call["detections"]] == ["gaz", "incendie"]  # time order
    assert call["detections"][0]["score"] == pytest.approx(0.93)


def test_list_calls_newest_first_with_counts(tmp_path):
    store = CallStore(tmp_path / "calls.db")
    first = store.start_call(SOURCE_UPLOAD, "a.wav")
    second = store.start_call(SOURCE_LIVE)
    store.add_detection(second, _detection("incendie", 0.5))
    calls = store.list_calls()
    assert [c["id"] for c in calls] == [second, first]
    assert [c["n_detections"] for c in calls] == [1, 0]
    assert [c["id"] for c in store.list_calls(limit=1, offset=1)] == [first]


def test_unknown_call_is_none(tmp_path):
    assert CallStore(tmp_path / "calls.db").get_call(12345) is None


def test_detections_survive_without_close_and_recovery_marks_interrupted(tmp_path):
    path = tmp_path / "calls.db"
    store = CallStore(path)
    call_id = store.start_call(SOURCE_LIVE)
    store.add_detection(call_id, _detection("incendie", 1.0))
    store.update_triage(call_id, TRIAGE)
    done = store.start_call(SOURCE_UPLOAD)
    store.finish_call(done, TRIAGE, 1.0)
    # a second connection (as after a restart) sees the committed rows without any close
    reopened = CallStore(path)
    assert reopened.recover_interrupted() == 1
    call = reopened.get_call(call_id)
    assert call["status"] == STATUS_INTERRUPTED
    assert call["service"] == "18"
    assert [d["keyword"] for d in call["detections"]] == ["incendie"]
    assert reopened.get_call(done)["status"] == STATUS_DONE
    assert reopened.recover_interrupted() == 0


def test_wal_mode(tmp_path):
    CallStore(tmp_path / "calls.db")
    with sqlite3.connect(tmp_path / "calls.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_not_a_database_is_a_store_error(tmp_path):
    bogus = tmp_path / "calls.db"
    bogus.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open the call log"):
        CallStore(bogus)

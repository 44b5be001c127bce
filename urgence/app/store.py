"""The call log: calls and their detections in an embedded SQLite database.

Durability is the point: a call row is written when the call starts (status ``"en cours"``),
each detection is committed the moment it is made, and the latest triage is written whenever
it changes. If the server dies in the middle of a call, everything detected up to then is on
disk; the next server start calls :meth:`CallStore.recover_interrupted`, which marks such
calls ``"interrompu"``. A call that ends normally is ``"terminé"``.

The database runs in WAL mode (readers never block the writer) with ``synchronous=NORMAL``,
which survives a killed process (only a power loss can drop the last transactions). One
connection is shared by the server's threads behind a lock; every public method is one
short transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

STATUS_ACTIVE = "en cours"
STATUS_DONE = "terminé"
STATUS_INTERRUPTED = "interrompu"

SOURCE_LIVE = "direct"
SOURCE_UPLOAD = "enregistrement"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    source        TEXT    NOT NULL,
    name          TEXT,
    status        TEXT    NOT NULL,
    started_at    REAL    NOT NULL,
    ended_at      REAL,
    duration_s    REAL,
    service       TEXT,
    service_label TEXT,
    confidence    REAL,
    triage_json   TEXT
);
CREATE TABLE IF NOT EXISTS detections (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id     INTEGER NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    keyword     TEXT    NOT NULL,
    service     TEXT    NOT NULL,
    start_s     REAL    NOT NULL,
    end_s       REAL    NOT NULL,
    score       REAL    NOT NULL,
    detected_at REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS detections_by_call ON detections(call_id, start_s);
"""

_CALL_COLUMNS = (
    "id, source, name, status, started_at, ended_at, duration_s, service, service_label, "
    "confidence"
)


class StoreError(Exception):
    """The call log cannot be opened or written (bad path, not a database, disk full)."""


class CallStore:
    """Thread-safe access to the call log at ``path`` (created if missing).

    Raises :class:`StoreError` when the file cannot be opened as a call log.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=10.0
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the call log {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            try:
                # autocommit connection: each statement is its own committed transaction
                return self._db.execute(sql, tuple(params))
            except sqlite3.Error as exc:
                raise StoreError(f"call log write failed: {exc}") from exc

    # -- writing ------------------------------------------------------------------------
    def start_call(self, source: str, name: str | None = None) -> int:
        """Create a call row with status "en cours"; returns its id."""
        cursor = self._write(
            "INSERT INTO calls (source, name, status, started_at) VALUES (?, ?, ?, ?)",
            (source, name, STATUS_ACTIVE, time.time()),
        )
        return int(cursor.lastrowid)

    def add_detection(self, call_id: int, detection: Any) -> None:
        """Commit one detection (anything with keyword, service, start_s, end_s, score)."""
        self._write(
            "INSERT INTO detections (call_id, keyword, service, start_s, end_s, score, "
            "detected_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                call_id,
                detection.keyword,
                detection.service,
                float(detection.start_s),
                float(detection.end_s),
                float(detection.score),
                time.time(),
            ),
        )

    def update_triage(self, call_id: int, triage: Mapping[str, Any]) -> None:
        """Record the call's current triage (the router's ``to_dict()``)."""
        self._write(
            "UPDATE calls SET service = ?, service_label = ?, confidence = ?, triage_json = ? "
            "WHERE id = ?",
            (*_triage_columns(triage), call_id),
        )

    def finish_call(self, call_id: int, triage: Mapping[str, Any], duration_s: float) -> None:
        """Mark the call "terminé" with its final triage and audio duration."""
        self._write(
            "UPDATE calls SET service = ?, service_label = ?, confidence = ?, triage_json = ?, "
            "status = ?, ended_at = ?, duration_s = ? WHERE id = ?",
            (*_triage_columns(triage), STATUS_DONE, time.time(), float(duration_s), call_id),
        )

    def recover_interrupted(self) -> int:
        """Mark every call still "en cours" as "interrompu"; returns how many.

        Called once at server start: no call can be in progress then, so any such row was
        left by a server that died mid-call.
        """
        cursor = self._write(
            "UPDATE calls SET status = ?, ended_at = COALESCE(ended_at, ?) WHERE status = ?",
            (STATUS_INTERRUPTED, time.time(), STATUS_ACTIVE),
        )
        return int(cursor.rowcount)

    # -- reading ------------------------------------------------------------------------
    def list_calls(self, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """The most recent calls first, each with its number of detections."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_CALL_COLUMNS}, "
                "(SELECT COUNT(*) FROM detections d WHERE d.call_id = calls.id) AS n_detections "
                "FROM calls ORDER BY id DESC LIMIT ? OFFSET ?",
                (int(limit), int(offset)),
            ).fetchall()
        return [dict(row) for row in rows]

    def get_call(self, call_id: int) -> dict[str, Any] | None:
        """One call with its detections (in time order) and triage, or None if unknown."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_CALL_COLUMNS}, triage_json FROM calls WHERE id = ?", (call_id,)
            ).fetchone()
            if row is None:
                return None
            detections = self._db.execute(
                "SELECT keyword, service, start_s, end_s, score FROM detections "
                "WHERE call_id = ? ORDER BY start_s, id",
                (call_id,),
            ).fetchall()
        call = dict(row)
        triage_json = call.pop("triage_json")
        call["triage"] = json.loads(triage_json) if triage_json else None
        call["detections"] = [dict(d) for d in detections]
        return call



def _triage_columns(triage: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        triage.get("service"),
        triage.get("service_label"),
        triage.get("confidence"),
        json.dumps(triage, ensure_ascii=False),
    )

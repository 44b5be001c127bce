"""The dispatcher console: a FastAPI app serving the page, the REST API and the live stream.

``create_app(model=None, *, db_path=None, data_dir=None, ...)`` builds the app; ``urgence
serve`` runs it with uvicorn. Every call (live or uploaded) is written to the call log
(:mod:`urgence.app.store`) as it happens.

Pages (French, for the dispatcher)
    ``GET /``             the console: live call from the microphone, dropped recordings,
                          live keyword timeline, suggested service, call history.
    ``GET /enrolement``   record a speaker saying each keyword (training data).
    ``GET /docs``         Swagger UI, served from the local ``swagger-ui-bundle-v2`` package
                          when installed (no CDN); ``/openapi.json`` always works.

REST API
    ``POST /api/triage``  multipart field ``file`` (any audio libsndfile reads, at most
                          ``max_upload_bytes``) -> the JSON of ``urgence triage``
                          (``file, duration_s, service, service_label, confidence, services,
                          detections, processing_s``) plus ``call_id``; stored as a call.
                          413 if too large, 422 if not decodable audio.
    ``GET /api/calls?limit=50&offset=0``  recent calls, newest first.
    ``GET /api/calls/{id}``               one call with its detections and triage; 404.
    ``GET /api/vocabulary``               keywords and services (French names, colours).
    ``GET /api/enrol/{speaker}``          takes recorded so far per keyword.
    ``POST /api/enrol/{speaker}/{keyword}``  multipart ``file``: one take, saved as
                          ``<data-dir>/recordings/<speaker>/<keyword>/<n>.wav`` (16 kHz mono
                          PCM 16 bit). Speaker: ``[a-z0-9][a-z0-9_-]{0,39}``; keyword: one of
                          the vocabulary's (accents as written there). 422 otherwise.

WebSocket ``/api/stream?format=s16|f32&name=...`` (live call)
    Client -> server: binary frames of mono 16 kHz PCM, little-endian, ``s16`` (Int16, the
    default) or ``f32`` (Float32 in [-1, 1]); any length up to ``MAX_FRAME_S`` seconds, the
    console sends 100 ms. The text frame ``stop`` (or JSON ``{"type": "stop"}``) ends the
    call; closing the socket ends it too.
    Server -> client, JSON text frames:
      ``{"type": "started", "call_id", "sample_rate": 16000, "format"}`` first;
      ``{"type": "detection", "keyword", "service", "service_label", "colour", "start_s",
      "end_s", "score", "audio_s"}`` for each keyword, as soon as it is detected (times from
      the start of the call's audio; ``audio_s``: audio received when it was decided), already
      committed to the call log;
      ``{"type": "triage", "audio_s", ...}`` the router's ``Triage.to_dict()`` each time a
      detection arrives;
      ``{"type": "progress", "audio_s"}`` once per second of audio received;
      ``{"type": "final", "result": {...}}`` after ``stop``: the same JSON as ``POST
      /api/triage`` (``file`` is ``name`` or "appel en direct"), then the server closes (1000);
      ``{"type": "error", "message"}`` then close with 1003 (bad frame), 1008 (too long) or
      1013 (too many calls).
    Each connection has its own ``StreamingDetector``: calls never share state.

Concurrency: the network runs in inference threads (:class:`SharedModel`, one network copy
each) that batch the windows of all live calls together; feature extraction, detection
bookkeeping and call-log writes run in a thread pool, so the event loop only moves bytes and
JSON. Call-log statuses: "en cours" while live, "terminé" when ended (stop, hang-up or a
refused frame), "interrompu" for calls a dead server left open (set at the next start).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import queue
import re
import threading
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any

import numpy as np
import soundfile as sf
from fastapi import FastAPI, File, HTTPException, Query, UploadFile, WebSocket
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.websockets import WebSocketDisconnect

from urgence.app.store import SOURCE_LIVE, SOURCE_UPLOAD, CallStore
from urgence.audio.io import AudioError, decode_bytes
from urgence.corpus.vocabulary import KEYWORDS, SERVICES

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
SAMPLE_RATE = 16000
DEFAULT_DATA_DIR = Path("data")
DEFAULT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_CALL_S = 3600.0
DEFAULT_MAX_STREAMS = 200
MAX_FRAME_S = 5.0
MAX_ENROL_S = 10.0
LIVE_CALL_NAME = "appel en direct"
SPEAKER_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
SAMPLE_FORMATS = {"s16": np.dtype("<i2"), "f32": np.dtype("<f4")}

# WebSocket close codes (RFC 6455)
CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED = 1003
CLOSE_POLICY = 1008
CLOSE_TRY_LATER = 1013


class SharedModel:
    """A keyword model whose ``predict_proba`` may be called from many threads at once.

    The engine's layers keep per-call caches, so one network must never run in two threads
    together; and one call on N windows costs far less than N calls on one. So requests go to
    ``threads`` inference threads, each with its own copy of the model, and each takes
    whatever requests are waiting (up to ``max_batch`` windows) as one network call. Other
    attributes (``labels``, ``feature_config``, ``thresholds`` ...) are the wrapped model's.
    """

    def __init__(self, model: Any, *, threads: int = 1, max_batch: int = 256) -> None:
        self.model = model
        self.max_batch = max_batch
        self._requests: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        copies = [model] + [copy.deepcopy(model) for _ in range(threads - 1)]
        self._threads = [
            threading.Thread(target=self._serve, args=(copy_,), daemon=True,
                             name=f"urgence-inference-{i}")
            for i, copy_ in enumerate(copies)
        ]
        for thread in self._threads:
            thread.start()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def predict_proba(self, windows: np.ndarray) -> np.ndarray:
        """windows: (N, n_mels, n_frames) float32 -> (N, len(labels)) float32."""
        request = _Request(np.asarray(windows, dtype=np.float32))
        self._requests.put(request)
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.result

    def close(self) -> None:
        for _ in self._threads:
            self._requests.put(None)
        for thread in self._threads:
            thread.join()

    def _serve(self, model: Any) -> None:
        pending: _Request | None = None
        while True:
            first = pending if pending is not None else self._requests.get()
            pending = None
            if first is None:
                return
            batch, size = [first], len(first.windows)
            while size < self.max_batch:
                try:
                    request = self._requests.get_nowait()
                except queue.Empty:
                    break
                if request is None:
                    self._requests.put(None)  # finish this batch, then stop
                    break
                if size + len(request.windows) > self.max_batch:
                    pending = request
                    break
                batch.append(request)
                size += len(request.windows)
            self._run(model, batch)

    @staticmethod
    def _run(model: Any, batch: list[_Request]) -> None:
        try:
            windows = np.concatenate([request.windows for request in batch])
            posteriors = (
                model.predict_proba(windows) if len(windows) else
                np.zeros((0, len(model.labels)), dtype=np.float32)
            )
        except Exception as exc:  # handed to every waiting caller, never kills the thread
            for request in batch:
                request.error = exc
                request.done.set()
            return
        start = 0
        for request in batch:
            request.result = posteriors[start : start + len(request.windows)]
            start += len(request.windows)
            request.done.set()


@dataclass
class _Request:
    windows: np.ndarray
    done: threading.Event = field(default_factory=threading.Event)
    result: np.ndarray | None = None
    error: BaseException | None = None


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Answers 413 to any HTTP request whose body is over ``max_bytes``.

    Checks ``Content-Length`` first, and counts the bytes of bodies sent without it, so an
    upload is refused before it is spooled to disk. Frameworks turn an exception raised while
    reading the body into their own 400, so once the limit is passed, whatever response the
    app starts is replaced by the 413.
    """

    def __init__(self, app: Callable, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        too_large = False

        async def counting_receive() -> dict:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: dict) -> None:
            if too_large:
                if message["type"] == "http.response.start":
                    await self._refuse(scope, receive, send)
                return
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: dict, receive: Callable, send: Callable) -> None:
        response = JSONResponse(
            {"detail": f"request body larger than {self.max_bytes} bytes"}, status_code=413
        )
        await response(scope, receive, send)


def create_app(
    model: Any = None,
    *,
    db_path: str | Path | None = None,
    data_dir: str | Path | None = None,
    model_path: str | Path | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_call_s: float = DEFAULT_MAX_CALL_S,
    max_streams: int = DEFAULT_MAX_STREAMS,
    workers: int = 64,
    inference_threads: int = 2,
) -> FastAPI:
    """Build the console app.

    model: a ``KeywordModel`` (or anything with its interface); None loads ``model_path``
    (default: the shipped model), raising ``urgence.kws.model.ModelFileError`` if absent.
    data_dir: where enrolment recordings go (``<data_dir>/recordings``); default ``./data``.
    db_path: the call log; default ``<data_dir>/calls.db``. Calls left "en cours" by a
    server that died are marked "interrompu" here.
    inference_threads: copies of the network running at once (more than one per core buys
    nothing). Raises ``ValueError`` for a non-positive limit,
    ``urgence.app.store.StoreError`` if the call log cannot be opened.
    """
    limits = (max_upload_bytes, max_call_s, max_streams, workers, inference_threads)
    if min(limits) <= 0:
        raise ValueError("upload, call and stream limits, workers and threads must be positive")
    from urgence.kws.detector import StreamingDetector
    from urgence.triage.pipeline import triage_samples
    from urgence.triage.router import route

    if model is None:
        from urgence.kws.model import KeywordModel

        model = KeywordModel.load(model_path)
    data_dir = Path(data_dir if data_dir is not None else DEFAULT_DATA_DIR).resolve()
    recordings_dir = data_dir / "recordings"
    store = CallStore(db_path if db_path is not None else data_dir / "calls.db")
    store.recover_interrupted()
    shared_model = SharedModel(model, threads=inference_threads)
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="urgence-call")
    live_calls = 0

    async def in_thread(function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(executor, function, *args)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        executor.shutdown(wait=True, cancel_futures=True)
        shared_model.close()
        store.close()

    app = FastAPI(
        title="urgence — console de régulation",
        description="Offline speech triage of French emergency calls to 15 SAMU, 17 Police, "
        "18 Pompiers. The live-stream protocol is described in `urgence.app.server`.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_upload_bytes)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _add_docs(app)

    # -- pages ------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def console_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/enrolement", include_in_schema=False)
    async def enrolment_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "enrol.html")

    # -- REST -------------------------------------------------------------------------------
    @app.get("/api/vocabulary")
    async def vocabulary() -> dict[str, Any]:
        """Keywords (-> service number) and services (French name, label, colour)."""
        return {
            "keywords": KEYWORDS,
            "services": {
                number: {"name": s.name, "label": s.label, "colour": s.colour}
                for number, s in SERVICES.items()
            },
        }

    @app.post("/api/triage")
    async def triage_upload(file: Annotated[UploadFile, File()]) -> dict[str, Any]:
        """Triage one recording; the result is also stored as a call."""
        name = _display_name(file.filename) or "enregistrement"
        data = await file.read()
        try:
            result = await in_thread(_triage_upload, triage_samples, shared_model, data, name)
        except AudioError as exc:
            raise HTTPException(status_code=422, detail=f"invalid audio: {exc}") from exc
        call_id = await in_thread(_store_upload, store, name, result)
        return {**result, "call_id": call_id}

    @app.get("/api/calls")
    async def list_calls(
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[dict[str, Any]]:
        """Recent calls, newest first: status, service, confidence, number of detections."""
        return await in_thread(lambda: store.list_calls(limit=limit, offset=offset))

    @app.get("/api/calls/{call_id}")
    async def get_call(call_id: int) -> dict[str, Any]:
        """One call with its detections (time order) and its last triage."""
        call = await in_thread(store.get_call, call_id)
        if call is None:
            raise HTTPException(status_code=404, detail=f"no call {call_id}")
        return call

    @app.get("/api/enrol/{speaker}")
    async def enrolment_counts(speaker: str) -> dict[str, Any]:
        """How many takes of each keyword ``speaker`` has recorded."""
        speaker_dir = recordings_dir / _check_speaker(speaker)
        return {
            "speaker": speaker,
            "counts": {k: len(_takes(speaker_dir / k)) for k in KEYWORDS},
        }

    @app.post("/api/enrol/{speaker}/{keyword}")
    async def enrol_take(
        speaker: str, keyword: str, file: Annotated[UploadFile, File()]
    ) -> dict[str, Any]:
        """Save one take of ``keyword`` by ``speaker`` as the next ``<n>.wav``."""
        folder = recordings_dir / _check_speaker(speaker) / _check_keyword(keyword)
        if not folder.resolve().is_relative_to(recordings_dir):  # e.g. a symlinked speaker
            raise HTTPException(status_code=422, detail="recording folder outside the data dir")
        data = await file.read()
        try:
            samples = await in_thread(
                lambda: decode_bytes(data, max_seconds=MAX_ENROL_S, name="take")
            )
        except AudioError as exc:
            raise HTTPException(status_code=422, detail=f"invalid audio: {exc}") from exc
        path = await in_thread(_save_take, folder, samples)
        return {
            "speaker": speaker,
            "keyword": folder.name,
            "take": int(path.stem),
            "count": len(_takes(folder)),
            "path": path.relative_to(data_dir).as_posix(),
            "duration_s": round(len(samples) / SAMPLE_RATE, 3),
        }

    # -- live calls ---------------------------------------------------------------------
    @app.websocket("/api/stream")
    async def stream(websocket: WebSocket) -> None:
        nonlocal live_calls
        await websocket.accept()
        sample_format = websocket.query_params.get("format", "s16")
        if sample_format not in SAMPLE_FORMATS:
            await _fail(websocket, CLOSE_UNSUPPORTED,
                        f"unknown format {sample_format!r}; use one of {sorted(SAMPLE_FORMATS)}")
            return
        if live_calls >= max_streams:
            await _fail(websocket, CLOSE_TRY_LATER, f"{max_streams} live calls already")
            return
        live_calls += 1
        try:
            call = _LiveCall(
                detector=StreamingDetector(shared_model),
                route=route,
                store=store,
                executor=executor,
                dtype=SAMPLE_FORMATS[sample_format],
                max_call_s=max_call_s,
                name=_display_name(websocket.query_params.get("name")) or LIVE_CALL_NAME,
            )
            await call.run(websocket, sample_format)
        finally:
            live_calls -= 1

    return app


class _LiveCall:
    """One WebSocket call: frames in; detections committed, then sent, as they come.

    The work on each frame (features, detector, call-log writes) is one job in the thread
    pool, so frames of one call are processed in order and the event loop stays free.
    """

    def __init__(self, *, detector: Any, route: Callable, store: CallStore,
                 executor: ThreadPoolExecutor, dtype: np.dtype, max_call_s: float,
                 name: str) -> None:
        self.detector = detector
        self.route = route
        self.store = store
        self.executor = executor
        self.dtype = dtype
        self.max_samples = int(max_call_s * SAMPLE_RATE)
        self.name = name
        self.detections: list[Any] = []
        self.n_samples = 0
        self.processing_s = 0.0
        self.call_id = 0
        self.finished = False
        self._last_job: Future | None = None

    async def _in_thread(self, function: Callable[..., Any], *args: Any) -> Any:
        self._last_job = self.executor.submit(function, *args)
        return await asyncio.wrap_future(self._last_job)

    def _finish_after_last_job(self) -> None:
        """Finish once the job in flight (if a cancelled task left one) is done: the detector
        must never run in two threads at once."""
        if self._last_job is not None:
            wait([self._last_job])
        self._finish()

    async def run(self, websocket: WebSocket, sample_format: str) -> None:
        self.call_id = await self._in_thread(self.store.start_call, SOURCE_LIVE, self.name)
        try:
            await websocket.send_json({"type": "started", "call_id": self.call_id,
                                       "sample_rate": SAMPLE_RATE, "format": sample_format})
            await self._serve(websocket)
        except WebSocketDisconnect:
            pass  # the caller hung up: what was received is still triaged and logged
        finally:
            if not self.finished:
                # disconnect, refused frame, error or cancellation: finish in the pool, where
                # a cancelled task cannot interrupt it
                self.finished = True
                self.executor.submit(self._finish_after_last_job).add_done_callback(_log_failure)

    async def _serve(self, websocket: WebSocket) -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                refusal = self._refusal(message["bytes"])
                if refusal is not None:
                    await _fail(websocket, *refusal)
                    return
                await self._on_audio(websocket, message["bytes"])
            elif _is_stop(message.get("text")):
                self.finished = True
                new, result = await self._in_thread(self._finish)
                await self._send_detections(websocket, new, result)
                await websocket.send_json({"type": "final",
                                           "result": {**result, "call_id": self.call_id}})
                await websocket.close(CLOSE_NORMAL)
                return
            else:
                await _fail(websocket, CLOSE_UNSUPPORTED,
                            'expected binary audio frames or the text "stop"')
                return

    def _refusal(self, frame: bytes) -> tuple[int, str] | None:
        """(close code, message) if the frame cannot be taken, else None."""
        if len(frame) % self.dtype.itemsize:
            return CLOSE_UNSUPPORTED, (f"frame of {len(frame)} bytes is not a whole number "
                                       f"of {self.dtype.itemsize}-byte samples")
        n = len(frame) // self.dtype.itemsize
        if n > MAX_FRAME_S * SAMPLE_RATE:
            return CLOSE_UNSUPPORTED, f"frame longer than {MAX_FRAME_S:g} s"
        if self.n_samples + n > self.max_samples:
            return CLOSE_POLICY, f"call longer than {self.max_samples / SAMPLE_RATE:g} s"
        if self.dtype.kind == "f" and not np.isfinite(np.frombuffer(frame, self.dtype)).all():
            return CLOSE_UNSUPPORTED, "frame contains NaN or Inf samples"
        return None

    async def _on_audio(self, websocket: WebSocket, frame: bytes) -> None:
        samples = np.frombuffer(frame, dtype=self.dtype).astype(np.float32)
        if self.dtype.kind == "i":
            samples /= np.float32(32768.0)
        previous_second = self.n_samples // SAMPLE_RATE
        self.n_samples += len(samples)
        new, triage = await self._in_thread(self._feed, samples)
        await self._send_detections(websocket, new, triage)
        if self.n_samples // SAMPLE_RATE > previous_second:
            await websocket.send_json({"type": "progress", "audio_s": self._audio_s()})

    def _feed(self, samples: np.ndarray) -> tuple[list, dict | None]:
        """In the pool: detect, then commit the new detections and the updated triage."""
        started = time.perf_counter()
        new = self.detector.feed(samples)
        triage = self._commit(new)
        self.processing_s += time.perf_counter() - started
        return new, triage

    def _commit(self, new: list) -> dict | None:
        if not new:
            return None
        for detection in new:
            self.store.add_detection(self.call_id, detection)
        self.detections.extend(new)
        triage = self.route(self.detections).to_dict()
        self.store.update_triage(self.call_id, triage)
        return triage

    def _finish(self) -> tuple[list, dict]:
        """In the pool: flush the detector and mark the call finished with its final triage."""
        started = time.perf_counter()
        new = self.detector.finish()
        self._commit(new)
        self.processing_s += time.perf_counter() - started
        result = {
            "file": self.name,
            "duration_s": self._audio_s(),
            **self.route(self.detections).to_dict(),
            "processing_s": round(self.processing_s, 3),
        }
        self.store.finish_call(self.call_id, result, self._audio_s())
        return new, result

    async def _send_detections(self, websocket: WebSocket, new: list,
                               triage: dict | None) -> None:
        for detection in new:
            service = SERVICES[detection.service]
            await websocket.send_json({
                "type": "detection", "keyword": detection.keyword,
                "service": detection.service, "service_label": service.label,
                "colour": service.colour, "start_s": round(float(detection.start_s), 3),
                "end_s": round(float(detection.end_s), 3),
                "score": round(float(detection.score), 4), "audio_s": self._audio_s(),
            })
        if new and triage is not None:
            await websocket.send_json({"type": "triage", "audio_s": self._audio_s(),
                                       **_triage_only(triage)})

    def _audio_s(self) -> float:
        return round(self.n_samples / SAMPLE_RATE, 3)


def _log_failure(job: Future) -> None:
    if job.exception() is not None:
        logger.error("could not finish a live call", exc_info=job.exception())


def _triage_only(result: dict[str, Any]) -> dict[str, Any]:
    """The router's fields of a result (without the file name, duration, processing time)."""
    return {key: result[key] for key in
            ("service", "service_label", "confidence", "services", "detections")}


def _is_stop(text: str | None) -> bool:
    if text is None:
        return False
    if text.strip() == "stop":
        return True
    try:
        return json.loads(text).get("type") == "stop"
    except (ValueError, AttributeError):
        return False


async def _fail(websocket: WebSocket, code: int, message: str) -> None:
    await websocket.send_json({"type": "error", "message": message})
    await websocket.close(code)


def _triage_upload(triage_samples: Callable, model: Any, data: bytes, name: str) -> dict:
    """Decode and triage an upload: the JSON of ``urgence triage`` (decoding included in
    ``processing_s``). Raises ``AudioError`` for anything that is not decodable audio."""
    started = time.perf_counter()
    samples = decode_bytes(data, name=name)
    result = triage_samples(samples, model, name=name)
    return {**result, "processing_s": round(time.perf_counter() - started, 4)}


def _store_upload(store: CallStore, name: str, result: dict[str, Any]) -> int:
    """Log a triaged upload as a finished call; returns its id."""
    call_id = store.start_call(SOURCE_UPLOAD, name)
    for detection in result["detections"]:
        store.add_detection(call_id, SimpleNamespace(**detection))
    store.finish_call(call_id, result, result["duration_s"])
    return call_id


def _display_name(filename: str | None) -> str:
    """A client-supplied file name reduced to a printable base name (never used as a path)."""
    if not filename:
        return ""
    base = re.split(r"[\\/]", filename)[-1]
    return "".join(c for c in base if c.isprintable())[:120]


def _check_speaker(speaker: str) -> str:
    if not SPEAKER_PATTERN.fullmatch(speaker):
        raise HTTPException(
            status_code=422,
            detail=f"invalid speaker name {speaker!r}: use 1-40 lower-case letters, digits, "
            "'-' or '_', starting with a letter or digit",
        )
    return speaker


def _check_keyword(keyword: str) -> str:
    keyword = unicodedata.normalize("NFC", keyword)
    if keyword not in KEYWORDS:
        raise HTTPException(
            status_code=422,
            detail=f"unknown keyword {keyword!r}; expected one of: {', '.join(KEYWORDS)}",
        )
    return keyword


def _takes(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    return sorted(int(p.stem) for p in folder.glob("*.wav") if p.stem.isdigit())


_save_lock = threading.Lock()


def _save_take(folder: Path, samples: np.ndarray) -> Path:
    """Write ``samples`` ((n,) float32, 16 kHz) as the next ``<n>.wav`` of ``folder``.

    Written to a temporary file, then renamed: a reader never sees half a WAV.
    """
    with _save_lock:  # two takes of the same keyword must not get the same number
        folder.mkdir(parents=True, exist_ok=True)
        number = max(_takes(folder), default=0) + 1
        path = folder / f"{number}.wav"
        partial = folder / f".{number}.wav.partial"
        sf.write(partial, samples, SAMPLE_RATE, subtype="PCM_16", format="WAV")
        os.replace(partial, path)
    return path


def _add_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from the local ``swagger_ui_bundle`` package, never a CDN."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        swagger_ui_path = None
    if swagger_ui_path is not None:
        from fastapi.openapi.docs import get_swagger_ui_html

        app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

        @app.get("/docs", include_in_schema=False)
        async def swagger_ui() -> HTMLResponse:
            return get_swagger_ui_html(
                openapi_url="/openapi.json",
                title=app.title,
                swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                swagger_css_url="/docs-assets/swagger-ui.css",
                swagger_favicon_url="/docs-assets/favicon-32x32.png",
            )
        return

    @app.get("/docs", include_in_schema=False)
    async def docs_unavailable() -> HTMLResponse:
        return HTMLResponse(
            "<!doctype html><meta charset=utf-8><title>API</title>"
            "<p>Swagger UI is not installed (<code>pip install swagger-ui-bundle-v2</code>); "
            'the API description is at <a href="/openapi.json">/openapi.json</a>.</p>'
        )

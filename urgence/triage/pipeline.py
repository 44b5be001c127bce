"""One call, end to end: audio -> detections -> routing, as the JSON line the CLI prints.

``triage_file(path, model)`` reads a recording; ``triage_samples`` takes decoded samples (an
upload, a generated call). Both return a JSON-serialisable dict::

    {"file", "duration_s", "service", "service_label", "confidence",
     "services": [{"service", "label", "score", "keywords"}],
     "detections": [{"keyword", "service", "start_s", "end_s", "score"}], "processing_s"}

``service`` is None when no keyword was heard. A file that cannot be read gives
``{"file", "error"}`` instead. ``summary_line`` is the one-line French summary a dispatcher
reads.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from urgence.audio.io import AudioError, load_audio
from urgence.kws.detector import DetectorConfig, PosteriorModel, detect
from urgence.triage.router import NO_KEYWORD, route


def triage_samples(
    samples: np.ndarray,
    model: PosteriorModel,
    *,
    name: str,
    config: DetectorConfig | None = None,
) -> dict[str, Any]:
    """samples: (n,) float32 mono at the model's sample rate (16 kHz) -> the triage dict.

    Raises ``ValueError`` for samples that are not a finite float mono signal."""
    started = time.perf_counter()
    triage = route(detect(model, samples, config))
    return {
        "file": name,
        "duration_s": round(samples.shape[0] / model.feature_config.sample_rate, 3),
        **triage.to_dict(),
        "processing_s": round(time.perf_counter() - started, 4),
    }


def triage_file(
    path: str | Path, model: PosteriorModel, *, config: DetectorConfig | None = None
) -> dict[str, Any]:
    """Read and triage one recording (any format ``load_audio`` reads, any rate, mono or
    stereo). A file that cannot be read gives ``{"file", "error"}``; nothing is raised.
    ``processing_s`` includes decoding."""
    started = time.perf_counter()
    try:
        samples = load_audio(path, sr=model.feature_config.sample_rate)
    except AudioError as exc:
        return {"file": str(path), "error": str(exc)}
    result = triage_samples(samples, model, name=str(path), config=config)
    result["processing_s"] = round(time.perf_counter() - started, 4)
    return result


def french_number(value: float, decimals: int) -> str:
    """``2.25 -> "2,3"`` (decimals=1): the French decimal comma."""
    return f"{value:.{decimals}f}".replace(".", ",")


def summary_line(result: dict[str, Any]) -> str:
    """One short French line per call, e.g.
    ``appel.wav  18 Pompiers (0,94)  « incendie » à 2,3 s``; every service heard is listed,
    the chosen one first; no keyword: ``appel.wav  aucun mot-clé — à transmettre à
    l'opérateur``; unreadable file: ``appel.wav  erreur : <reason>``."""
    name = Path(result["file"]).name
    if "error" in result:
        return f"{name}  erreur : {result['error']}"
    if result["service"] is None:
        return f"{name}  {NO_KEYWORD}"
    parts = []
    for service in result["services"]:
        heard = [d for d in result["detections"] if d["service"] == service["service"]]
        evidence = ", ".join(
            f"« {d['keyword']} » à {french_number(d['start_s'], 1)} s" for d in heard
        )
        parts.append(f"{service['label']} ({french_number(service['score'], 2)})  {evidence}")
    return f"{name}  " + " ; ".join(parts)

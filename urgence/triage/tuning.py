"""Detection thresholds chosen for what the product is judged on: calls routed right.

``tune_for_routing`` scores a set of thresholds by the number of validation calls the router
sends to a service they need (or to the operator, for a call without keyword), minus
``false_alarm_cost`` (10) for every detection on real speech that holds no keyword. The
target is at most one false alarm per hour of real speech, so none in the ~23 minutes of
Asterisk prompts tuning reads: at a cost of one call, the tuner traded a false alarm for a
call routed right (session 5, model `x9`: 1 false alarm, 77.7% of the test calls), at ten
it keeps real speech quiet (0, 78.0%). It starts from the best threshold shared by every
keyword, then moves one keyword's threshold at a time while the score improves
(coordinate ascent, a few passes).

Why not the per-keyword F1 of ``urgence.kws.detector.tune_thresholds``: with a few
occurrences of each keyword in the validation calls, per-keyword optima scattered from 0.35
to 0.95 and moved 5-7 routing points from one candidate model to the next; measured on 300
test calls, the shared threshold alone did as well as F1 and the ascent from it best
(docs/MODEL_CARD.md). The model runs once per recording; candidates only re-run the
post-processing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from urgence.kws.detector import (
    DetectorConfig,
    PosteriorModel,
    config_of,
    detections_from_posteriors,
    keyword_columns,
    window_posteriors,
)
from urgence.triage.router import route

CANDIDATES: tuple[float, ...] = tuple(round(0.3 + 0.05 * i, 2) for i in range(14))


def tune_for_routing(
    model: PosteriorModel,
    calls: Sequence[tuple[np.ndarray, Sequence[str]]],
    speech: Sequence[np.ndarray] = (),
    *,
    candidates: Sequence[float] = CANDIDATES,
    passes: int = 2,
    config: DetectorConfig | None = None,
    false_alarm_cost: float = 10.0,
) -> dict[str, float]:
    """Per-keyword thresholds that route the most ``calls`` right (module docstring).

    calls: (samples (n,) float32 16 kHz, the services the call needs, e.g. ["18"]; empty
    for a call the operator should take). speech: recordings (n,) float32 without keywords.
    ``false_alarm_cost``: how many calls routed right one false alarm on ``speech`` is worth.
    Ties keep the current threshold, so a keyword that never matters stays at the shared one.
    """
    if not calls:
        raise ValueError("tuning needs at least one call")
    config = config_of(model, config)
    labels = list(model.labels)
    _, keywords = keyword_columns(labels)
    rate = model.feature_config.sample_rate
    clip_s = model.feature_config.clip_s

    def prepare(samples: np.ndarray) -> tuple[np.ndarray, float]:
        return window_posteriors(model, samples, config), samples.shape[0] / rate

    call_items = [(*prepare(samples), set(needed)) for samples, needed in calls]
    speech_items = [prepare(samples) for samples in speech]

    def detections(posteriors: np.ndarray, duration_s: float, thresholds: Mapping[str, float]):
        return detections_from_posteriors(
            posteriors,
            labels=labels,
            thresholds=thresholds,
            duration_s=duration_s,
            clip_s=clip_s,
            config=config,
        )

    def score(thresholds: Mapping[str, float]) -> int:
        right = 0
        for posteriors, duration_s, needed in call_items:
            service = route(detections(posteriors, duration_s, thresholds)).service
            right += (service in needed) if needed else (service is None)
        false_alarms = sum(len(detections(p, d, thresholds)) for p, d in speech_items)
        return right - false_alarm_cost * false_alarms

    shared = max(candidates, key=lambda c: (score(dict.fromkeys(keywords, c)), c))
    thresholds = dict.fromkeys(keywords, float(shared))
    best = score(thresholds)
    for _ in range(passes):
        changed = False
        for keyword in keywords:
            for candidate in candidates:
                trial = {**thresholds, keyword: float(candidate)}
                value = score(trial)
                if value > best:
                    best, thresholds, changed = value, trial, True
        if not changed:
            break
    return thresholds

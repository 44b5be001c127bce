"""From keyword detections to services: which of 15 / 17 / 18, how sure, and why.

Each service's score combines the scores of its detections as independent pieces of
evidence (noisy-or: ``1 - prod(1 - score)``), so two detections of "incendie" make 18 surer
than one, and never above 1. Services are ranked by score (earlier first evidence breaks
ties); the first is the call's service and its score the confidence. Every service with a
detection is listed: a fire with a burn victim goes to 18 and 15. A call without detections
gets no service (``None``): it goes to the operator rather than to a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from urgence.corpus.vocabulary import SERVICES
from urgence.kws.detector import Detection

NO_KEYWORD = "aucun mot-clé — à transmettre à l'opérateur"


@dataclass(frozen=True)
class ServiceScore:
    """One service with its evidence: the detections that point to it, in time order."""

    service: str  # "15", "17", "18"
    score: float  # in [0, 1]
    detections: tuple[Detection, ...]

    @property
    def label(self) -> str:
        return SERVICES[self.service].label

    @property
    def keywords(self) -> list[str]:
        """Distinct keywords heard for this service, in order of first occurrence."""
        return list(dict.fromkeys(d.keyword for d in self.detections))

    def to_dict(self) -> dict[str, object]:
        return {
            "service": self.service,
            "label": self.label,
            "score": round(self.score, 4),
            "keywords": self.keywords,
        }


@dataclass(frozen=True)
class Triage:
    """The routing of one call. ``service`` is None when no keyword was heard."""

    services: tuple[ServiceScore, ...] = ()
    detections: tuple[Detection, ...] = field(default_factory=tuple)

    @property
    def service(self) -> str | None:
        return self.services[0].service if self.services else None

    @property
    def service_label(self) -> str | None:
        return self.services[0].label if self.services else None

    @property
    def confidence(self) -> float:
        """Score of the chosen service, in [0, 1]; 0.0 when there is none."""
        return self.services[0].score if self.services else 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "service": self.service,
            "service_label": self.service_label,
            "confidence": round(self.confidence, 4),
            "services": [s.to_dict() for s in self.services],
            "detections": [d.to_dict() for d in self.detections],
        }


def route(detections: Sequence[Detection]) -> Triage:
    """Rank the services the detections point to (module docstring). Detections with a score
    outside [0, 1] or an unknown service raise ``ValueError``."""
    ordered = tuple(sorted(detections, key=lambda d: (d.start_s, d.end_s)))
    by_service: dict[str, list[Detection]] = {}
    for detection in ordered:
        if detection.service not in SERVICES:
            raise ValueError(f"unknown service {detection.service!r} in {detection}")
        if not 0.0 <= detection.score <= 1.0:
            raise ValueError(f"detection score must be in [0, 1]: {detection}")
        by_service.setdefault(detection.service, []).append(detection)
    scores = []
    for service, found in by_service.items():
        doubt = 1.0
        for detection in found:
            doubt *= 1.0 - detection.score
        scores.append(ServiceScore(service, 1.0 - doubt, tuple(found)))
    # higher score first; on a tie, the service whose evidence came first
    scores.sort(key=lambda s: (-s.score, s.detections[0].start_s))
    return Triage(services=tuple(scores), detections=ordered)

"""The keyword vocabulary: the 12 keywords, the services they route to, and the class labels.

What a dispatcher reads (service names, keywords) is French with accents.
"""

from __future__ import annotations

from dataclasses import dataclass

UNKNOWN = "_unknown_"
SILENCE = "_silence_"


@dataclass(frozen=True)
class Service:
    number: str  # "15", "17", "18"
    name: str  # "SAMU", "Police", "Pompiers"
    colour: str  # for the dispatcher console

    @property
    def label(self) -> str:
        return f"{self.number} {self.name}"


SERVICES: dict[str, Service] = {
    "15": Service("15", "SAMU", "#d32f2f"),
    "17": Service("17", "Police", "#1565c0"),
    "18": Service("18", "Pompiers", "#ef6c00"),
}

# keyword -> service number, in the order of the seed's table
KEYWORDS: dict[str, str] = {
    "malaise": "15",
    "hémorragie": "15",
    "brûlure": "15",
    "intoxication": "15",
    "violences": "17",
    "agression": "17",
    "vol": "17",
    "cambriolage": "17",
    "incendie": "18",
    "gaz": "18",
    "effondrement": "18",
    "électrocution": "18",
}

# Class labels of every keyword model: the 12 keywords, then the two rejection classes.
LABELS: tuple[str, ...] = (*KEYWORDS, UNKNOWN, SILENCE)


def service_of(keyword: str) -> Service:
    """The service a keyword routes to; KeyError for a non-keyword."""
    return SERVICES[KEYWORDS[keyword]]


def is_keyword(label: str) -> bool:
    return label in KEYWORDS

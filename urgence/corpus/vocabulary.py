"""The keyword vocabulary: the 12 keywords, the services they route to, and the class labels.

What a dispatcher reads (service names, keywords) is French with accents.
"""

from __future__ import annotations

import unicodedata
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


def fold(text: str) -> str:
    """Lower case without accents or ligatures: ``"Hémorragie"`` -> ``"hemorragie"``.

    Used to match user-typed or file-system names against the keywords."""
    decomposed = unicodedata.normalize(
        "NFKD", text.casefold().replace("œ", "oe").replace("æ", "ae")
    )
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# Spoken forms of each keyword that mean the keyword (plurals, homophones): a clip of any of
# them is labelled with the keyword, and none of them may be used as an `_unknown_` word.
KEYWORD_FORMS: dict[str, tuple[str, ...]] = {
    "malaise": ("malaise", "malaises"),
    "hémorragie": ("hémorragie", "hémorragies"),
    "brûlure": ("brûlure", "brûlures"),
    "intoxication": ("intoxication", "intoxications"),
    "violences": ("violences", "violence"),
    "agression": ("agression", "agressions"),
    "vol": ("vol", "vols"),
    "cambriolage": ("cambriolage", "cambriolages"),
    "incendie": ("incendie", "incendies"),
    "gaz": ("gaz",),
    "effondrement": ("effondrement", "effondrements"),
    "électrocution": ("électrocution", "électrocutions"),
}

# Different words that sound exactly like a keyword form (vole = vol, incendié ~ incendie):
# the audio cannot tell them apart, so they belong to no class and are never `_unknown_`.
HOMOPHONES: frozenset[str] = frozenset(
    {
        "vole",
        "voles",
        "volent",
        "incendié",
        "incendiée",
        "incendiés",
        "incendiées",
        "gaze",
        "gazes",
        "malaisé",
        "malaisée",
        "électrocuté",
        "électrocutée",
    }
)

# Different words that sound close to a keyword: the `_unknown_` class must contain them so
# that the model learns the difference (the hard negatives).
SOUND_ALIKES: dict[str, tuple[str, ...]] = {
    "malaise": ("Malaisie", "mayonnaise", "la chaise", "falaise", "Marseillaise"),
    "hémorragie": ("énergie", "allergie", "chirurgie", "horloge", "nostalgie"),
    "brûlure": ("brûlé", "bordure", "voiture", "brûler", "chevelure", "allure"),
    "intoxication": ("indication", "intonation", "installation", "invitation", "intoxiqué"),
    "violences": ("violent", "violette", "violon", "silence", "vigilance", "vacances"),
    "agression": ("agressif", "progression", "impression", "expression", "régression"),
    "vol": ("volet", "volume", "volant", "bol", "folle", "voler", "école", "Paul"),
    "cambriolage": ("cambrioleur", "camouflage", "bricolage", "carrelage", "Cambridge"),
    "incendie": ("incident", "Indien", "insensé", "samedi", "Saint-Denis"),
    "gaz": ("gazon", "gare", "case", "jazz", "vase", "gazelle", "base"),
    "effondrement": ("effrontément", "enfoncement", "fondement", "franchement", "évidemment"),
    "électrocution": ("électricité", "élocution", "exécution", "électronique", "révolution"),
}


def keyword_of_form(word: str) -> str | None:
    """The keyword a spoken form belongs to, ignoring case and accents; None otherwise."""
    folded = fold(word)
    for keyword, forms in KEYWORD_FORMS.items():
        if any(fold(form) == folded for form in forms):
            return keyword
    return None


def is_excluded_from_unknown(word: str) -> bool:
    """True for keyword forms and their homophones, which must never be labelled `_unknown_`."""
    folded = fold(word)
    return keyword_of_form(word) is not None or folded in {fold(h) for h in HOMOPHONES}


def keyword_from_name(name: str) -> str:
    """The keyword named by ``name`` (a folder name typed with or without accents or
    capitals: ``"hemorragie"`` -> ``"hémorragie"``); ``UNKNOWN`` and ``SILENCE`` are accepted
    too. Raises ``KeyError`` naming the valid labels for anything else."""
    folded = fold(name.strip())
    for label in LABELS:
        if fold(label) == folded:
            return label
    keyword = keyword_of_form(name.strip())
    if keyword is not None:
        return keyword
    raise KeyError(f"{name!r} is not a keyword; expected one of: {', '.join(LABELS)}")

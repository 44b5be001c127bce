"""Carrier phrases: sentences a caller might say, with a target word to cut out.

A keyword spoken inside a sentence is shorter and co-articulated with its neighbours, unlike
the same word spoken alone; cutting it out of a phrase gives the model the running-speech
version. Each keyword has several phrases with the keyword at the start, middle and end,
and ``random_context_phrase`` puts it among random words: a handful of fixed phrases teaches
the model their neighbours, and calls say the keywords among other words.
"""

from __future__ import annotations

import numpy as np

from urgence.corpus.vocabulary import KEYWORDS

# keyword -> sentences containing it as a separate token (never elided: "l'incendie" would
# hide the word boundary)
KEYWORD_PHRASES: dict[str, tuple[str, ...]] = {
    "malaise": (
        "mon père fait un malaise",
        "malaise dans le métro, venez vite",
        "ma femme a eu un malaise cardiaque",
        "il y a un homme en malaise sur le trottoir",
        "je crois que c'est un malaise, il ne répond plus",
        "un malaise, il est tombé par terre",
    ),
    "hémorragie": (
        "elle a une hémorragie",
        "hémorragie importante, il saigne beaucoup",
        "je pense que c'est une hémorragie interne",
        "il fait une hémorragie au bras",
        "une grosse hémorragie après l'accident",
    ),
    "brûlure": (
        "une brûlure à la main",
        "brûlure grave au visage",
        "mon fils a une brûlure avec de l'eau bouillante",
        "c'est une brûlure du troisième degré",
        "elle s'est fait une brûlure en cuisinant",
    ),
    "intoxication": (
        "je crois que c'est une intoxication",
        "intoxication au monoxyde de carbone",
        "toute la famille a une intoxication alimentaire",
        "une intoxication aux médicaments",
        "il y a eu une intoxication à l'école",
    ),
    "violences": (
        "il y a des violences dans l'appartement",
        "violences conjugales chez les voisins",
        "je veux signaler des violences",
        "des violences dans la rue, venez vite",
        "elle subit des violences",
    ),
    "agression": (
        "c'est une agression",
        "agression dans le parking",
        "je viens d'être victime d'une agression",
        "une agression au couteau devant la gare",
        "il y a une agression en cours",
    ),
    "vol": (
        "je veux signaler un vol",
        "vol de voiture devant chez moi",
        "on a eu un vol à l'arraché",
        "il y a un vol dans le magasin",
        "un vol, ils sont partis en courant",
    ),
    "cambriolage": (
        "il y a un cambriolage chez le voisin",
        "cambriolage en cours, ils sont dans la maison",
        "je crois que c'est un cambriolage",
        "un cambriolage cette nuit",
        "ma maison a subi un cambriolage",
    ),
    "incendie": (
        "il y a un incendie",
        "incendie dans l'immeuble, au troisième étage",
        "un incendie s'est déclaré dans la cuisine",
        "venez vite, c'est un incendie",
        "le feu, un incendie dans la forêt",
    ),
    "gaz": (
        "ça sent le gaz",
        "gaz dans la cave, une fuite",
        "il y a une fuite de gaz",
        "une odeur de gaz dans l'immeuble",
        "je sens le gaz depuis ce matin",
    ),
    "effondrement": (
        "il y a eu un effondrement",
        "effondrement d'un mur sur la route",
        "un effondrement du plafond dans l'immeuble",
        "c'est un effondrement, des gens sont coincés",
        "un effondrement du balcon",
    ),
    "électrocution": (
        "mon collègue a subi une électrocution",
        "électrocution sur le chantier",
        "je crois que c'est une électrocution",
        "une électrocution avec une prise",
        "il y a eu une électrocution dans la salle de bain",
    ),
}
assert set(KEYWORD_PHRASES) == set(KEYWORDS)

# Templates for any other word: "{}" is replaced by the word (grammar is not the point, the
# word's neighbours are).
GENERIC_TEMPLATES: tuple[str, ...] = (
    "il y a {} ici",
    "{} s'il vous plaît",
    "c'est {} je crois",
    "alors {} voilà",
    "je vous dis {} maintenant",
    "attendez, {}, oui",
)


def keyword_phrase(keyword: str, rng: np.random.Generator) -> str:
    """A random carrier phrase containing ``keyword`` (KeyError for a non-keyword)."""
    phrases = KEYWORD_PHRASES[keyword]
    return phrases[int(rng.integers(len(phrases)))]


def generic_phrase(word: str, rng: np.random.Generator) -> str:
    """``word`` inside a random generic template."""
    return GENERIC_TEMPLATES[int(rng.integers(len(GENERIC_TEMPLATES)))].format(word)


# determiners that may stand before each keyword (its gender and number)
_MASCULINE = ("un", "le", "ce", "du", "mon", "au")
_FEMININE = ("une", "la", "cette", "ma", "de la")
KEYWORD_DETERMINERS: dict[str, tuple[str, ...]] = {
    "malaise": _MASCULINE,
    "hémorragie": _FEMININE,
    "brûlure": _FEMININE,
    "intoxication": _FEMININE,
    "violences": ("des", "les", "ces", "de"),
    "agression": _FEMININE,
    "vol": _MASCULINE,
    "cambriolage": _MASCULINE,
    "incendie": _MASCULINE,
    "gaz": ("du", "le", "de", "au"),
    "effondrement": _MASCULINE,
    "électrocution": _FEMININE,
}
assert set(KEYWORD_DETERMINERS) == set(KEYWORDS)
# random words before and after the keyword
CONTEXT_WORDS = (0, 5)


def random_context_phrase(keyword: str, vocabulary: list[str], rng: np.random.Generator) -> str:
    """``keyword``, mostly after a determiner, between 0-4 random words on each side
    (``vocabulary``: words that are not keywords). KeyError for a non-keyword."""
    determiners = KEYWORD_DETERMINERS[keyword]
    before = list(rng.choice(vocabulary, int(rng.integers(*CONTEXT_WORDS))))
    after = list(rng.choice(vocabulary, int(rng.integers(*CONTEXT_WORDS))))
    if rng.random() < 0.8:
        before.append(determiners[int(rng.integers(len(determiners)))])
    return " ".join([*before, keyword, *after])

"""Call-like sentences for training: what a caller says around (or without) a keyword.

The corpus's running speech is random words, and its keyword phrases a few carrier
sentences or a keyword among random words. Calls are neither: they are grammatical French
with the prosody of whole sentences (an address, a time, who is there, what to do). This
grammar makes such sentences from slots, thousands of them, so that training and mining
hear keywords inside them and false alarms on them.

It is written for training and is disjoint from the evaluation's calls
(``urgence.triage.calls``): none of its templates is one of theirs (tests check that no
sentence it makes is one of the calls' sentences). Its neutral sentences hold no keyword
and no word of a keyword's family ("volé", "brûlé", "violent"): those words are labelled
`_unknown_` elsewhere in the corpus, yet they ask for the keyword's service, so they are
kept out of what is taught as neutral.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from urgence.corpus.vocabulary import KEYWORDS

# keyword -> noun phrases holding it as a separate token (never elided)
NOUN_PHRASES: dict[str, tuple[str, ...]] = {
    "malaise": ("un malaise", "un léger malaise", "un malaise vagal", "son malaise"),
    "hémorragie": ("une hémorragie", "une hémorragie nasale", "une grosse hémorragie"),
    "brûlure": ("une brûlure", "une brûlure à la jambe", "une petite brûlure"),
    "intoxication": ("une intoxication", "une intoxication médicamenteuse"),
    "violences": ("des violences", "des violences conjugales", "encore des violences"),
    "agression": ("une agression", "une agression dans la rue", "cette agression"),
    "vol": ("un vol", "un vol de voiture", "un vol de sac"),
    "cambriolage": ("un cambriolage", "un cambriolage chez moi", "ce cambriolage"),
    "incendie": ("un incendie", "un incendie de voiture", "un petit incendie"),
    "gaz": ("une odeur de gaz", "une bouteille de gaz", "du gaz partout"),
    "effondrement": ("un effondrement", "un effondrement de toiture", "un effondrement de mur"),
    "électrocution": ("une électrocution", "une électrocution à la maison"),
}

PEOPLE = (
    "mon voisin",
    "ma sœur",
    "mon grand-père",
    "la dame du dessus",
    "le monsieur d'en face",
    "mon collègue",
    "ma fille",
    "mon frère",
    "une jeune femme",
    "un homme âgé",
    "le gardien de l'immeuble",
    "mon compagnon",
    "ma belle-mère",
    "un livreur",
    "mon oncle",
)
LOCATIONS = (
    "sur le parking de la mairie",
    "dans le hall de l'immeuble",
    "au coin de la rue Jean Jaurès",
    "à la sortie de l'autoroute",
    "en face de la pharmacie",
    "derrière le stade",
    "au rez-de-chaussée",
    "dans la cour",
    "sur le quai de la station",
    "à l'arrêt de bus",
    "dans le jardin",
    "chez mes beaux-parents",
    "au cinquième étage",
    "près du rond-point",
    "dans la cuisine",
    "au fond du couloir",
    "dans le magasin de chaussures",
)
STREETS = (
    "boulevard Gambetta",
    "rue Pasteur",
    "avenue Jean Moulin",
    "impasse des Roses",
    "chemin du Moulin",
    "place de l'Église",
    "rue du Général Leclerc",
    "allée des Tilleuls",
)
TOWNS = ("Lyon", "Rennes", "Toulouse", "Lille", "Nantes", "Dijon", "Grenoble", "Angers")
STATES = (
    "ne répond plus au téléphone",
    "est assis par terre",
    "vient de rentrer du travail",
    "est parti chercher de l'aide",
    "a du mal à respirer",
    "est très pâle",
    "parle bizarrement",
    "ne bouge plus",
    "est avec moi",
    "est resté dans la voiture",
    "pleure beaucoup",
    "a très peur",
    "tremble",
    "est dans sa chambre",
    "attend dehors",
    "est tombé dans l'escalier",
)
# neutral templates; slots: {person} {location} {street} {town} {state} {n} {m} {phone} {age}
NEUTRAL_TEMPLATES = (
    "{person} {state}",
    "je suis {location}",
    "on est {location} avec {person}",
    "mon adresse, c'est le {n} {street} à {town}",
    "c'est au {n} {street}",
    "vous pouvez me rappeler au {phone}",
    "ça fait {m} minutes que j'attends",
    "il est {n} heures {m}",
    "{person} a {age} ans",
    "est-ce que vous pouvez envoyer quelqu'un",
    "qu'est-ce que je dois faire maintenant",
    "vous arrivez dans combien de temps",
    "je ne vois pas bien d'ici",
    "la porte est fermée à clé",
    "il y a de la fumée qui sort de la fenêtre",
    "il y a du sang sur le sol",
    "personne ne sait ce qui s'est passé",
    "je vous entends mal, la ligne coupe",
    "attendez, je passe le téléphone à {person}",
    "non, je ne connais pas son nom",
    "oui, c'est bien ça",
    "je suis toute seule à la maison",
    "les secours sont déjà là",
    "il faut faire vite s'il vous plaît",
    "je vous appelle depuis la voiture",
    "j'ai essayé de le réveiller",
    "il respire mais il ne parle pas",
    "elle a pris beaucoup de médicaments",
    "ils sont partis en courant vers {location}",
    "il portait un blouson noir",
    "la fenêtre du salon est cassée",
    "il y a de l'eau partout dans la salle de bains",
    "la voiture est sur le toit",
    "ça sent très bizarre dans la cuisine",
    "le courant a sauté dans tout l'immeuble",
    "le plafond fait un bruit bizarre",
    "{person} crie depuis tout à l'heure",
    "on a entendu un grand bruit {location}",
    "je ne sais pas s'il est blessé",
    "je reste à côté de {person}",
    "merci, je ne raccroche pas",
    "d'accord, je fais ce que vous dites",
    "c'est la maison avec le portail bleu",
    "il y a un digicode, c'est le {n} {m}",
    "je suis à {town}, dans le centre",
    "il y a des enfants dans l'appartement",
    "ils étaient trois, peut-être quatre",
    "il s'est enfui en scooter",
)
KEYWORD_TEMPLATES = (
    "on a besoin d'aide pour {np}",
    "{np}, {location}",
    "je pense à {np}",
    "d'après moi c'est {np}",
    "il a eu {np} tout à l'heure",
    "{person} pense que c'est {np}",
    "c'est sûrement {np}",
    "il y a {np} {location}",
    "je viens de voir {np} {location}",
    "est-ce que c'est {np}",
    "quelqu'un a crié, c'est {np}",
    "nous signalons {np} au {n} {street}",
    "les enfants ont vu {np}",
    "{np} {location}, il faut quelqu'un rapidement",
    "j'ai l'impression que c'est {np}",
    "on a eu {np} hier soir",
    "{person} me dit que c'est {np}",
    "c'est pour {np} à {town}",
)
OPENERS = (
    "",
    "",
    "",
    "allô, ",
    "oui bonjour, ",
    "excusez-moi, ",
    "écoutez, ",
    "voilà, ",
    "bon, ",
    "alors, ",
    "madame, ",
    "monsieur, ",
    "euh, ",
    "oui, ",
    "non, ",
)


def _pick(options: Sequence[str], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def _fill(template: str, rng: np.random.Generator, np_text: str = "") -> str:
    phone = " ".join(str(int(rng.integers(0, 100))).zfill(2) for _ in range(5))
    return template.format(
        np=np_text,
        person=_pick(PEOPLE, rng),
        location=_pick(LOCATIONS, rng),
        street=_pick(STREETS, rng),
        town=_pick(TOWNS, rng),
        state=_pick(STATES, rng),
        n=int(rng.integers(1, 60)),
        m=int(rng.integers(2, 60)),
        phone=phone,
        age=int(rng.integers(2, 95)),
    )


def call_sentence(rng: np.random.Generator, keyword: str | None = None) -> str:
    """One or two clauses as a caller says them, with ``keyword`` (as a separate word) in
    one of them, or none."""
    if keyword is not None and keyword not in KEYWORDS:
        raise ValueError(f"not a keyword: {keyword!r}")
    # a keyword sentence has at most one clause beside the keyword's: the corpus cuts about
    # a second around the keyword out of it, and longer sentences cost synthesis time
    n_neutral = int(rng.integers(1, 3)) if keyword is None else int(rng.integers(0, 2))
    clauses = [_fill(_pick(NEUTRAL_TEMPLATES, rng), rng) for _ in range(n_neutral)]
    if keyword is not None:
        clause = _fill(_pick(KEYWORD_TEMPLATES, rng), rng, _pick(NOUN_PHRASES[keyword], rng))
        clauses.insert(int(rng.integers(len(clauses) + 1)), clause)
    clauses[0] = _pick(OPENERS, rng) + clauses[0]
    text = ""
    for i, clause in enumerate(clauses):
        if i and rng.random() < 0.5:
            text += ", " + clause
        else:
            text += (". " if i else "") + clause[0].upper() + clause[1:]
    return text + "."

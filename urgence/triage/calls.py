"""Generated emergency calls with known ground truth, for evaluating triage end to end.

A call is one caller (one espeak-ng voice, rate and pitch) saying a few sentences separated by
pauses: context sentences without keywords around one sentence with a keyword (or two, for a
call that needs two services; or none, for a call the operator should take), then real
background noise, and on half the calls a telephone channel. The sentences here are written
for evaluation and are not the training corpus' carrier phrases
(``urgence.corpus.phrases``); the voices are those of the held-out ``test`` split
(``urgence.corpus.splits``).

Everything is drawn from an explicit ``numpy.random.Generator``; espeak-ng itself is not
bit-for-bit repeatable, so the same seed gives the same texts, voices, timings to within a
few milliseconds, and noise. Those milliseconds move routing by up to 6 points out of 300
calls (MODEL_CARD.md, session 12): models are compared on the very same calls by saving
them once (``save_calls``) and reading them back (``load_calls``).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from urgence.audio import augment
from urgence.corpus.splits import split_of
from urgence.corpus.synth import SAMPLE_RATE, french_voices, synthesize
from urgence.corpus.vocabulary import KEYWORDS, keyword_of_form

# keyword -> noun phrases holding it as a separate word (never elided: "l'incendie" would
# merge it with the article)
KEYWORD_PHRASES: dict[str, tuple[str, ...]] = {
    "malaise": ("un malaise", "un gros malaise", "comme un malaise"),
    "hémorragie": ("une hémorragie", "une forte hémorragie"),
    "brûlure": ("une brûlure", "une grave brûlure", "une brûlure au bras"),
    "intoxication": ("une intoxication", "une intoxication alimentaire"),
    "violences": ("des violences", "des violences graves"),
    "agression": ("une agression", "une agression au couteau"),
    "vol": ("un vol", "un vol à l'arraché"),
    "cambriolage": ("un cambriolage", "un cambriolage en cours"),
    "incendie": ("un incendie", "un gros incendie"),
    "gaz": ("une fuite de gaz", "une forte odeur de gaz"),
    "effondrement": ("un effondrement", "un effondrement de plafond"),
    "électrocution": ("une électrocution", "une électrocution sur un chantier"),
}

PLACES: tuple[str, ...] = (
    "au douze rue des Lilas",
    "dans mon immeuble",
    "chez ma voisine",
    "dans le parking du supermarché",
    "au troisième étage",
    "à côté de la gare",
    "dans la maison de mes parents",
    "sur la place du marché",
    "près de l'école primaire",
    "au bout de la rue Victor Hugo",
    "dans l'atelier",
    "devant la boulangerie",
)

# one keyword noun phrase {np}, a place {place}
KEYWORD_SENTENCES: tuple[str, ...] = (
    "Allô, il y a {np} {place}.",
    "Bonjour, je vous appelle pour {np} {place}.",
    "Venez vite, c'est {np} !",
    "Je crois qu'il y a {np} {place}.",
    "C'est urgent, {np} {place}.",
    "Il vient d'y avoir {np} {place}, dépêchez-vous.",
    "Je voudrais signaler {np} {place}.",
    "On a {np} ici, {place}.",
    "S'il vous plaît, envoyez quelqu'un, il y a {np}.",
    "Mon mari me dit que c'est {np}.",
    "Je suis témoin d'{np} {place}.",
    "Écoutez, il y a {np} et personne ne bouge.",
    "Oui, c'est bien {np}, {place}.",
    "Au secours, {np} {place} !",
    "Ma fille pense que c'est {np}.",
    "Il s'agit d'{np}, je crois.",
    "Nous avons {np} {place}, il faut venir.",
    "J'appelle parce qu'il y a {np} {place}.",
    "Dépêchez-vous, {np}, {place}.",
    "Je ne sais pas quoi faire, il y a {np}.",
    "Il y a eu {np} il y a cinq minutes {place}.",
    "Les voisins crient, on dirait {np}.",
    "Je vous confirme, {np} {place}.",
    "Bonsoir madame, il y a {np} {place}.",
    "Bonjour monsieur, c'est pour {np}.",
    "Je suis sur place, il y a {np}.",
    "C'est grave, {np}, venez.",
    "Attendez, je crois que c'est {np}.",
    "Vite, vite, {np} {place} !",
    "Je pense qu'on a affaire à {np}.",
    "Il y a {np}, je répète, {place}.",
    "Excusez-moi, je vous appelle pour {np}.",
    "Là, maintenant, {np} {place}.",
    "Il faut envoyer quelqu'un, c'est {np}.",
    "Mon collègue a vu {np} {place}.",
    "J'entends quelqu'un dire qu'il y a {np}.",
    "Franchement, ça ressemble à {np}.",
    "On vient de découvrir {np} {place}.",
    "Ici, {place}, il y a {np}.",
    "Mon fils m'appelle, il y a {np} {place}.",
    "C'est pour signaler {np}, s'il vous plaît.",
    "Je vous préviens, il y a {np} {place}.",
    "Bon, il y a {np}, je ne sais pas quoi faire.",
    "Pardon, je suis paniquée, c'est {np}.",
    "Il y a peut-être {np} {place}.",
    "Voilà, il y a {np} {place}.",
    "Les gens disent que c'est {np}.",
    "Un passant me dit qu'il y a {np}.",
    "Je reviens du travail et il y a {np}.",
    "Regardez, {np}, {place}.",
    "C'est la deuxième fois cette semaine, encore {np}.",
    "Il y a {np}, il y a des blessés peut-être.",
    "Je suis gardien, il y a {np} {place}.",
    "Ma mère me dit qu'il y a {np}.",
    "On a besoin d'aide, {np} {place}.",
    "Tout de suite, il y a {np}.",
    "Je vous appelle de mon portable, il y a {np}.",
    "Est-ce que vous pouvez venir, il y a {np} {place} ?",
    "Je suis à la caisse, il y a {np}.",
    "Mon voisin hurle, c'est {np}.",
    "Aidez-nous, il y a {np} {place}.",
    "Ce matin il y a eu {np} {place}.",
)

# two keyword noun phrases {np} and {np2}: calls that need two services
TWO_KEYWORD_SENTENCES: tuple[str, ...] = (
    "Il y a {np} {place} et aussi {np2}.",
    "C'est {np}, et je crois qu'il y a {np2}.",
    "Venez vite, {np} {place}, avec {np2}.",
    "Il y a eu {np}, et maintenant {np2}.",
    "D'abord {np}, ensuite {np2}, venez.",
    "On a {np} {place}, et puis {np2} aussi.",
)

# pairs of keywords from two services that happen together
TWO_SERVICE_PAIRS: tuple[tuple[str, str], ...] = (
    ("incendie", "brûlure"),
    ("agression", "hémorragie"),
    ("effondrement", "malaise"),
    ("gaz", "intoxication"),
    ("électrocution", "malaise"),
    ("violences", "hémorragie"),
    ("cambriolage", "incendie"),
)

# context sentences without any keyword (also whole calls for the operator)
CONTEXT_SENTENCES: tuple[str, ...] = (
    "Bonjour, oui, je vous entends.",
    "Je m'appelle Martine Dubois.",
    "Mon numéro, c'est le zéro six douze trente-quatre cinquante-six.",
    "J'habite au quatre avenue de la République.",
    "Oui, je reste en ligne.",
    "Il est à peu près vingt heures.",
    "Je ne sais pas exactement, attendez.",
    "Il y a beaucoup de monde autour.",
    "Le code de la porte, c'est quarante-deux B.",
    "Oui, il respire encore.",
    "Non, personne n'est parti.",
    "Je suis dans la rue, devant l'entrée.",
    "D'accord, je vous attends.",
    "Il a environ soixante ans.",
    "Je peux vous envoyer ma position.",
    "C'est au deuxième étage, à gauche.",
    "Mon mari est avec moi.",
    "Attendez, je regarde par la fenêtre.",
)

# whole calls that need no service but the operator
NO_KEYWORD_SENTENCES: tuple[str, ...] = (
    "Bonjour, je voudrais connaître les horaires de la pharmacie de garde.",
    "Mon chat est coincé en haut d'un arbre depuis ce matin.",
    "Je me suis trompé de numéro, excusez-moi.",
    "Il y a une voiture mal garée devant mon garage.",
    "Je voudrais savoir si la route est ouverte ce soir.",
    "Mes voisins font beaucoup de bruit avec leur musique.",
    "Je cherche le numéro du médecin de garde.",
    "Il y a un arbre tombé sur la route, mais personne n'est blessé.",
    "Ma grand-mère ne répond pas au téléphone depuis hier.",
    "Un chien se promène tout seul sur le boulevard.",
    "Je voudrais parler à quelqu'un, je me sens seul.",
    "Les lampadaires de ma rue ne marchent plus.",
    "J'ai perdu mes clés, je ne peux pas rentrer chez moi.",
    "Est-ce que je peux avoir un renseignement administratif ?",
    "Mon enfant a appelé par erreur, tout va bien.",
)


def heldout_voices(split: str = "test") -> list[str]:
    """French espeak-ng voices of a split never trained on: ``"test"`` to evaluate,
    ``"val"`` to tune thresholds."""
    if split not in ("val", "test"):
        raise ValueError(f"held-out splits are 'val' and 'test', not {split!r}")
    return [v for v in french_voices() if split_of(f"espeak:{v}") == split]


@dataclass
class Call:
    """One generated call.

    ``samples``: (n,) float32 at 16 kHz. ``keywords``: (keyword, start_s, end_s) as spoken.
    ``services``: the services the call needs (empty: the operator).
    """

    name: str
    samples: np.ndarray
    text: str
    voice: str
    keywords: list[tuple[str, float, float]]
    channel: str  # "clean" or "telephone"
    noise: str
    snr_db: float
    services: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.samples.shape[0] / SAMPLE_RATE


@dataclass(frozen=True)
class CallPlan:
    """What a call says and how it sounds (everything ``render_call`` needs but the noise)."""

    name: str
    sentences: tuple[str, ...]
    voice: str
    rate: int = 165
    pitch: int = 50
    pitch_range: int = 50
    pauses_s: tuple[float, ...] = ()  # before each sentence after the first
    lead_s: float = 0.0  # line noise before the caller speaks
    min_duration_s: float = 0.0  # line noise after the last sentence up to this length
    keywords: tuple[str, ...] = ()  # the keywords the sentences hold, in order


def keyword_sentence(keywords: Sequence[str], rng: np.random.Generator) -> str:
    """A sentence holding ``keywords`` (one or two) as separate words."""
    phrases = [_pick(KEYWORD_PHRASES[k], rng) for k in keywords]
    template = _pick(KEYWORD_SENTENCES if len(keywords) == 1 else TWO_KEYWORD_SENTENCES, rng)
    return template.format(np=phrases[0], np2=phrases[-1], place=_pick(PLACES, rng))


def _pick(options: Sequence[str], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def plan_call(
    name: str,
    keywords: Sequence[str],
    rng: np.random.Generator,
    *,
    voices: Sequence[str],
    min_s: float = 5.0,
    max_s: float = 30.0,
) -> CallPlan:
    """Draw a call: a voice, speaking parameters, context sentences and the keyword sentence
    (or, with no keywords, sentences for the operator), ``min_s``..``max_s`` long (about
    3 words per second; the end is padded with line noise up to ``min_s``)."""
    target_s = float(rng.uniform(min_s, max_s))
    main = keyword_sentence(keywords, rng) if keywords else _pick(NO_KEYWORD_SENTENCES, rng)
    context = list(rng.permutation(CONTEXT_SENTENCES))
    sentences = [main]
    spoken_s = len(main.split()) / 3.0
    while spoken_s < target_s - 1.0 and context:
        sentence = str(context.pop())
        spoken_s += len(sentence.split()) / 3.0 + 0.75
        sentences.insert(int(rng.integers(len(sentences) + 1)), sentence)
    return CallPlan(
        name=name,
        sentences=tuple(sentences),
        voice=_pick(voices, rng),
        rate=int(rng.integers(140, 196)),
        pitch=int(rng.integers(30, 71)),
        pitch_range=int(rng.integers(30, 81)),
        pauses_s=tuple(float(rng.uniform(0.3, 1.2)) for _ in sentences[1:]),
        lead_s=float(rng.uniform(0.2, 1.0)),
        min_duration_s=min_s,
        keywords=tuple(keywords),
    )


def speak_plan(plan: CallPlan) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Synthesise a plan: (samples (n,) float32 16 kHz, keywords (keyword, start_s, end_s)).

    Raises ``ValueError`` if a planned keyword is not found among the spoken words."""
    pieces: list[np.ndarray] = [np.zeros(round(plan.lead_s * SAMPLE_RATE), np.float32)]
    found: list[tuple[str, float, float]] = []
    offset = pieces[0].size
    for i, sentence in enumerate(plan.sentences):
        if i:
            pause = np.zeros(round(plan.pauses_s[i - 1] * SAMPLE_RATE), np.float32)
            pieces.append(pause)
            offset += pause.size
        speech = synthesize(
            sentence,
            voice=plan.voice,
            rate=plan.rate,
            pitch=plan.pitch,
            pitch_range=plan.pitch_range,
        )
        t0 = offset / SAMPLE_RATE
        for word, start, end in speech.words:
            keyword = keyword_of_form(word.strip(".,;:!?«»\"'’ "))
            if keyword is not None:
                found.append((keyword, round(t0 + start, 3), round(t0 + end, 3)))
        pieces.append(speech.samples)
        offset += speech.samples.size
    if sorted(k for k, _, _ in found) != sorted(plan.keywords):
        raise ValueError(
            f"{plan.name}: planned keywords {list(plan.keywords)}, spoken {found} "
            f"in {plan.sentences}"
        )
    pieces.append(np.zeros(max(0, round(plan.min_duration_s * SAMPLE_RATE) - offset), np.float32))
    return np.concatenate(pieces).astype(np.float32), found


def render_call(
    plan: CallPlan,
    rng: np.random.Generator,
    *,
    noises: dict[str, np.ndarray],
    telephone: bool,
    snr_db: float,
) -> Call:
    """Speak a plan, add a random stretch of one of ``noises`` (name -> (m,) float32 16 kHz)
    at ``snr_db``, pass it through the telephone channel if asked, and set a random level."""
    speech, keywords = speak_plan(plan)
    noise_name = sorted(noises)[int(rng.integers(len(noises)))]
    y = augment.add_noise(speech, noises[noise_name], snr_db=snr_db, rng=rng)
    if telephone:
        y = augment.telephone(y, rng=rng, packet_loss=float(rng.choice([0.0, 0.0, 0.01])))
    peak = float(np.max(np.abs(y))) or 1.0
    y = (y * (float(rng.uniform(0.2, 0.9)) / peak)).astype(np.float32)
    return Call(
        name=plan.name,
        samples=y,
        text=" ".join(plan.sentences),
        voice=plan.voice,
        keywords=keywords,
        channel="telephone" if telephone else "clean",
        noise=noise_name,
        snr_db=round(snr_db, 1),
        services=sorted({KEYWORDS[k] for k, _, _ in keywords}),
    )


def load_background_noises(folder: str | Path) -> dict[str, np.ndarray]:
    """name -> (m,) float32 16 kHz for every recording in ``folder``. Raises
    ``urgence.audio.io.AudioError`` if the folder is missing or holds no audio."""
    noises = augment.load_noises(folder)  # sorted by file name
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in augment.NOISE_SUFFIXES)
    return {path.stem: noise for path, noise in zip(paths, noises, strict=True)}


def generate_calls(
    n_calls: int,
    rng: np.random.Generator,
    *,
    noises: dict[str, np.ndarray],
    voices: Sequence[str] | None = None,
    no_keyword_share: float = 0.2,
    two_service_share: float = 0.07,
    snr_db: tuple[float, float] = (5.0, 25.0),
) -> list[Call]:
    """``n_calls`` calls: ~``no_keyword_share`` without keyword, ~``two_service_share`` with
    two services, the rest one keyword each (keywords in turn, so all are covered); half of
    them through the telephone channel. Voices default to ``heldout_voices()``."""
    if n_calls < 1:
        raise ValueError("n_calls must be >= 1")
    if not noises:
        raise ValueError("need at least one background noise")
    voices = list(voices or heldout_voices())
    n_none = round(n_calls * no_keyword_share)
    n_two = round(n_calls * two_service_share)
    contents: list[tuple[str, ...]] = [()] * n_none
    contents += [TWO_SERVICE_PAIRS[i % len(TWO_SERVICE_PAIRS)] for i in range(n_two)]
    keywords = list(KEYWORDS)
    contents += [(keywords[i % len(keywords)],) for i in range(n_calls - n_none - n_two)]
    order = rng.permutation(n_calls)
    calls = []
    for index, i in enumerate(order):
        plan = plan_call(f"call-{index:04d}", contents[i], rng, voices=voices)
        calls.append(
            render_call(
                plan,
                rng,
                noises=noises,
                telephone=bool(index % 2),
                snr_db=float(rng.uniform(*snr_db)),
            )
        )
    return calls


CALLS_FORMAT = "urgence.triage.calls"


class CallsFileError(ValueError):
    """A saved calls file that cannot be read, or that holds other calls than asked for."""


def save_calls(path: str | Path, calls: Sequence[Call], *, recipe: dict) -> None:
    """Write ``calls`` to ``path`` (.npz: each call's samples, and a JSON description of the
    calls and of the ``recipe`` that generated them, e.g. their count, seed and voices), so
    that ``load_calls`` gives back the very same audio. Written to a temporary file first."""
    path = Path(path)
    description = {
        "format": CALLS_FORMAT,
        "version": 1,
        "recipe": recipe,
        # field by field: asdict would deep-copy every call's samples on the way
        "calls": [
            {f.name: getattr(c, f.name) for f in fields(Call) if f.name != "samples"} for c in calls
        ],
    }
    arrays = {f"samples_{i}": c.samples.astype(np.float32, copy=False) for i, c in enumerate(calls)}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as out:
        np.savez(out, description=np.array(json.dumps(description, ensure_ascii=False)), **arrays)
    partial.replace(path)


def load_calls(path: str | Path, *, recipe: dict) -> list[Call]:
    """The calls ``save_calls`` wrote to ``path``, read without pickle. Raises
    ``CallsFileError`` if the file is not such a file, or if it was generated by another
    ``recipe`` (other count, seed or voices: other calls than the caller asks for)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            description = json.loads(str(data["description"]))
            if description.get("format") != CALLS_FORMAT:
                raise CallsFileError(f"{path}: not a file of generated calls")
            if description.get("recipe") != json.loads(json.dumps(recipe)):
                raise CallsFileError(
                    f"{path}: holds calls generated with {description.get('recipe')}, "
                    f"not {recipe}; give another path, or delete it to generate them anew"
                )
            calls = []
            for i, saved in enumerate(description["calls"]):
                saved["keywords"] = [tuple(k) for k in saved["keywords"]]
                calls.append(Call(samples=data[f"samples_{i}"], **saved))
            return calls
    except CallsFileError:
        raise
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as exc:
        raise CallsFileError(f"{path}: cannot read saved calls ({exc})") from exc

"""Regenerate the example calls: ``.venv/bin/python examples/make_examples.py [--shared PATH]``.

Writes the WAVs (8 kHz, 16-bit: telephone quality), ``expected.json`` (what each call should
be routed to, read by the end-to-end test) and the table in ``README.md``. Voices come from
the held-out test split (``urgence.triage.calls.heldout_voices``); noise is real background
noise from ``<shared>/data/background_noise``. espeak-ng is not bit-for-bit repeatable: the
committed files are the reference, this script is how they were made.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from urgence.corpus.synth import SAMPLE_RATE
from urgence.corpus.vocabulary import SERVICES
from urgence.triage.calls import CallPlan, heldout_voices, load_background_noises, render_call
from urgence.triage.evaluate_command import DEFAULT_SHARED

HERE = Path(__file__).resolve().parent
OUTPUT_RATE = 8000

# name, sentences, keywords, voice index (in heldout_voices()), noise, telephone, snr_db
EXAMPLES: tuple[tuple[str, tuple[str, ...], tuple[str, ...], int, str, bool, float], ...] = (
    (
        "appel-incendie",
        (
            "Allô, bonjour.",
            "Il y a un incendie dans mon immeuble, au troisième étage.",
            "Venez vite s'il vous plaît.",
        ),
        ("incendie",),
        0,
        "running_tap",
        True,
        18.0,
    ),
    (
        "appel-malaise",
        (
            "Bonjour, c'est pour mon père.",
            "Il fait un malaise, il ne répond plus.",
            "Nous sommes au douze rue des Lilas.",
        ),
        ("malaise",),
        1,
        "pink_noise",
        True,
        20.0,
    ),
    (
        "appel-cambriolage",
        (
            "Oui bonsoir.",
            "Je crois qu'il y a un cambriolage chez ma voisine.",
            "J'entends du bruit en bas.",
        ),
        ("cambriolage",),
        7,
        "dude_miaowing",
        False,
        15.0,
    ),
    (
        "appel-incendie-brulure",
        (
            "Venez vite, le feu a pris dans la cuisine !",
            "C'est un incendie.",
            "Et ma fille a une grave brûlure à la main.",
        ),
        ("incendie", "brûlure"),
        4,
        "doing_the_dishes",
        True,
        15.0,
    ),
    (
        "appel-gaz",
        (
            "Bonjour madame.",
            "Ça sent très fort, je pense qu'il y a une fuite de gaz dans le hall.",
            "Tout le monde est sorti.",
        ),
        ("gaz",),
        6,
        "exercise_bike",
        True,
        12.0,
    ),
    (
        "appel-sans-mot-cle",
        (
            "Bonjour, excusez-moi.",
            "Je voudrais connaître les horaires de la pharmacie de garde.",
            "Merci beaucoup.",
        ),
        (),
        3,
        "white_noise",
        True,
        20.0,
    ),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(DEFAULT_SHARED), help="shared data folder")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    noises = load_background_noises(Path(args.shared) / "data" / "background_noise")
    voices = heldout_voices()
    expected: dict[str, dict[str, object]] = {}
    rows = []
    for name, sentences, keywords, voice, noise, telephone, snr_db in EXAMPLES:
        plan = CallPlan(
            name=name,
            sentences=sentences,
            voice=voices[voice % len(voices)],
            rate=int(rng.integers(150, 186)),
            pitch=int(rng.integers(35, 66)),
            pauses_s=tuple(float(rng.uniform(0.4, 0.9)) for _ in sentences[1:]),
            lead_s=0.5,
            keywords=keywords,
        )
        call = render_call(
            plan, rng, noises={noise: noises[noise]}, telephone=telephone, snr_db=snr_db
        )
        wav = HERE / f"{name}.wav"
        sf.write(
            wav,
            soxr.resample(call.samples, SAMPLE_RATE, OUTPUT_RATE),
            OUTPUT_RATE,
            subtype="PCM_16",
        )
        expected[wav.name] = {
            "services": call.services,
            "keywords": [{"keyword": k, "start_s": s, "end_s": e} for k, s, e in call.keywords],
            "text": call.text,
            "voice": call.voice,
            "channel": call.channel,
            "noise": f"{noise} ({snr_db:g} dB)",
        }
        routed = " + ".join(SERVICES[s].label for s in call.services) or "opérateur (aucun mot-clé)"
        rows.append(
            f"| `{wav.name}` | {call.text} | {routed} | {call.voice}, {call.channel}, "
            f"{noise} {snr_db:g} dB | {call.duration_s:.1f} s |"
        )
        print(f"{wav.name}: {call.duration_s:.1f} s, {wav.stat().st_size // 1024} KB, {routed}")
    (HERE / "expected.json").write_text(
        json.dumps(expected, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    readme = (HERE / "README.md").read_text(encoding="utf-8")
    head, _, _ = readme.partition("<!-- table -->")
    table = "\n".join(
        [
            "| file | what the caller says | expected service | voice, channel, noise | length |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    (HERE / "README.md").write_text(f"{head}<!-- table -->\n{table}\n", encoding="utf-8")


if __name__ == "__main__":
    main()

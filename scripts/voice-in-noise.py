"""How many keywords a model finds for given espeak-ng voices in real noise at one SNR.

Each keyword in three carrier phrases, each phrase mixed with a random stretch of three
background noise recordings (the first three files of the folder, as the calls load them)
at an SNR measured over the whole phrase, as the calls' is, then run through the streaming
detector with the model's thresholds. Used to tell a voice's noise robustness from its
novelty (MODEL_CARD.md, session 8: fr+steph and fr+steph3).

usage: .venv/bin/python scripts/voice-in-noise.py MODEL SNR_DB VOICE... [--noise-dir DIR]
example: .venv/bin/python scripts/voice-in-noise.py models/kws 7 fr+steph fr+Denis
"""

import argparse

import numpy as np

from urgence.audio import augment
from urgence.corpus.synth import synthesize
from urgence.corpus.vocabulary import KEYWORDS
from urgence.kws.detector import detect
from urgence.kws.model import KeywordModel
from urgence.triage.calls import load_background_noises

PHRASES = (
    "Venez vite, il y a {} ici.",
    "C'est pour {}, dépêchez-vous.",
    "Je crois que c'est {} dans la maison.",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("snr_db", type=float)
    parser.add_argument("voices", nargs="+")
    parser.add_argument("--noise-dir", default="../shared/data/background_noise")
    args = parser.parse_args()
    model = KeywordModel.load(args.model)
    noises = load_background_noises(args.noise_dir)
    names = sorted(noises)[:3]
    for voice in args.voices:
        rng = np.random.default_rng(0)
        found = total = 0
        for keyword in KEYWORDS:
            for phrase in PHRASES:
                speech = synthesize(phrase.format(keyword), voice=voice).samples
                for name in names:
                    mixed = augment.add_noise(speech, noises[name], snr_db=args.snr_db, rng=rng)
                    found += any(d.keyword == keyword for d in detect(model, mixed))
                    total += 1
        print(f"{voice}  {args.snr_db:g} dB  {found}/{total} keywords found", flush=True)


if __name__ == "__main__":
    main()

"""How often a model takes a keyword's closest words for the keyword.

Each keyword's minimal-pair words (``urgence.corpus.build.pair_words``: its hand-written
sound-alikes, then its most frequent phonetic neighbours, 16 at most) are spoken alone, clean,
by the first VOICES espeak-ng voices of a split; a word "fires" for a voice when some
detector window gives the keyword at least the model's threshold for it. Training voices
show what the model failed to learn from its own data, held-out voices what a new voice
meets (MODEL_CARD.md, session 10: the shipped model took "gare" and "garde" for "gaz" and
"silence" for "violences" with every training voice).

usage: .venv/bin/python scripts/sound-alikes.py MODEL [--split train] [--voices 8]
"""

import argparse

import numpy as np

from urgence.corpus.build import pair_words
from urgence.corpus.neighbours import confusable_words
from urgence.corpus.splits import split_of
from urgence.corpus.synth import french_voices, synthesize
from urgence.kws.detector import window_posteriors
from urgence.kws.model import KeywordModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="model stem (.npz + .json)")
    parser.add_argument("--split", default="train", choices=("train", "val", "test"))
    parser.add_argument("--voices", type=int, default=8, help="voices of the split (8)")
    args = parser.parse_args()
    model = KeywordModel.load(args.model)
    labels, thresholds = list(model.labels), model.thresholds
    voices = [v for v in french_voices() if split_of(f"espeak:{v}") == args.split][: args.voices]
    confusables = confusable_words()
    rates = []
    for keyword in confusables:
        column = labels.index(keyword)
        fired = []
        for word in pair_words(confusables, keyword):
            peaks = [
                window_posteriors(model, synthesize(word, voice=voice).samples)[:, column].max()
                for voice in voices
            ]
            rate = float(np.mean(np.array(peaks) >= thresholds[keyword]))
            rates.append(rate)
            if rate:
                fired.append(f"{word} {rate:.0%}")
        print(f"{keyword} (threshold {thresholds[keyword]:.2f}): {', '.join(fired) or '-'}")
    print(
        f"{len(rates)} words x {len(voices)} {args.split} voices: "
        f"{np.mean(rates):.1%} of them fire their keyword"
    )


if __name__ == "__main__":
    main()

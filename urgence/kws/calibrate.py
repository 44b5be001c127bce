"""Per-keyword detection thresholds, chosen on validation calls and stored in the model.

The calls are generated (``urgence.triage.calls``) with the voices of the ``val`` split,
which neither training (``train`` split) nor the call evaluation (``test`` split) uses, and
real background noise; a fifth of them hold no keyword (where false alarms come from). The
real French speech of the asterisk prompts is left out: the call evaluation measures false
alarms on it, so it must not choose the thresholds. Run::

    python -m urgence.kws.calibrate models/kws --calls 120 \\
        --noise-dir ../shared/data/background_noise
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from urgence.kws.detector import tune_thresholds
from urgence.kws.model import KeywordModel
from urgence.nn import load_model
from urgence.triage.calls import generate_calls, heldout_voices, load_background_noises


def validation_calls(
    n_calls: int, *, noise_dir: str, seed: int = 1
) -> list[tuple[np.ndarray, list[tuple[str, float, float]]]]:
    """(samples, true keywords) pairs of generated calls with validation voices."""
    rng = np.random.default_rng(seed)
    noises = load_background_noises(noise_dir)
    calls = generate_calls(n_calls, rng, noises=noises, voices=heldout_voices("val"))
    return [(call.samples, list(call.keywords)) for call in calls]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="model stem; its thresholds are rewritten in place")
    parser.add_argument("--calls", type=int, default=120)
    parser.add_argument("--noise-dir", default="../shared/data/background_noise")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    model = KeywordModel.load(args.model)
    pairs = validation_calls(args.calls, noise_dir=args.noise_dir, seed=args.seed)
    thresholds = tune_thresholds(model, pairs)
    network = load_model(args.model)
    network.metadata["thresholds"] = thresholds
    network.metadata["thresholds_tuned_on"] = (
        f"{args.calls} generated calls with the val-split voices (seed {args.seed})"
    )
    network.save(args.model)
    for keyword, value in thresholds.items():
        print(f"{keyword:14s} {value:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

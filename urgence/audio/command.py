"""``urgence plot``: waveform and log-mel spectrogram of an audio file (or of synthesised
speech), optionally under every augmentation.

    urgence plot call.wav --out call.png
    urgence plot --say incendie --out docs/figures/audio_incendie.png
    urgence plot --say incendie --augment --noise-dir ../shared/data/background_noise \\
        --out docs/figures/augment_incendie.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", help="audio file (WAV, FLAC, OGG, MP3, ...)")
    parser.add_argument(
        "--say", metavar="TEXT", help="plot French speech synthesised with espeak-ng instead"
    )
    parser.add_argument("--out", metavar="PNG", help="output image (default: <name>.png here)")
    parser.add_argument("--title", help="figure title (default: the file name or the text)")
    parser.add_argument(
        "--augment", action="store_true", help="show the clip under each augmentation"
    )
    parser.add_argument(
        "--noise-dir",
        metavar="DIR",
        help="background noise recordings for --augment (default: white noise)",
    )
    parser.add_argument("--dpi", type=int, default=100, help="image resolution (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for --augment")
    parser.add_argument(
        "--max-seconds", type=float, default=600.0, help="refuse longer files (default 600)"
    )


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from urgence.audio import plot
    from urgence.audio.augment import fit_length, load_noises
    from urgence.audio.features import FeatureConfig
    from urgence.audio.io import AudioError, load_audio
    from urgence.corpus.synth import SynthesisError, synthesize

    if (args.file is None) == (args.say is None):
        print("urgence plot: give either an audio FILE or --say TEXT", file=sys.stderr)
        return 2
    try:
        if args.say is not None:
            # espeak leaves no silence around the word: centre it in a clip, as in training
            speech = synthesize(args.say).samples
            samples = fit_length(speech, max(speech.size, FeatureConfig().clip_samples))
            name = args.say
        else:
            samples = load_audio(args.file, max_seconds=args.max_seconds)
            name = Path(args.file).name
        title = args.title or name.upper()
        if args.augment:
            noises = load_noises(args.noise_dir) if args.noise_dir else []
            figure = plot.augmentation_figure(
                samples, rng=np.random.default_rng(args.seed), noises=noises, title=title
            )
        else:
            figure = plot.clip_figure(samples, title=title)
    except (AudioError, SynthesisError, ValueError) as exc:
        print(f"urgence plot: {exc}", file=sys.stderr)
        return 1
    out = args.out or f"{Path(name).stem.replace(' ', '_')}.png"
    print(plot.save(figure, out, dpi=args.dpi))
    return 0

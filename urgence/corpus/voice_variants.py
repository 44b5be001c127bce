"""Random espeak-ng voice variants: more training voices than the ~100 that espeak-ng ships.

A model trained on some of espeak-ng's French variants meets the others (and other
synthesisers) at evaluation, and most of its errors there are on voices unlike any it
trained on. An espeak-ng variant is a small text file (``voices/!v/<name>``) of settings:
pitch, the frequency, height and width of each formant, voicing, breathiness, roughness,
spectral tone, echo, the Klatt synthesiser. Drawing those settings at random gives as many
new voices as wanted, spread over the space the shipped variants sample.

The settings are drawn from fixed, generic ranges: no held-out variant file is read or
copied. espeak-ng only loads variants from its data folder, so :func:`data_folder` builds a
folder of links to the wheel's data with the random variants added, once per user and
machine (in the temporary folder), and the synthesiser is initialised on it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

PREFIX = "rnd"  # variant names: rnd000, ... (voices "fr+rnd000"; splits.TRAIN_ONLY_PREFIXES)
# variants written; a corpus uses the first ``BuildConfig.random_voices``. espeak-ng lists at
# most 349 voice files and the wheel has 245 (141 languages, 104 variants): 96 more fit.
COUNT = 96
_SEED = 20261130  # the variants are fixed: a voice name always means the same settings


def names(count: int) -> list[str]:
    """The first ``count`` random voices, as ``synthesize(voice=...)`` takes them."""
    if not 0 <= count <= COUNT:
        raise ValueError(f"random voices must be between 0 and {COUNT}, got {count}")
    return [f"fr+{PREFIX}{index:03d}" for index in range(count)]


def variant_text(index: int) -> str:
    """The settings file of random variant ``index`` (espeak-ng's voice file syntax)."""
    rng = np.random.default_rng([_SEED, index])

    def draw(low: float, high: float) -> int:
        return int(round(rng.uniform(low, high)))

    female = rng.random() < 0.5
    base = draw(150, 230) if female else draw(70, 135)
    lines = [
        "language variant",
        f"name {PREFIX}{index:03d}",
        f"gender {'female' if female else 'male'}",
        f"pitch {base} {base + draw(20, 80)}",
    ]
    # a vocal tract scaled as a whole (longer or shorter), then each formant on its own
    tract = rng.uniform(1.05, 1.22) if female else rng.uniform(0.88, 1.05)
    for formant in range(9):
        frequency = round(100 * tract * rng.uniform(0.93, 1.07)) if formant >= 1 else 100
        height = draw(60, 140) if formant <= 5 else draw(30, 100)
        width = draw(60, 160)
        lines.append(f"formant {formant} {frequency} {height} {width}")
    lines.append(f"voicing {draw(40, 160)}")
    lines.append(f"consonants {draw(60, 130)} {draw(60, 130)}")
    if rng.random() < 0.3:  # breathy to whispered
        level = rng.uniform(5, 70)
        lines.append(
            "breath " + " ".join(str(round(level * rng.uniform(0.3, 1.0))) for _ in range(6))
        )
    if rng.random() < 0.3:
        lines.append(f"roughness {draw(0, 60)}")
    if rng.random() < 0.3:
        lines.append(f"flutter {draw(0, 30)}")
    if rng.random() < 0.4:  # spectral tilt: (frequency Hz, amplitude) pairs
        lines.append(
            "tone "
            + " ".join(
                f"{f} {draw(20, 255)}" for f in (draw(100, 400), 1000, 2000, draw(2800, 4000))
            )
        )
    if rng.random() < 0.15:
        lines.append(f"echo {draw(10, 80)} {draw(5, 30)}")
    if rng.random() < 0.25:
        lines.append(f"klatt {draw(1, 4)}")
    return "\n".join(lines) + "\n"


def data_folder(source: str | Path) -> Path:
    """A folder that reads as espeak-ng's data folder ``source`` plus the random variants.

    Made of links to ``source``'s entries (nothing copied), under the temporary folder;
    made once and reused: its name changes with ``source`` and the variants' content.
    Falls back to ``source`` itself (random voices then unknown) if it cannot be written."""
    source = Path(source).resolve()
    texts = [variant_text(index) for index in range(COUNT)]
    digest = hashlib.sha1("\0".join([str(source), *texts]).encode()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"urgence-espeak-{os.getuid()}-{digest}"
    if (target / "voices" / "!v" / f"{PREFIX}{COUNT - 1:03d}").is_file():
        return target
    staging: Path | None = None
    try:
        staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
        for entry in source.iterdir():
            if entry.name != "voices":
                (staging / entry.name).symlink_to(entry)
        voices = staging / "voices"
        voices.mkdir()
        for entry in (source / "voices").iterdir():
            if entry.name != "!v":
                (voices / entry.name).symlink_to(entry)
        variants = voices / "!v"
        variants.mkdir()
        for entry in (source / "voices" / "!v").iterdir():
            (variants / entry.name).symlink_to(entry)
        for index, text in enumerate(texts):
            (variants / f"{PREFIX}{index:03d}").write_text(text, encoding="utf-8")
        try:
            staging.rename(target)  # atomic: another process may have made it meanwhile
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        return target if target.is_dir() else source
    return target

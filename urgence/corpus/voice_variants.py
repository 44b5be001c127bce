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

*Jittered* variants (``jit000``, ...) are the other kind: a shipped variant of the training
split, its settings each scaled by a random factor (pitch, formant frequencies, heights and
widths, voicing, consonants, spectral tone). espeak-ng's held-out variants are often close
relatives of training ones (steph, steph2, steph3 differ in a few settings), and the model
still lost most of its calls on them (MODEL_CARD.md, session 20): a jittered voice is a new
relative of a training voice. Only training-split variant files are read.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from urgence.corpus.splits import split_of

PREFIX = "rnd"  # variant names: rnd000, ... (voices "fr+rnd000"; splits.TRAIN_ONLY_PREFIXES)
JITTER_PREFIX = "jit"  # jittered variants: jit000, ... (also training voices only)
# variants written; a corpus uses the first ``BuildConfig.random_voices`` and the first
# ``BuildConfig.jittered_voices``. espeak-ng lists at most 349 voice files and the wheel has
# 245 (141 languages, 104 variants): 104 more fit, and at 104 espeak-ng warns that its list
# is full, so 96 are written.
COUNT = 56
JITTER_COUNT = 40
_SEED = 20261130  # the variants are fixed: a voice name always means the same settings


def names(count: int) -> list[str]:
    """The first ``count`` random voices, as ``synthesize(voice=...)`` takes them."""
    if not 0 <= count <= COUNT:
        raise ValueError(f"random voices must be between 0 and {COUNT}, got {count}")
    return [f"fr+{PREFIX}{index:03d}" for index in range(count)]


def jittered_names(count: int) -> list[str]:
    """The first ``count`` jittered voices, as ``synthesize(voice=...)`` takes them."""
    if not 0 <= count <= JITTER_COUNT:
        raise ValueError(f"jittered voices must be between 0 and {JITTER_COUNT}, got {count}")
    return [f"fr+{JITTER_PREFIX}{index:03d}" for index in range(count)]


def jitter_sources(variants: Iterable[str], count: int | None = None) -> list[str]:
    """The variant (file name) each jittered voice comes from, in order: the training-split
    ones among ``variants``, in a fixed shuffled order, repeated to ``count`` (default: each
    once)."""
    sources = sorted(v for v in variants if " " not in v and split_of(f"espeak:fr+{v}") == "train")
    order = np.random.default_rng([_SEED, 2]).permutation(len(sources))
    sources = [sources[i] for i in order]
    if count is None or not sources:
        return sources
    return [sources[i % len(sources)] for i in range(count)]


def jittered_text(index: int, source_text: str) -> str:
    """Jittered variant ``index`` of a variant file's text: each number that shapes the voice
    scaled by its own random factor; settings the file omits that are jittered (voicing,
    consonants) are added around espeak-ng's default of 100."""
    rng = np.random.default_rng([_SEED, 1, index])

    def scaled(value: str, low: float, high: float, top: int = 1000) -> str:
        return str(min(top, max(0, round(float(value) * rng.uniform(low, high)))))

    lines = ["language variant", f"name {JITTER_PREFIX}{index:03d}"]
    seen = set()
    for line in source_text.splitlines():
        key, *values = line.split("//")[0].split() or [""]
        if key in ("", "language", "name"):
            continue
        seen.add(key)
        if not all(v.lstrip("-").isdigit() for v in values):
            lines.append(" ".join(line.split()))  # not numbers to jitter: copied
            continue
        if key == "pitch" and len(values) >= 2:
            factor = rng.uniform(0.85, 1.18)
            values = [str(round(float(v) * factor)) for v in values[:2]]
        elif key == "formant" and len(values) >= 4:
            values = [
                values[0],
                scaled(values[1], 0.95, 1.05) if values[0] != "0" else values[1],
                scaled(values[2], 0.75, 1.33),
                scaled(values[3], 0.8, 1.25),
                *values[4:],
            ]
        elif key in ("voicing", "consonants") and values:
            values = [scaled(v, 0.6, 1.6) for v in values]
        elif key == "tone" and len(values) % 2 == 0:
            values = [v if i % 2 == 0 else scaled(v, 0.7, 1.4, 255) for i, v in enumerate(values)]
        lines.append(" ".join([key, *values]))
    if "voicing" not in seen:
        lines.append(f"voicing {scaled('100', 0.6, 1.6)}")
    if "consonants" not in seen:
        lines.append(f"consonants {scaled('100', 0.6, 1.6)} {scaled('100', 0.6, 1.6)}")
    return "\n".join(lines) + "\n"


def _jittered_texts(variants_dir: Path) -> list[str]:
    names = [p.name for p in variants_dir.iterdir() if p.is_file()]
    return [
        jittered_text(index, (variants_dir / source).read_text(errors="replace"))
        for index, source in enumerate(jitter_sources(names, JITTER_COUNT))
    ]


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
    files = {f"{PREFIX}{i:03d}": variant_text(i) for i in range(COUNT)}
    try:
        jittered = _jittered_texts(source / "voices" / "!v")
    except OSError:
        jittered = []
    files.update({f"{JITTER_PREFIX}{i:03d}": text for i, text in enumerate(jittered)})
    digest = hashlib.sha1("\0".join([str(source), *files.values()]).encode()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"urgence-espeak-{os.getuid()}-{digest}"
    if (target / "voices" / "!v" / list(files)[-1]).is_file():
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
        for name, text in files.items():
            (variants / name).write_text(text, encoding="utf-8")
        try:
            staging.rename(target)  # atomic: another process may have made it meanwhile
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        return target if target.is_dir() else source
    return target

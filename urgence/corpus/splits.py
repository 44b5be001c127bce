"""Deterministic train / val / test splits by speaker (or voice), never by clip.

A speaker's split comes from the SHA-1 of its id, so it never changes when the corpus grows
or is rebuilt, and a voice never appears in two splits. Whole voice families can be held out
for evaluation with shell-style patterns (``"espeak:fr+f*"``): they go to ``test``.
The random and jittered espeak-ng voices our own code makes (``voice_variants``) are training
material only: they always go to ``train`` (unless held out by a pattern).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from fnmatch import fnmatchcase

SPLITS: tuple[str, ...] = ("train", "val", "test")
# percent of speakers in train and val; the rest is test
TRAIN_PERCENT = 80
VAL_PERCENT = 10
# speaker ids that are always train: the random and jittered voice variants
# (voice_variants.PREFIX, voice_variants.JITTER_PREFIX)
TRAIN_ONLY_PREFIXES: tuple[str, ...] = ("espeak:fr+rnd", "espeak:fr+jit")


def split_of(speaker_id: str, *, holdout: Iterable[str] = ()) -> str:
    """``"train"``, ``"val"`` or ``"test"`` for a speaker id (80 / 10 / 10 by SHA-1 hash).

    Speakers matching any ``holdout`` pattern (``fnmatch``, case-sensitive) are ``"test"``.
    Raises ValueError for an empty id."""
    if not speaker_id:
        raise ValueError("speaker id is empty")
    if any(fnmatchcase(speaker_id, pattern) for pattern in holdout):
        return "test"
    if speaker_id.startswith(TRAIN_ONLY_PREFIXES):
        return "train"
    bucket = int(hashlib.sha1(speaker_id.encode("utf-8")).hexdigest(), 16) % 100
    if bucket < TRAIN_PERCENT:
        return "train"
    if bucket < TRAIN_PERCENT + VAL_PERCENT:
        return "val"
    return "test"

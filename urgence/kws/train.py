"""Train a keyword model with ``urgence.nn``: config file + overrides, checkpoints, resume.

Three tasks share one loop:
- ``keywords``: the 12 keywords + ``_unknown_`` + ``_silence_`` from a corpus folder
  (``urgence corpus build``), whose training features already hold augmented copies; fresh
  SpecAugment masks are drawn for every batch.
- ``speech_commands``: the real-human English words of Speech Commands (split by speaker),
  the pretraining task of transfer learning and the real-speech benchmark of an architecture.
- ``words``: French words, each its own class (``urgence corpus words``: the keywords and
  the words closest to them among them), with Speech Commands' English words as more classes
  when ``speech_commands`` names their folder: a pretraining task in the keywords' language.

Transfer learning: ``init_from`` names a trained model whose layers, up to its classifier,
become the base of the new model; ``freeze_base`` trains only the new head (feature
extraction), without it the whole network is fine-tuned. With ``keep_classifier``, a base
that already has the task's classes (same labels, same order) keeps its classifier too, so
that training continues (a round of hard-example mining) instead of restarting a random head.

Every epoch writes ``<run_dir>/last`` (weights + optimiser state) and ``<run_dir>/state.json``
(epoch, history, generator state, config): ``resume`` continues an interrupted run exactly
where it stopped. The best epoch (``select_on``) is kept as ``<run_dir>/best`` and exported to
``out`` with its metadata (labels, feature config, thresholds, metrics, training config).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from urgence.audio import augment
from urgence.audio.features import FeatureConfig, log_mel
from urgence.corpus import dataset
from urgence.corpus.splits import split_of
from urgence.corpus.vocabulary import KEYWORDS, LABELS
from urgence.kws import architectures
from urgence.kws.evaluate import (
    ClipClassifier,
    evaluate_probs,
    load_labelled_clips,
    score_clips,
)
from urgence.nn import Sequential, load_model
from urgence.nn.data_parallel import DataParallel
from urgence.nn.layers import Dense, Dropout, Softmax
from urgence.nn.optimizers import Adam
from urgence.nn.schedules import CosineDecay

TASKS = ("keywords", "speech_commands", "words")


@dataclass
class TrainConfig:
    """Everything a training run depends on. Paths are relative to the working directory."""

    task: str = "keywords"
    data: str = "data/corpus"  # corpus folder, or the Speech Commands folder
    out: str = "models/kws"
    run_dir: str = "runs/kws"
    architecture: str = "dscnn"
    width: int = 64
    # bcresnet only: 2 strides its first convolution in time too (49 frames of 20 ms)
    time_stride: int = 1
    cmn: bool = False  # cepstral mean normalisation layer first (see architectures.build)
    # noise-floor normalisation layer first, beside the mean-normalised channel when ``cmn``
    floor: bool = False
    # if not 0: only the first ``lifter`` cepstral coefficients of each frame's mel bands (the
    # spectral envelope) reach the network (architectures.build)
    lifter: int = 0
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.003
    weight_decay: float = 0.0001
    warmup_epochs: float = 0.3
    spec_augment: bool = True
    # each training window shifted in time by up to this many frames (10 ms) per batch, the
    # vacated frames filled with each band's lowest value: the detector's windows meet a
    # word at any offset (experiment; 0 = off)
    time_shift_frames: int = 0
    # targets (1 - e) on the label and e / K spread over all K classes (experiment; 0 = off):
    # a softer boundary between keywords and `_unknown_` for voices no training data holds
    label_smoothing: float = 0.0
    # if > 0: the model scored and exported each epoch is the moving average of the weights
    # (Adam's ema_momentum; experiment, 0 = off), its batch-normalisation statistics
    # recomputed on ``ema_norm_batches`` training batches (0: the last weights' statistics
    # kept); the last weights themselves are kept in <run_dir>/raw for comparison
    ema_momentum: float = 0.0
    ema_norm_batches: int = 100
    seed: int = 0
    init_from: str | None = None
    # with init_from and a base of the same labels (a mining round): keep its classifier and
    # go on training it. Off by default: the shipped recipe restarts a random head each
    # round, and a run that kept it (MODEL_CARD.md, session 8) routed no more calls
    keep_classifier: bool = False
    freeze_base: bool = False
    # with init_from: the base's first layers kept as pretrained (e.g. 4: the first
    # convolution block, learnt on real voices); the rest is fine-tuned
    freeze_layers: int = 0
    # labelled clips of voices absent from training (e.g. validation_other_voices), read
    # every epoch for model selection; never trained on
    validation_clips: str | None = None
    select_on: str = "val"  # "val" (corpus validation split) or "clips" (validation_clips)
    # keyword data budget (transfer experiments): keyword clips from at most this many
    # voices, and at most this many clean clips (each with its augmented copies) per voice
    # and keyword; the seed had 3 speakers x 6 clips. See keyword_budget.
    keyword_voices: int | None = None
    clips_per_voice_keyword: int | None = None
    max_train: int | None = None  # cap on training rows (tests, data-size experiments)
    # keywords task: at most this many of the corpus's own training rows (a random draw,
    # another each seed), every ``extra_train`` row kept: a mining round that continues a
    # model can learn its new hard examples without a whole pass over the corpus
    corpus_rows: int | None = None
    # corpus sources left out of training (e.g. ["asterisk", "speech-commands"]: what the
    # model learns when no real human voice is ever labelled `_unknown_`)
    exclude_sources: list[str] | None = None
    augment_copies: int = 3  # speech_commands task: augmented copies per training clip
    # words task: the Speech Commands folder whose English words join the French words as
    # more classes (real voices in the base, as the speech_commands task has them)
    speech_commands: str | None = None
    # keywords task: more training rows from feature files (x, label, speaker), e.g. the
    # hard examples of ``urgence corpus mine`` (<corpus>/features_mined.npz)
    extra_train: list[str] | None = None
    # processes sharing each batch (urgence.nn.data_parallel): 2 on a 2-core machine trains
    # ~1.7x faster than 1, whose BLAS threads gain little on these small layers
    processes: int = 1

    @classmethod
    def from_sources(
        cls, path: str | Path | None = None, overrides: list[str] | None = None
    ) -> TrainConfig:
        """Defaults, then the JSON file ``path``, then ``key=value`` overrides (values
        parsed as JSON when they parse, else kept as strings)."""
        values: dict[str, Any] = {}
        if path is not None:
            try:
                values.update(json.loads(Path(path).read_text(encoding="utf-8")))
            except (OSError, json.JSONDecodeError) as exc:
                raise ValueError(f"cannot read training config {path}: {exc}") from None
        for item in overrides or []:
            key, sep, raw = item.partition("=")
            if not sep:
                raise ValueError(f"override {item!r} is not key=value")
            try:
                values[key.strip()] = json.loads(raw)
            except json.JSONDecodeError:
                values[key.strip()] = raw
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training settings {unknown}; known: {sorted(known)}")
        config = cls(**values)
        if config.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {config.task!r}")
        if config.select_on not in ("val", "clips"):
            raise ValueError("select_on must be 'val' or 'clips'")
        if config.select_on == "clips" and not config.validation_clips:
            raise ValueError("select_on='clips' needs validation_clips")
        if config.freeze_layers and not config.init_from:
            raise ValueError("freeze_layers needs init_from (the pretrained base to keep)")
        budget = config.keyword_voices is not None or config.clips_per_voice_keyword is not None
        if config.exclude_sources and budget:
            raise ValueError("exclude_sources cannot be combined with a keyword budget")
        return config


@dataclass
class TaskData:
    labels: tuple[str, ...]
    x_train: np.ndarray  # (N, 40, 98) float32
    y_train: np.ndarray  # (N,) int64
    x_val: np.ndarray
    y_val: np.ndarray
    speakers_train: np.ndarray


def keyword_budget(
    y: np.ndarray,
    speakers: np.ndarray,
    clip_ids: np.ndarray,
    *,
    voices: int | None,
    clips_per_voice: int | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Sorted row indices within a keyword data budget: keyword rows from at most ``voices``
    voices (chosen at random) and ``clips_per_voice`` clips (all rows of a clip kept
    together) per voice and keyword; each rejection class keeps as many rows (at random)
    as a keyword class has on average."""
    is_keyword = np.isin(y, [LABELS.index(k) for k in KEYWORDS])
    allowed = set(np.unique(speakers[is_keyword]))
    if voices is not None:
        allowed = set(rng.permutation(sorted(allowed))[:voices])
    chosen_clips: set[int] = set()
    if clips_per_voice is not None:
        by_pair: dict[tuple[str, int], list[int]] = {}
        for i in np.flatnonzero(is_keyword):
            if speakers[i] in allowed:
                by_pair.setdefault((str(speakers[i]), int(y[i])), []).append(int(clip_ids[i]))
        for clips in by_pair.values():
            unique = sorted(set(clips))
            chosen_clips.update(rng.permutation(unique)[:clips_per_voice].tolist())
    keyword_rows = [
        i
        for i in np.flatnonzero(is_keyword)
        if speakers[i] in allowed and (clips_per_voice is None or int(clip_ids[i]) in chosen_clips)
    ]
    # the rejection classes shrink with the budget, to as many rows per class as the
    # keywords have (else a small budget drowns in unknown words)
    per_class = len(keyword_rows) / max(len(np.unique(y[is_keyword])), 1)
    rejection_rows = []
    for label in np.unique(y[~is_keyword]):
        rows = np.flatnonzero(y == label)
        rejection_rows += rng.permutation(rows)[: max(1, round(per_class))].tolist()
    return np.sort(np.asarray(keyword_rows + rejection_rows, dtype=np.int64))


def load_task(config: TrainConfig, rng: np.random.Generator) -> TaskData:
    if config.task == "keywords":
        x_train, y_train, speakers, _ = dataset.load_split(config.data, "train")
        x_val, y_val, _, _ = dataset.load_split(config.data, "val")
        labels = LABELS
        if config.keyword_voices is not None or config.clips_per_voice_keyword is not None:
            # rows of one clip: a clean row followed by its augmented copies
            path = Path(config.data) / "features_train.npz"
            augmented = dataset.read_npz(path, ("augmented",))["augmented"]
            clip_ids = np.cumsum(~augmented)
            keep = keyword_budget(
                y_train,
                speakers,
                clip_ids,
                voices=config.keyword_voices,
                clips_per_voice=config.clips_per_voice_keyword,
                rng=rng,
            )
            x_train, y_train, speakers = x_train[keep], y_train[keep], speakers[keep]
        if config.exclude_sources:
            path = Path(config.data) / "features_train.npz"
            sources = dataset.read_npz(path, ("source",))["source"]
            keep = ~np.isin(sources, config.exclude_sources)
            x_train, y_train, speakers = x_train[keep], y_train[keep], speakers[keep]
        if config.corpus_rows is not None and len(y_train) > config.corpus_rows:
            keep = np.sort(rng.choice(len(y_train), config.corpus_rows, replace=False))
            x_train, y_train, speakers = x_train[keep], y_train[keep], speakers[keep]
        for path in config.extra_train or ():
            extra = dataset.read_npz(path, ("x", "label", "speaker"))
            x_train = np.concatenate([x_train, extra["x"].astype(np.float32)])
            y_train = np.concatenate([y_train, extra["label"].astype(np.int64)])
            speakers = np.concatenate([speakers.astype(str), extra["speaker"].astype(str)])
    elif config.task == "words":
        x_train, y_train, speakers, x_val, y_val, labels = _words(config, rng)
    else:
        x_train, y_train, speakers, x_val, y_val, labels = _speech_commands(
            config.data, config, rng
        )
    if config.max_train and len(y_train) > config.max_train:
        keep = np.sort(rng.choice(len(y_train), config.max_train, replace=False))
        x_train, y_train, speakers = x_train[keep], y_train[keep], speakers[keep]
    return TaskData(tuple(labels), x_train, y_train, x_val, y_val, np.asarray(speakers))


def _words(config: TrainConfig, rng: np.random.Generator):
    """French words of a word corpus (``urgence corpus words``), with the English words of
    ``config.speech_commands`` as more classes (labelled ``en:<word>``) when given."""
    from urgence.corpus.words import load_words

    x_train, y_train, speakers, labels = load_words(config.data, "train")
    x_val, y_val, _, _ = load_words(config.data, "val")
    if config.speech_commands:
        en_x, en_y, en_speakers, en_x_val, en_y_val, en_labels = _speech_commands(
            config.speech_commands, config, rng
        )
        offset = len(labels)
        labels = labels + [f"en:{word}" for word in en_labels]
        x_train = np.concatenate([x_train, en_x])
        y_train = np.concatenate([y_train, en_y + offset])
        speakers = np.concatenate([speakers.astype(str), en_speakers.astype(str)])
        x_val = np.concatenate([x_val, en_x_val])
        y_val = np.concatenate([y_val, en_y_val + offset])
    return x_train, y_train, speakers, x_val, y_val, labels


def _speech_commands(folder: str, config: TrainConfig, rng: np.random.Generator):
    """Speech Commands words (their own labels), features with augmented training copies."""
    from urgence.corpus.recordings import load_noise, load_speech_commands

    clips, words, speakers = load_speech_commands(folder)
    labels = sorted(set(words))
    noise_root = Path(folder).parent / "background_noise"
    noises = []
    if noise_root.is_dir():
        noises = [halves[0] for halves in load_noise(noise_root).values()]
    feature_config = FeatureConfig()
    parts: dict[str, tuple[list, list]] = {"train": ([], []), "val": ([], [])}
    for clip, word, speaker in zip(clips, words, speakers, strict=True):
        split = split_of(f"speech_commands:{speaker}")
        if split == "test":
            split = "val"  # a held-out set by speaker: both non-train splits measure it
        xs, ys = parts[split]
        copies = [clip]
        if split == "train":
            copies += [
                augment.random_chain(clip, rng=rng, noises=noises)
                for _ in range(config.augment_copies)
            ]
        for c in copies:
            xs.append(log_mel(c, config=feature_config))
            ys.append(labels.index(word))
    train_speakers = [s for s in speakers if split_of(f"speech_commands:{s}") == "train"]
    speakers_rows = np.repeat(np.asarray(train_speakers), 1 + config.augment_copies)
    empty = np.zeros((0, feature_config.n_mels, feature_config.n_frames), np.float32)
    x_train, x_val = (np.stack(parts[s][0]) if parts[s][0] else empty for s in ("train", "val"))
    return (
        x_train.astype(np.float32),
        np.asarray(parts["train"][1], dtype=np.int64),
        speakers_rows,
        x_val.astype(np.float32),
        np.asarray(parts["val"][1], dtype=np.int64),
        labels,
    )


def _network_of(config: TrainConfig) -> dict[str, object]:
    """The trained network's family and size (``architecture``, ``width``, ``time_stride``):
    a model started from ``init_from`` keeps its base's layers, whatever the configuration's
    unused defaults say, so it inherits the base's record. A base saved before this record
    existed gives its family only."""
    if config.init_from is None:
        return {
            "architecture": config.architecture,
            "width": config.width,
            "time_stride": config.time_stride,
        }
    metadata = load_model(config.init_from).metadata
    network = metadata.get("network")
    if isinstance(network, dict):
        return dict(network)
    return {"architecture": str(metadata.get("architecture", "unknown"))}


def make_model(config: TrainConfig, labels: tuple[str, ...]) -> Sequential:
    if config.init_from is None:
        options = {"width": config.width}
        if config.time_stride != 1:
            if config.architecture != "bcresnet":
                raise ValueError("time_stride is a setting of the bcresnet architecture only")
            options["time_stride"] = config.time_stride
        return architectures.build(
            config.architecture,
            len(labels),
            seed=config.seed,
            cmn=config.cmn,
            floor=config.floor,
            lifter=config.lifter,
            **options,
        )
    base = load_model(config.init_from)
    body = base.layers[:-2]
    if config.keep_classifier:
        if base.metadata.get("labels") != list(labels):
            raise ValueError(
                f"keep_classifier needs a base with the task's labels {list(labels)}, "
                f"{config.init_from} has {base.metadata.get('labels')}"
            )
        head = base.layers[-2:]
    else:
        # a new classifier (Dense + Softmax) on everything up to and including the layer
        # that fed the old one, so the new head sees the same representation
        head = [Dense(len(labels)), Softmax()]
    model = Sequential([*body, *head], input_shape=base.input_shape, seed=config.seed)
    if config.freeze_base:
        model.freeze(upto=len(body))
    elif config.freeze_layers:
        if not 0 < config.freeze_layers <= len(body):
            raise ValueError(f"freeze_layers must be in [0, {len(body)}] for this base")
        model.freeze(upto=config.freeze_layers)
    return model


def _spec_augment_batch(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fresh SpecAugment masks on each example of a batch (N, 40, 98) -> new array."""
    return np.stack([augment.spec_augment(example, rng=rng) for example in x])


def _time_shift_batch(x: np.ndarray, max_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Each example (N, n_mels, T) moved by a random whole number of frames in
    [-max_frames, max_frames]; what leaves the window is dropped, what enters is the band's
    minimum over the example (the quietest it gets). Returns a new array."""
    out = np.empty_like(x)
    for i, (example, shift) in enumerate(
        zip(x, rng.integers(-max_frames, max_frames + 1, len(x)), strict=True)
    ):
        floor = example.min(axis=1, keepdims=True)
        if shift > 0:
            out[i, :, :shift] = floor
            out[i, :, shift:] = example[:, :-shift]
        elif shift < 0:
            out[i, :, shift:] = floor
            out[i, :, :shift] = example[:, -shift:]
        else:
            out[i] = example
    return out


def smoothed_targets(labels: np.ndarray, n_classes: int, smoothing: float) -> np.ndarray:
    """Labels (N,) int -> target rows (N, n_classes) float32: ``1 - smoothing`` on the label
    plus ``smoothing / n_classes`` on every class (rows sum to one)."""
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {smoothing}")
    rows = np.full((len(labels), n_classes), smoothing / n_classes, dtype=np.float32)
    rows[np.arange(len(labels)), labels] += np.float32(1.0 - smoothing)
    return rows


def _reseed_dropout(model: Sequential, seed: int, epoch: int) -> None:
    """Give every Dropout layer a generator drawn from (seed, epoch, layer index): a resumed
    run then drops exactly the units the uninterrupted run would have (Dropout has no
    parameters, so building it again only replaces its generator)."""
    for index, layer in enumerate(model.layers):
        if isinstance(layer, Dropout):
            layer.build(layer.input_shape, np.random.default_rng([seed, epoch, index]))


def _save_json_atomically(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def _log(message: str, verbose: int) -> None:
    if verbose:
        print(message, file=sys.stderr, flush=True)


def _keyword_model_metadata(config: TrainConfig, labels) -> dict[str, Any]:
    """What a model file needs to be loaded as a keyword model (``urgence.kws.model``)."""
    return {
        "task": config.task,
        "labels": list(labels),
        "feature_config": FeatureConfig().to_dict(),
    }


def _augmented_batch(x: np.ndarray, config: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    """Training rows as the network sees them: shifted in time and masked (SpecAugment),
    as the config asks."""
    if config.time_shift_frames:
        x = _time_shift_batch(x, config.time_shift_frames, rng)
    if config.spec_augment:
        x = _spec_augment_batch(x, rng)
    return x


def _averaged_model(last: Path, data: TaskData, config: TrainConfig, epoch: int) -> Sequential:
    """The model saved at ``last`` with its optimiser's moving averages as weights, and its
    batch-normalisation statistics recomputed for them on random training batches (their
    own generator: the training's draws are the same with and without averaging)."""
    averaged = load_model(last)
    averaged.set_weights(averaged.optimizer.averaged())
    if config.ema_norm_batches:
        rng = np.random.default_rng([config.seed, 2, epoch])
        size = min(config.batch_size, len(data.y_train))
        averaged.update_normalization(
            _augmented_batch(
                data.x_train[np.sort(rng.choice(len(data.y_train), size, False))], config, rng
            )[:, None]
            for _ in range(config.ema_norm_batches)
        )
    return averaged


def _clips_score(model: Sequential, labels, clips) -> dict:
    probs = score_clips(ClipClassifier(model, labels=labels), clips.samples)
    return evaluate_probs(probs, clips.labels, labels=labels, groups=clips.groups)


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    verbose: int = 1,
    stop_after_epoch: int | None = None,
) -> Path | None:
    """Run (or resume) training; returns the stem of the exported model (``config.out``).

    ``stop_after_epoch`` ends the run early, as an interruption would (time-boxed runs,
    tests): the checkpoint is written, nothing is exported, and None is returned."""
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path = run_dir / "state.json"
    rng = np.random.default_rng(config.seed)
    started = time.perf_counter()
    data = load_task(config, np.random.default_rng([config.seed, 1]))
    _log(
        f"{config.task}: {len(data.y_train)} training rows, {len(data.y_val)} validation rows, "
        f"{len(data.labels)} classes",
        verbose,
    )
    if not len(data.y_val):
        raise ValueError(f"{config.data}: no validation rows to select the best epoch on")
    clips = None
    if config.validation_clips:
        clips = load_labelled_clips(config.validation_clips, known_labels=data.labels)

    steps_per_epoch = max(1, -(-len(data.y_train) // config.batch_size))
    state: dict[str, Any] = {"epoch": 0, "history": [], "best": None, "elapsed_s": 0.0}
    if resume and state_path.exists():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if state.get("config") != asdict(config):
            raise ValueError(f"{state_path}: the run was started with another config")
        model = load_model(run_dir / "last")
        rng.bit_generator.state = state["rng"]
        _log(f"resuming after epoch {state['epoch']}", verbose)
    else:
        model = make_model(config, data.labels)
        schedule = CosineDecay(
            config.lr,
            decay_steps=config.epochs * steps_per_epoch,
            warmup_steps=int(config.warmup_epochs * steps_per_epoch),
            final_fraction=0.02,
        )
        optimizer = Adam(
            schedule,
            weight_decay=config.weight_decay,
            ema_momentum=config.ema_momentum or None,
        )
        model.compile("cross_entropy", optimizer)
        if verbose:
            print(model.summary(), file=sys.stderr)

    # the workers fork now: the model is built, compiled and frozen as it will train
    trainer = DataParallel(model, processes=config.processes) if config.processes > 1 else None
    try:
        for epoch in range(state["epoch"] + 1, config.epochs + 1):
            t0 = time.perf_counter()
            _reseed_dropout(model, config.seed, epoch)
            if trainer is not None:
                trainer.seed_dropout([config.seed, epoch])
            order = rng.permutation(len(data.y_train))
            total_loss = total_correct = 0.0
            for step, start in enumerate(range(0, len(order), config.batch_size)):
                idx = np.sort(order[start : start + config.batch_size])
                xb = _augmented_batch(data.x_train[idx], config, rng)
                yb = data.y_train[idx]
                if config.label_smoothing:
                    yb = smoothed_targets(yb, len(data.labels), config.label_smoothing)
                result = (trainer or model).train_on_batch(xb[:, None], yb)
                total_loss += result["loss"] * len(idx)
                total_correct += result["accuracy"] * len(idx)
                if verbose and step % 20 == 0:
                    done = (start + len(idx)) / len(order)
                    print(
                        f"\repoch {epoch}/{config.epochs} {done:4.0%} loss {result['loss']:.3f}",
                        end="",
                        file=sys.stderr,
                        flush=True,
                    )
            model.save(run_dir / "last", include_optimizer=True, metadata={"epoch": epoch})
            scored = model
            if config.ema_momentum:
                # loadable as a keyword model, to be compared with the averaged one
                raw_metadata = {"epoch": epoch, **_keyword_model_metadata(config, data.labels)}
                model.save(run_dir / "raw", metadata=raw_metadata)
                scored = _averaged_model(run_dir / "last", data, config, epoch)
            record = {
                "epoch": epoch,
                "loss": total_loss / len(order),
                "accuracy": total_correct / len(order),
                **{
                    f"val_{k}": v
                    for k, v in scored.evaluate(data.x_val[:, None], data.y_val).items()
                },
            }
            if scored is not model:
                raw = model.evaluate(data.x_val[:, None], data.y_val)
                record["raw_val_accuracy"] = raw["accuracy"]
            if clips is not None and clips.samples:
                report = _clips_score(scored, data.labels, clips)
                record["clips_accuracy"] = report["accuracy"]
                record["clips_keyword_accuracy"] = report["keyword_accuracy"]
                record["clips_forced_choice"] = report.get("forced_choice_accuracy")
            record["seconds"] = time.perf_counter() - t0
            score = (
                record["clips_accuracy"] if config.select_on == "clips" else record["val_accuracy"]
            )
            state["history"].append(record)
            if state["best"] is None or score > state["best"]["score"]:
                state["best"] = {"epoch": epoch, "score": score}
                scored.save(run_dir / "best", metadata={"epoch": epoch})
            state.update(
                epoch=epoch,
                rng=rng.bit_generator.state,
                config=asdict(config),
                elapsed_s=state["elapsed_s"] + record["seconds"],
            )
            _save_json_atomically(state_path, state)
            summary = " ".join(
                f"{k} {v:.3f}" for k, v in record.items() if k != "epoch" and isinstance(v, float)
            )
            _log(f"\repoch {epoch}/{config.epochs} {summary}", verbose)
            if stop_after_epoch is not None and epoch >= stop_after_epoch and epoch < config.epochs:
                _log(f"stopped after epoch {epoch}; continue with --resume", verbose)
                return None

    finally:
        if trainer is not None:
            trainer.close()

    best = load_model(run_dir / "best")
    network = _network_of(config)
    metadata = {
        **_keyword_model_metadata(config, data.labels),
        "thresholds": {},
        "architecture": network["architecture"],
        # the network as built; "training" below is this run's configuration, whose
        # architecture settings a run started from init_from does not use
        "network": network,
        "params": best.count_params(),
        "macs": architectures.count_macs(best),
        "best_epoch": state["best"]["epoch"],
        "history": state["history"],
        "training": asdict(config),
        "training_seconds": round(state["elapsed_s"], 1),
        "training_rows": int(len(data.y_train)),
        "wall_seconds_this_run": round(time.perf_counter() - started, 1),
    }
    best.save(config.out, metadata=metadata)
    _log(f"saved {config.out}.npz / .json (best epoch {state['best']['epoch']})", verbose)
    return Path(config.out)

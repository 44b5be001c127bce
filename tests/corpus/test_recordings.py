from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from urgence.corpus.clips import CLIP_SAMPLES
from urgence.corpus.recordings import (
    ASTERISK_FR,
    CorpusSourceError,
    asterisk_files,
    import_recordings,
    load_noise,
    load_speech_commands,
    speech_commands_files,
    speech_windows,
)

SHARED_COMMANDS = Path(__file__).resolve().parents[3] / "shared/data/speech_commands_v002_test"


def _wav(path: Path, seconds: float = 0.5, sr: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(round(seconds * sr)) / sr
    sf.write(path, 0.3 * np.sin(2 * np.pi * 220 * t), sr)
    return path


def test_import_recordings_reads_valid_files_and_reports_problems(tmp_path):
    _wav(tmp_path / "alice" / "hemorragie" / "1.wav")
    _wav(tmp_path / "alice" / "Incendie" / "1.wav", sr=44100)
    _wav(tmp_path / "bob" / "bonjour" / "1.wav")  # not a keyword
    (tmp_path / "bob" / "gaz").mkdir(parents=True)
    (tmp_path / "bob" / "gaz" / "broken.wav").write_bytes(b"RIFF not really a wav")
    (tmp_path / "bob" / "gaz" / "notes.txt").write_text("hello")
    result = import_recordings(tmp_path)
    labels = sorted((c.speaker, c.label) for c in result.clips)
    assert labels == [("alice", "hémorragie"), ("alice", "incendie")]
    for clip in result.clips:
        assert clip.samples.dtype == np.float32
        assert abs(len(clip.samples) - 8000) <= 1  # resampled to 16 kHz
    problems = "\n".join(result.problems)
    assert "bonjour" in problems and "not a keyword" in problems
    assert "broken.wav" in problems
    assert "notes.txt" in problems
    assert len(result.problems) == 3


def test_import_recordings_can_select_speakers(tmp_path):
    _wav(tmp_path / "alice" / "vol" / "1.wav")
    _wav(tmp_path / "bob" / "vol" / "1.wav")
    result = import_recordings(tmp_path, speakers=("bob",))
    assert [c.speaker for c in result.clips] == ["bob"]


def test_import_recordings_needs_a_folder(tmp_path):
    with pytest.raises(CorpusSourceError):
        import_recordings(tmp_path / "missing")


def test_speech_windows_are_one_second_with_speech():
    rng = np.random.default_rng(0)
    y = np.zeros(5 * CLIP_SAMPLES, np.float32)
    y[CLIP_SAMPLES : 2 * CLIP_SAMPLES] = 0.2  # only the second second is loud
    windows = speech_windows(y, rng=rng, max_windows=5)
    assert 1 <= len(windows) <= 2
    assert all(w.shape == (CLIP_SAMPLES,) and w.dtype == np.float32 for w in windows)
    short = speech_windows(np.full(4000, 0.2, np.float32), rng=rng, max_windows=3)
    assert len(short) == 1 and np.count_nonzero(short[0]) == 4000


def test_load_noise_splits_every_file_in_halves(fake_shared):
    noise = load_noise(fake_shared / "data" / "background_noise")
    assert sorted(noise) == ["hiss", "hum"]
    train, val = noise["hum"]
    assert len(train) == len(val) == 24000
    with pytest.raises(CorpusSourceError):
        load_noise(fake_shared / "nothing")


def test_speech_commands_files_and_labelled_set(fake_shared):
    root = fake_shared / "data" / "speech_commands_v002_test"
    files = speech_commands_files(root)
    assert ("bed", "0a1b2c3d") in {(w, s) for _, w, s in files}
    clips, labels, speakers = load_speech_commands(root)
    assert clips.shape == (7, CLIP_SAMPLES) and clips.dtype == np.float32
    assert sorted(set(labels)) == ["bed", "stop", "yes"]
    assert len(set(speakers)) == 3


@pytest.mark.skipif(not SHARED_COMMANDS.is_dir(), reason="shared Speech Commands data absent")
def test_real_speech_commands_have_many_speakers():
    files = speech_commands_files(SHARED_COMMANDS)
    assert len(files) > 3000
    assert len({speaker for _, _, speaker in files}) > 150


@pytest.mark.skipif(not ASTERISK_FR.is_dir(), reason="asterisk-core-sounds-fr-wav not installed")
def test_asterisk_prompts_are_listed_without_the_silence_folder():
    files = asterisk_files()
    assert len(files) > 500
    assert not any(p.parent.name == "silence" for p in files)

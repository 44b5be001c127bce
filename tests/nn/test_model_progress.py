"""The progress bar of Sequential.fit (urgence.nn.progress)."""

from __future__ import annotations

import io

from urgence.nn.progress import ProgressBar, format_logs


def test_live_bar_redraws_in_place_then_ends_the_line():
    stream = io.StringIO()
    bar = ProgressBar(4, prefix="epoch 1/2 ", stream=stream, width=8, live=True)
    bar.update(2, {"loss": 0.5})
    bar.close(4, {"loss": 0.25, "accuracy": 0.75})
    text = stream.getvalue()
    assert text.startswith("\repoch 1/2 2/4 [====....]")
    last = text.split("\r")[-1]
    assert last.startswith("epoch 1/2 4/4 [========]") and last.endswith("\n")
    assert "loss 0.2500 - accuracy 0.7500" in last


def test_without_a_terminal_only_the_final_line_is_written():
    stream = io.StringIO()
    bar = ProgressBar(None, stream=stream)  # a StringIO is not a terminal
    bar.update(1, {"loss": 1.0})
    assert stream.getvalue() == ""
    bar.close(3, {"loss": 1.0})
    assert stream.getvalue().startswith("3 batches") and stream.getvalue().count("\n") == 1


def test_format_logs():
    assert format_logs({"loss": 0.12345, "val_accuracy": 1}) == "loss 0.1235 - val_accuracy 1.0000"

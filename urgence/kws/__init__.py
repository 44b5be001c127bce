"""Keyword spotting: architectures, training, evaluation, streaming detector."""

"""The neural-network engine, in NumPy.

Public API: :class:`Sequential`, :func:`load_model`, :class:`ModelFileError`, and the modules
``layers``, ``losses``, ``optimizers``, ``callbacks``, ``schedules``.
"""

from urgence.nn import callbacks, layers, losses, optimizers, schedules
from urgence.nn.model import Sequential
from urgence.nn.serialization import ModelFileError, load_model

__all__ = [
    "ModelFileError",
    "Sequential",
    "callbacks",
    "layers",
    "load_model",
    "losses",
    "optimizers",
    "schedules",
]

"""urgence: offline speech triage for French emergency calls.

Stages of the flow, one sub-package each (data moves one way):
``audio`` (decode, features, augmentation) -> ``kws`` (keyword models, streaming detector)
-> ``triage`` (route to 15 / 17 / 18) -> ``app`` (CLI, web console, call log).
``nn`` is the NumPy neural-network engine that trains every model; ``corpus`` builds the
training data; ``demos`` reproduces the seed project's experiments.
"""

__version__ = "0.1.0"

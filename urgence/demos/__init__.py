"""The seed project's experiments, reproduced with urgence.nn."""

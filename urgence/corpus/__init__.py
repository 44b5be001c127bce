"""Training data: vocabulary, speech synthesis, user recordings, splits, feature cache."""

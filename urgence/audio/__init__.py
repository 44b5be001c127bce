"""Audio pipeline: decoding (io), features (log-mel), augmentation."""

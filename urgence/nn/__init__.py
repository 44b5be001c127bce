"""The neural-network engine, in NumPy."""

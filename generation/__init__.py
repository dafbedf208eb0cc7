"""Decoding on any Hugging Face causal LM: the settings, completing prefixes with the key/value cache, and
keeping the best of N."""

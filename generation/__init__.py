"""Decoding on any Hugging Face causal LM: the settings, the key/value cache, and keeping the best of N."""

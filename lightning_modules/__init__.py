"""The LightningModules (PixelLM, PokemonClassifier) and the model parts they are built from."""

from lightning_modules.classifier import PokemonClassifier
from lightning_modules.pixel_lm import PixelLM

__all__ = ["PixelLM", "PokemonClassifier"]

from lightning_modules.classifier import PokemonClassifier
from lightning_modules.decoding import Decoding
from lightning_modules.pixel_lm import PixelLM

__all__ = ["Decoding", "PixelLM", "PokemonClassifier"]

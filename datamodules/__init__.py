from datamodules.pixel_files import PixelFormatError
from datamodules.pokemon import PokemonDataModule

__all__ = ["PixelFormatError", "PokemonDataModule"]

"""The data: files and their formats (``pixel_files``), the LightningDataModule (``pokemon``), the
submission format (``submission``) and rendering (``render``).

``PokemonDataModule`` is imported on first use (PEP 562), so the parts that need no Lightning (the
submission checker, the file readers) start without importing it.
"""

from datamodules.pixel_files import PixelFormatError

__all__ = ["PixelFormatError", "PokemonDataModule"]


def __getattr__(name: str):
    if name == "PokemonDataModule":
        from datamodules.pokemon import PokemonDataModule

        return PokemonDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

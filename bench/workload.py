"""What every speed measurement runs on: the config, its PixelLM with the same weights in every worker, the data."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "pokemon"  # the shipped course split (read_images finds the .gz)


def load_config(path: str) -> dict:
    import yaml

    return yaml.safe_load(Path(path).read_text())


def build_model(config: dict, ckpt: str | None):
    """The config's PixelLM with seed-0 weights (or a checkpoint's): the same model in every worker."""
    import torch

    from checkpointing import load_pixel_lm
    from lightning_modules import PixelLM

    if ckpt:
        return load_pixel_lm(ckpt)  # weights-only: a checkpoint from elsewhere cannot run code here
    torch.manual_seed(0)
    args = config["model"]["init_args"]
    return PixelLM(model_type=args["model_type"], model_config=args.get("model_config"))

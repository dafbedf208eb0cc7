"""Which file ``--config`` reads: ``--config llama``, ``--config llama.yaml`` and ``--config configs/llama.yaml``
are the same file."""

from pathlib import Path

CONFIGS = Path(__file__).resolve().parent.parent / "configs"  # where a bare --config name is looked up


def find_config(name: str) -> str:
    """``name`` if it is a file, else ``configs/<name>`` (``--config llama.yaml``, ``--config llama``)."""
    if Path(name).is_file():
        return name
    for candidate in (CONFIGS / name, CONFIGS / f"{name}.yaml"):
        if candidate.is_file():
            return str(candidate)
    return name  # jsonargparse then says the file does not exist


def with_config_files(args: list[str]) -> list[str]:
    """``args`` with each ``--config NAME`` that is no file replaced by the shipped ``configs/NAME``."""
    out = list(args)
    for index, arg in enumerate(out):
        if arg in ("--config", "-c") and index + 1 < len(out):
            out[index + 1] = find_config(out[index + 1])
        elif arg.startswith("--config="):
            out[index] = "--config=" + find_config(arg.split("=", 1)[1])
    return out

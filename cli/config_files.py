"""Which files ``--config`` reads: bare names in the project's ``configs/``, and the files a config builds on.

``--config llama``, ``--config llama.yaml`` and ``--config configs/llama.yaml`` are the same file. A bare
name (no folder in it) is only ever looked up in the project's ``configs/``, never in the working folder,
where a stray ``classifier.yaml`` would otherwise replace the shipped one (and a YAML can name any
class to build); a path (``./my.yaml``, ``runs/x/config.yaml``, ``/abs/my.yaml``) is that file.

A config builds on others with jsonargparse's own ``config`` key: ``config: base.yaml`` at the top of
``llama.yaml`` reads ``configs/base.yaml`` first, and ``llama.yaml``'s values replace or extend its
values. It is expanded here, into ``--config configs/base.yaml --config <llama.yaml's other keys>``,
because jsonargparse applies a ``config`` key inside a file shallowly: the nested keys after it
(``trainer:``, ``model:``) would replace the base's whole sections instead of single values. Given
one after the other on the command line, jsonargparse merges configs key by key, subclass
``init_args`` included; lists are replaced, or extended by a ``key+:`` entry (``callbacks+:``).
"""

from pathlib import Path

import yaml
from jsonargparse import get_loader

from cli.errors import ConfigError

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
INCLUDE = "config"  # jsonargparse's key for "read this config file first"


def find_config(name: str, folder: Path | None = None) -> Path:
    """The file that ``--config name`` (or ``config: name`` in a file in ``folder``) means.

    Raises:
        FileNotFoundError: A bare name that is not in ``configs/``, or a path to no file.
    """
    if "/" in name or "\\" in name:  # a path: relative to the including file, or to the working folder
        path = Path(name).expanduser()
        path = path if path.is_absolute() or folder is None else folder / path
        if not path.is_file():
            raise FileNotFoundError(f"--config {name}: no such file")
        return path
    for candidate in (CONFIGS / name, CONFIGS / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    shipped = ", ".join(sorted(path.stem for path in CONFIGS.glob("*.yaml")))
    raise FileNotFoundError(
        f"--config {name}: no such config in {CONFIGS} ({shipped}); a file of your own needs a path, e.g. ./{name}"
    )


def is_inline(value: str) -> bool:
    """Whether a ``--config`` value is YAML text (``--config '{trainer: {max_epochs: 3}}'``), not a file name."""
    return any(mark in value for mark in (":", "{", "\n")) and not Path(value).is_file()


def config_layers(path: Path, seen: tuple[Path, ...] = ()) -> list[str]:
    """``--config`` values that read ``path``: the files it builds on first (recursively), then its own keys.

    A file without a ``config`` key is given as its path; one with it as its other keys, in YAML.
    """
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: builds on itself ({' -> '.join(str(p) for p in (*seen, path))})")
    try:
        content = get_loader("yaml")(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: not a readable YAML file ({type(error).__name__}: {error})") from None
    if not isinstance(content, dict) or INCLUDE not in content:
        return [str(path)]  # jsonargparse reads it itself, and reports its errors with its name
    includes = content.pop(INCLUDE)
    includes = includes if isinstance(includes, list) else [includes]
    if not all(isinstance(name, str) for name in includes):
        raise ConfigError(f"{path}: {INCLUDE}: expected a file name or a list of them, got {includes!r}")
    layers = []
    for name in includes:
        try:
            layers += config_layers(find_config(name, path.parent), (*seen, path))
        except FileNotFoundError as error:
            raise FileNotFoundError(f"{path}: {error}") from None
    return [*layers, yaml.safe_dump(content, sort_keys=False, allow_unicode=True)]


def with_config_files(args: list[str]) -> list[str]:
    """``args`` with each ``--config NAME`` replaced by the ``--config`` values of its file and of the
    files it builds on."""
    out: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in ("--config", "-c") and index + 1 < len(args):
            value, index = args[index + 1], index + 2
        elif arg.startswith("--config="):
            value, index = arg.split("=", 1)[1], index + 1
        else:
            out.append(arg)
            index += 1
            continue
        values = [value] if is_inline(value) else config_layers(find_config(value))
        for layer in values:
            out += ["--config", layer]
    return out

"""YAML that reads back as it was written: a run's ``config.yaml`` and ``--print_config``.

jsonargparse (4.53) reads YAML with YAML 1.2 floats, where ``641818e8`` is the number 6.4e13, but
writes it with PyYAML's YAML 1.1 rules, where that string needs no quotes. A resumed run's
``config.yaml`` holds its W&B run id, and 1 in 70 of the ids (8 hex digits) look like that: the
config then failed ``predict.py --config <run>/config.yaml`` with "key id: expected a str" (the
clean-clone CI run of 2026-12-04). This dumper quotes every string that jsonargparse's loader would
read as something else; all other output is jsonargparse's own.
"""

from typing import Any

import yaml
from jsonargparse import get_loader, set_dumper


class _RoundTripDumper(yaml.SafeDumper):
    def represent_str(self, data: str) -> yaml.ScalarNode:
        node = super().represent_str(data)
        if node.style is None and not _reads_back(data):
            node.style = "'"  # the emitter falls back to double quotes where single ones cannot hold the text
        return node


_RoundTripDumper.add_representer(str, _RoundTripDumper.represent_str)


def _reads_back(text: str) -> bool:
    try:
        return get_loader("yaml")(text) == text
    except Exception:  # noqa: BLE001 (text the loader cannot read at all: quoted, then it reads back)
        return False


def round_trip_dump(data: Any) -> str:
    """``data`` as jsonargparse's ``yaml`` dumper writes it, strings quoted where its loader needs it."""
    return yaml.dump(data, Dumper=_RoundTripDumper, default_flow_style=False, allow_unicode=True, sort_keys=False)


def install() -> None:
    """Makes :func:`round_trip_dump` jsonargparse's ``yaml`` dumper (what ``parser.dump`` uses)."""
    set_dumper("yaml", round_trip_dump)

"""Reads what W&B wrote to an offline run's ``.wandb`` file, so tests can check the logged values.

The file is a LevelDB-style log of protobuf ``Record`` messages (W&B's own reader moved out of
the Python package, so a test needs this small one): a 7-byte header, then 32 KiB blocks of
records, each with a 7-byte header (checksum, length, type) and possibly split across blocks.
"""

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path):
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    position, pending = 7, b""
    while position + 7 <= len(data):
        if BLOCK - position % BLOCK < 7:  # too little room left in the block for a header: padding
            position += BLOCK - position % BLOCK
            continue
        _checksum, length, kind = struct.unpack("<IHB", data[position : position + 7])
        chunk = data[position + 7 : position + 7 + length]
        position += 7 + length
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def history(run_dir: Path) -> list[dict]:
    """Every logged row of the single offline W&B run under ``run_dir/wandb``."""
    (path,) = Path(run_dir).glob("wandb/offline-run-*/run-*.wandb")
    rows = []
    for record in records(path):
        if record.WhichOneof("record_type") == "history":
            rows.append(
                {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            )
    return rows


def config(run_dir: Path) -> dict:
    """The run's config (hyperparameters) as W&B recorded it."""
    (path,) = Path(run_dir).glob("wandb/offline-run-*/run-*.wandb")
    values = {}
    for record in records(path):
        if record.WhichOneof("record_type") == "config":
            values.update({item.key: json.loads(item.value_json) for item in record.config.update})
    return values

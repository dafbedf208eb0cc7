"""Shared test set-up: the real entry points, run as subprocesses on tiny configs and data."""

import atexit
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_DATA = ROOT / "data" / "pokemon"  # the course's split, gzipped, as the project ships it
SHARED_DATA = ROOT.parent / "shared" / "data" / "pokemon"  # the course's split beside the checkout, when there
DATA_FILES = ("train.txt", "dev.txt", "test.txt", "colormap.txt")
TINY = ROOT / "tests" / "configs" / "tiny.yaml"


def _unpacked_shipped_data() -> Path:
    """A plain-text copy of the shipped data, for tests that read or edit the files as text."""
    folder = Path(tempfile.mkdtemp(prefix="pokemon-data-"))
    atexit.register(shutil.rmtree, folder, True)
    for name in DATA_FILES:
        (folder / name).write_bytes(gzip.decompress((SHIPPED_DATA / f"{name}.gz").read_bytes()))
    return folder


DATA_DIR = _unpacked_shipped_data()


def run_script(
    script: str,
    *args: str,
    wandb_mode: str | None = "disabled",
    check: bool = True,
    timeout: float = 600,
    env=None,
    cwd: Path | None = None,
):
    """Runs ``python <script> args`` from the repository root, as a user would; returns the CompletedProcess.

    ``wandb_mode=None`` leaves ``WANDB_MODE`` unset, as for a user who never set it; ``env`` adds variables;
    ``cwd`` runs it from another folder (``python /path/to/predict.py``), where default outputs land.
    """
    # One thread: tiny models gain nothing from more, and a busy machine makes extra threads wait on each other.
    env = {"OMP_NUM_THREADS": "1", **os.environ, "WANDB_MODE": wandb_mode, "PYTHONUNBUFFERED": "1", **(env or {})}
    for name in ("POKEMON_RUN_DIR", *(["WANDB_MODE"] if wandb_mode is None else [])):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, script if cwd is None else str(ROOT / script), *args], cwd=cwd or ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{script} {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="session")
def small_data(tmp_path_factory) -> Path:
    """A copy of the real data cut to 48 train, 16 dev and 16 test images, for fast runs."""
    folder = tmp_path_factory.mktemp("data")
    for name, keep in (("train.txt", 48), ("dev.txt", 16), ("test.txt", 16), ("colormap.txt", None)):
        lines = (DATA_DIR / name).read_text().splitlines()
        (folder / name).write_text("\n".join(lines[:keep]) + "\n")
    return folder


@pytest.fixture(scope="session")
def trained(tmp_path_factory, small_data) -> Path:
    """One tiny training run (3 steps, EMA on, as the shipped configs) shared by every test that only
    reads it: predicting, exporting, evaluating. Returns its runs folder (``version_0`` inside)."""
    runs = tmp_path_factory.mktemp("trained") / "runs"
    run_script(
        "train.py", "--config", str(TINY), "--trainer.default_root_dir", str(runs),
        "--data.data_dir", str(small_data), "--trainer.max_steps=3",
    )  # fmt: skip
    return runs


@pytest.fixture(scope="session")
def lm_ckpt(trained) -> Path:
    return trained / "version_0" / "checkpoints" / "best.ckpt"


@pytest.fixture(scope="session")
def classifier_ckpt(tmp_path_factory, small_data) -> Path:
    """A briefly trained classifier checkpoint (its numbers do not matter, its format does)."""
    root = tmp_path_factory.mktemp("judge") / "runs"
    run_script(
        "train.py", "--config", str(ROOT / "configs/classifier.yaml"),
        "--trainer.default_root_dir", str(root), "--data.data_dir", str(small_data),
        "--trainer.max_epochs=-1", "--trainer.max_steps=4", "--trainer.max_time=null", "--trainer.logger=false",
    )  # fmt: skip
    return root / "version_0" / "checkpoints" / "last.ckpt"


@pytest.fixture
def train_tiny(tmp_path, small_data):
    """Trains the tiny config into ``tmp_path/runs``; extra CLI arguments override it."""

    def train(*args: str, config: Path = TINY, **kwargs):
        return run_script(
            "train.py",
            "--config", str(config),
            "--trainer.default_root_dir", str(tmp_path / "runs"),
            "--data.data_dir", str(small_data),
            *args,
            **kwargs,
        )  # fmt: skip

    return train


@pytest.fixture
def tmpfs(tmp_path):
    """Mounts small RAM file systems under ``tmp_path``: ``tmpfs("disk", size="2m", read_only=False, files=None)``.

    Tests of a full or read-only disk need one (as root, ``chmod`` blocks no write); they are
    skipped where mounting is not permitted.
    """
    mounted = []

    def mount(name: str, size: str = "2m", read_only: bool = False, files: dict[str, bytes] | None = None) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
        mounted.append(folder)
        for file, data in (files or {}).items():  # written before a read-only remount
            (folder / file).write_bytes(data)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        return folder

    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)

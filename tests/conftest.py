"""Shared test set-up: the data, the tiny runs every test reads, and running the entry points.

The entry points run inside the test process (``entry_points.run``); the runs that many tests only
read (a tiny trained model, a classifier, one prediction) are made once per session, and once for
all xdist workers together.
"""

import atexit
import gzip
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

# One thread, set before torch is imported: tiny models gain nothing from more, a busy machine makes extra
# threads wait on each other, and bit-exact comparisons between runs (test_resume.py) need one thread count.
os.environ["OMP_NUM_THREADS"] = "1"

import pytest
import torch
from filelock import FileLock

import inception_cache
from entry_points import ROOT, Result, run

torch.set_num_threads(1)  # in case torch was imported before this file

SHIPPED_DATA = ROOT / "data" / "pokemon"  # the course's split, gzipped, as the project ships it
DATA_FILES = ("train.txt", "dev.txt", "test.txt", "colormap.txt")
TINY = ROOT / "tests" / "configs" / "tiny.yaml"
CLASSIFIER = ROOT / "configs" / "classifier.yaml"


def _unpacked_shipped_data() -> Path:
    """A plain-text copy of the shipped data, for tests that read or edit the files as text."""
    folder = Path(tempfile.mkdtemp(prefix="pokemon-data-"))
    atexit.register(shutil.rmtree, folder, True)
    for name in DATA_FILES:
        (folder / name).write_bytes(gzip.decompress((SHIPPED_DATA / f"{name}.gz").read_bytes()))
    return folder


DATA_DIR = _unpacked_shipped_data()


def tiny_args(runs: Path, data: Path, config: Path = TINY) -> tuple[str, ...]:
    """``--config CONFIG`` (the tiny one) with its runs folder ``runs`` and its data ``data``: any entry point's."""
    return ("--config", str(config), "--trainer.default_root_dir", str(runs), "--data.data_dir", str(data))


def train(runs: Path, data: Path, *args: str, config: Path = TINY, **kwargs) -> Result:
    """``train.py`` with :func:`tiny_args`; ``args`` override."""
    return run("train.py", *tiny_args(runs, data, config), *args, **kwargs)


def predict(runs: Path, data: Path, output: Path, *args: str, **kwargs) -> Result:
    """``predict.py`` with the tiny config and the newest run under ``runs``, writing ``output``."""
    command = ("--config", str(TINY), "--trainer.default_root_dir", str(runs), "--data.data_dir", str(data))
    return run("predict.py", *command, "--output", str(output), *args, **kwargs)


def built_once(tmp_path_factory, worker_id: str, name: str, build: Callable[[Path], None]) -> Path:
    """A folder that ``build`` fills once per test session, shared by the xdist workers (under a file lock)."""
    if worker_id == "master":  # no xdist: this process is the session
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    folder = tmp_path_factory.getbasetemp().parent / name  # the session's folder, above each worker's
    with FileLock(f"{folder}.lock"):
        if not (folder / ".built").is_file():
            shutil.rmtree(folder, ignore_errors=True)  # what a worker that failed half-way left
            folder.mkdir()
            build(folder)
            (folder / ".built").touch()
    return folder


@pytest.fixture(scope="session")
def worker_id(request) -> str:
    """xdist's worker name (gw0, gw1, ...), or "master" without xdist (xdist's own fixture, when it is there)."""
    return getattr(request.config, "workerinput", {}).get("workerid", "master")


@pytest.fixture(scope="session")
def small_data(tmp_path_factory, worker_id) -> Path:
    """A copy of the real data cut to 48 train, 16 dev and 16 test images, for fast runs."""

    def build(folder: Path) -> None:
        for name, keep in (("train.txt", 48), ("dev.txt", 16), ("test.txt", 16), ("colormap.txt", None)):
            lines = (DATA_DIR / name).read_text().splitlines()
            (folder / name).write_text("\n".join(lines[:keep]) + "\n")

    return built_once(tmp_path_factory, worker_id, "small_data", build)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, worker_id, small_data) -> Path:
    """One tiny training run (3 steps, EMA on as in the shipped configs, W&B offline) shared by every test
    that only reads it: predicting, exporting, evaluating, W&B's records. Returns its runs folder
    (``version_0`` inside)."""
    folder = built_once(
        tmp_path_factory, worker_id, "trained",
        lambda folder: train(folder / "runs", small_data, "--trainer.max_steps=3", wandb_mode="offline"),
    )  # fmt: skip
    return folder / "runs"


@pytest.fixture(scope="session")
def lm_ckpt(trained) -> Path:
    return trained / "version_0" / "checkpoints" / "best.ckpt"


@pytest.fixture(scope="session")
def classifier_ckpt(tmp_path_factory, worker_id, small_data) -> Path:
    """A classifier trained for 120 steps on the 48-image copy of the data, through train.py and
    configs/classifier.yaml: good enough to prefer real images to blank or noisy bottoms.

    Only the easy negatives: with 48 real images, another image's bottom (splice) takes longer to learn.
    """
    args = (
        "--trainer.max_epochs=-1", "--trainer.max_steps=120", "--trainer.max_time=null", "--trainer.logger=false",
        "--trainer.check_val_every_n_epoch=20", "--data.batch_size=16",
        "--model.init_args.negative_types=[blank,noise,random,bands]", "--model.init_args.negative_weights=null",
    )  # fmt: skip

    def build(folder: Path) -> None:
        train(folder / "runs", small_data, *args, config=CLASSIFIER)

    folder = built_once(tmp_path_factory, worker_id, "classifier", build)
    return folder / "runs" / "version_0" / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="session")
def prediction(tmp_path_factory, worker_id, trained, small_data) -> Path:
    """The trained run's greedy submission for the small data's 16 test prefixes (and its PNG beside it)."""

    def build(folder: Path) -> None:
        result = predict(trained, small_data, folder / "submission.txt", "--model.init_args.decoding.do_sample=false")
        (folder / "stdout.txt").write_text(result.stdout)

    return built_once(tmp_path_factory, worker_id, "prediction", build) / "submission.txt"


@pytest.fixture
def train_tiny(tmp_path, small_data):
    """Trains the tiny config into ``tmp_path/runs`` on the small data; extra arguments override it."""

    def train_here(*args: str, config: Path = TINY, **kwargs) -> Result:
        return train(tmp_path / "runs", small_data, *args, config=config, **kwargs)

    return train_here


@pytest.fixture(scope="session", autouse=True)
def fid_inputs_once():
    """Inception features of each distinct image, and each distinct FID, computed once per session (per
    xdist worker): see inception_cache."""
    undo = inception_cache.install()
    yield
    undo()


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
        command = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]
        done = subprocess.run(command, capture_output=True, text=True)
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


@pytest.fixture(autouse=True)
def no_stale_wandb_service():
    """Each test starts without a W&B service left by an earlier test's in-process run: W&B keeps the
    service's socket in os.environ, and a later run in this process, or a process it starts, would try to
    connect to a service that is gone."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None:
        wandb.teardown()
    os.environ.pop("WANDB_SERVICE", None)
    yield

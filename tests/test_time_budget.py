"""A time budget (``trainer.max_time`` with callbacks.TimeBudget) turned into a fixed step count: the run ends
within it, says what it ran, and the same step count and seed repeat it without timing anything; and
bench/budget.py, which trains a config to each budget and scores it."""

import json
import os
import time
from pathlib import Path

import pytest
import torch
import yaml

import entry_points
import train
from callbacks import time_budget
from callbacks.time_budget import max_time_string
from callbacks.validation_cost import validation_count
from checkpointing.run_folders import RUN_DIR_ENV
from cli.errors import reported_errors
from conftest import TINY

PER_EPOCH = 6  # small_data's 48 training images in batches of 8


def tiny_config(tmp_path: Path, budget: dict | None, reranker: list[str] | None = None, logger: bool = False) -> Path:
    """tests/configs/tiny.yaml with a TimeBudget (``budget``: its init_args; None: none), no step limit, warm-up
    long enough to time 5 steps in, and optionally a reranker trained with ``reranker`` arguments."""
    config = yaml.safe_load(TINY.read_text())
    config["trainer"]["max_steps"] = -1
    if not logger:  # in-process runs leave W&B alone; the learning-rate monitor needs a logger
        config["trainer"]["logger"] = False
        config["trainer"]["callbacks"] = [
            c for c in config["trainer"]["callbacks"] if "LearningRate" not in c["class_path"]
        ]
    config["model"]["init_args"]["warmup_steps"] = 5
    # last.ckpt after every step: the tests read a run's final state from it, and Lightning writes it only
    # with another checkpoint (save_last), so a final step that is neither the best nor an even one left none.
    refreshed = [c for c in config["trainer"]["callbacks"] if c.get("init_args", {}).get("every_n_train_steps")]
    refreshed[0]["init_args"]["every_n_train_steps"] = 1
    if budget is not None:
        config["trainer"]["callbacks"].append({"class_path": "callbacks.TimeBudget", "init_args": budget})
    if reranker is not None:
        reranker_args = {"config": "classifier.yaml", "args": reranker}
        config["trainer"]["callbacks"].append({"class_path": "callbacks.TrainReranker", "init_args": reranker_args})
    path = tmp_path / "tiny_budget.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def train_in_process(tmp_path, small_data, monkeypatch):
    """Runs ``train.main`` here, into ``tmp_path/runs``; the budget's clock starts at the call, as a new process's
    would, or ``started_ago`` seconds before it."""

    def run(config: Path, *args: str, started_ago: float = 0.0) -> None:
        monkeypatch.delenv(RUN_DIR_ENV, raising=False)  # the CLI hands a run folder on through it
        torch.set_num_threads(1)  # as the bench's 1-thread runs: a busy machine makes extra threads wait on each other
        started = time.monotonic() - started_ago
        monkeypatch.setattr(time_budget, "process_seconds", lambda: time.monotonic() - started)
        root = ("--trainer.default_root_dir", str(tmp_path / "runs"))
        train.main(["--config", str(config), *root, "--data.data_dir", str(small_data), *args])

    threads = torch.get_num_threads()
    yield run
    torch.set_num_threads(threads)


def last_checkpoint(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)


@pytest.mark.slow  # two processes (model and reranker) for a whole budget
def test_budget_run_ends_within_budget_reranker_included(tmp_path, small_data):
    # Start-up takes up to 25 s a process on a busy 2-core machine, and ending one and starting the next a few
    # more: a budget that leaves room for both, and a wide margin.
    budget = 90
    config = tiny_config(
        tmp_path,
        {"calibration_steps": 5, "reranker_share": 0.3, "margin": 0.2, "validations": 4, "ema_share": 0.1},
        reranker=["--trainer.logger=false"],
    )
    entry_points.run(
        "train.py", "--config", str(config), "--trainer.default_root_dir", str(tmp_path / "runs"),
        "--data.data_dir", str(small_data), f"--trainer.max_time={max_time_string(budget)}",
        fresh_process=True,  # the budget is spent from the process's start (/proc), imports included
    )  # fmt: skip
    # No wall-clock assertion (timings are the bench's job: bench/budget.py); the record shows the plan.

    run = tmp_path / "runs" / "version_0"
    record = yaml.safe_load((run / "time_budget.yaml").read_text())
    checkpoint = last_checkpoint(run)
    assert record["steps_run"] == record["max_steps"] == checkpoint["global_step"] > record["calibration_steps"]
    assert record["stopped_by"] == "max_steps"
    assert yaml.safe_load((run / "config.yaml").read_text())["trainer"]["max_steps"] == record["max_steps"]
    assert record["budget_s"] == budget and record["seconds_per_step"] > 0 and record["validation_s"] > 0
    # The cosine ran to its end: the last learning rate is min_lr_ratio (0.1) of the peak (3e-3).
    assert checkpoint["lr_schedulers"][0]["_last_lr"] == [pytest.approx(3e-4)]
    # The reranker got its share of the budget, fitted by a TimeBudget of its own, and finished.
    assert record["reranker_max_time"] == max_time_string(0.3 * budget)
    reranker = run / "reranker" / "version_0"
    assert (reranker / "checkpoints" / "best.ckpt").is_file()
    assert yaml.safe_load((reranker / "time_budget.yaml").read_text())["budget_s"] == 0.3 * budget


@pytest.mark.slow  # two runs of a 40-second budget
def test_same_step_count_and_seed_give_the_same_weights(tmp_path, train_in_process):
    # A wide margin: a busy machine slowing down after the timing would have the time cap end the run early.
    config = tiny_config(tmp_path, {"calibration_steps": 5, "validations": 3, "ema_share": 0.1, "margin": 0.3})
    train_in_process(config, "--trainer.max_time=00:00:00:40")
    first = tmp_path / "runs" / "version_0"
    timed = yaml.safe_load((first / "time_budget.yaml").read_text())
    steps = timed["max_steps"]
    assert timed["steps_run"] == steps > timed["calibration_steps"]  # the budget, not the calibration, set the length

    train_in_process(config, f"--trainer.max_steps={steps}")  # the budget is still in the config: max_steps wins
    second = tmp_path / "runs" / "version_1"
    again = yaml.safe_load((second / "time_budget.yaml").read_text())
    assert "seconds_per_step" not in again  # nothing was timed
    for key in ("max_steps", "steps_run", "calibration_steps", "check_val_every_n_epoch", "ema_decay"):
        assert again[key] == timed[key], key
    assert timed["ema_decay"] == pytest.approx(1 - 1 / (0.1 * steps))
    assert timed["check_val_every_n_epoch"] == max(1, round(steps / PER_EPOCH / 3))
    a, b = last_checkpoint(first)["state_dict"], last_checkpoint(second)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)
    # The last step validated (and so chose best.ckpt) whatever the validation epochs.
    assert torch.load(first / "checkpoints" / "best.ckpt", weights_only=False)["global_step"] <= steps


@pytest.mark.slow  # two runs of a 20-second budget
@pytest.mark.parametrize("schedule", ["steps", "elapsed"])
def test_a_machine_slower_after_the_timing_anneals_only_on_the_elapsed_schedule(
    tmp_path, train_in_process, monkeypatch, schedule
):
    from lightning_modules import PixelLM

    step = PixelLM.training_step

    def slower(self, *args, **kwargs):  # from step 8 on, after the timed steps, each step takes 0.1 s longer
        if self.global_step >= 8:
            time.sleep(0.1)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(PixelLM, "training_step", slower)
    config = tiny_config(tmp_path, {"calibration_steps": 5, "margin": 0.1, "schedule": schedule})
    train_in_process(config, "--trainer.max_time=00:00:00:20")
    run = tmp_path / "runs" / "version_0"
    record = yaml.safe_load((run / "time_budget.yaml").read_text())
    last_lr = last_checkpoint(run)["lr_schedulers"][0]["_last_lr"][0]
    saved_steps = yaml.safe_load((run / "config.yaml").read_text())["trainer"]["max_steps"]
    if schedule == "steps":  # the count fixed at the timing no longer fits: the time cap cuts the schedule
        assert record["stopped_by"].startswith("the time cap") and last_lr > 3.1e-4
        assert saved_steps == record["max_steps"] > record["steps_run"]
    else:  # planned again after every step: fewer steps, and the cosine ends at min_lr_ratio (0.1) of 3e-3
        assert record["stopped_by"] == "max_steps" and last_lr == pytest.approx(3e-4, rel=0.01)  # last replan: 1 step
        assert record["steps_run"] == record["max_steps"] < record["first_planned_steps"]
        assert saved_steps == -1 and record["reproduce"].startswith("not by a step count")


def test_config_without_the_callback_trains_its_epochs(tmp_path, train_in_process):
    train_in_process(tiny_config(tmp_path, None), "--trainer.max_epochs=2", "--trainer.max_time=00:00:05:00")
    run = tmp_path / "runs" / "version_0"
    assert last_checkpoint(run)["global_step"] == 2 * PER_EPOCH
    assert not (run / "time_budget.yaml").exists()
    assert yaml.safe_load((run / "config.yaml").read_text())["trainer"]["max_steps"] == -1


def test_a_warm_up_too_short_to_time_is_one_line(tmp_path, train_in_process, capsys):
    config = tiny_config(tmp_path, {"calibration_steps": 5})
    with pytest.raises(SystemExit) as stopped, reported_errors():
        train_in_process(config, "--trainer.max_time=00:00:00:30", "--model.init_args.warmup_steps=2")
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: TimeBudget: only 2 steps can be timed") and "warmup_steps" in error


def test_an_unknown_schedule_is_one_line(tmp_path, train_in_process, capsys):
    config = tiny_config(tmp_path, {"schedule": "wall"})
    with pytest.raises(SystemExit) as stopped, reported_errors():
        train_in_process(config, "--trainer.max_time=00:00:00:30")
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [
        'error: key "trainer.callbacks": class_path \'callbacks.TimeBudget\': key "schedule": '
        "Expected a typing.Literal['steps', 'elapsed']. Got value: wall (--help lists the options)"
    ]


def test_validation_count_includes_the_last_step():
    assert validation_count(12, 6, 1) == 2  # epochs 1 and 2; the last step ends epoch 2
    assert validation_count(14, 6, 1) == 3  # and once more at step 14, mid-epoch
    assert validation_count(18, 6, 2) == 2  # epoch 2, then the last step (epoch 3 is no validation epoch)
    assert validation_count(24, 6, 2) == 2


def test_max_time_string():
    assert max_time_string(90.7) == "00:00:01:30"
    assert max_time_string(26 * 3600 + 61) == "01:02:01:01"


def test_a_budget_spent_before_the_timing_ends_stops_at_once_and_says_so(tmp_path, train_in_process):
    config = tiny_config(tmp_path, {"calibration_steps": 5})
    train_in_process(config, "--trainer.max_time=00:00:00:30", started_ago=60)  # a start-up longer than the budget
    run = tmp_path / "runs" / "version_0"
    record = yaml.safe_load((run / "time_budget.yaml").read_text())
    assert record["steps_run"] == last_checkpoint(run)["global_step"] == 1  # the time cap stopped the first step
    assert record["stopped_by"].startswith("the time cap") and record["max_steps"] is None
    assert record["reproduce"].startswith("none")


@pytest.mark.slow  # a training under a budget, then Inception features
def test_budget_bench_trains_each_budget_and_scores_it(tmp_path, small_data, classifier_ckpt):
    config = tiny_config(tmp_path, {"calibration_steps": 5, "margin": 0.3}, logger=True)
    report, out = tmp_path / "budget.json", tmp_path / "out"
    result = entry_points.run(
        "bench/budget.py", "--config", str(config), "--budgets", "0.5", "--threads", "1",
        "--judge", str(classifier_ckpt), "--decodings", "sampled", "--seeds", "0", "1",
        "--data_dir", str(small_data), "--out", str(out), "--json", str(report), "--schedules", "steps", "elapsed",
    )  # fmt: skip
    from bench.cpu import cpu_name

    assert f"CPU: {cpu_name()}, " in result.stdout
    *_, row, elapsed = json.loads(report.read_text())
    assert (row["run"], row["budget_min"], row["threads"], row["decoding"]) == (
        "tiny_budget_0.5min_1t",
        0.5,
        1,
        "sampled",
    )
    run = out / "tiny_budget_0.5min_1t" / "version_0"
    record = yaml.safe_load((run / "time_budget.yaml").read_text())
    assert row["steps_run"] == row["max_steps"] == record["max_steps"] and record["budget_s"] == 30
    assert row["checkpoint"] == str(run / "checkpoints" / "best.ckpt") and row["seeds"] == [0, 1]
    assert row["wall_s"] > 0 and row["within_budget"] == (row["wall_s"] <= 30) and 0 <= row["pdr"]["runs"] <= 1
    assert row["parallel"] is False  # trained alone, and the row says so
    assert next(line for line in result.stdout.splitlines() if line.startswith("| tiny_budget_0.5min_1t |"))
    # --schedules elapsed: the same config, its TimeBudget planning again after every step, in a run of its own
    assert (elapsed["run"], elapsed["schedule"], row["schedule"]) == (
        "tiny_budget_0.5min_1t_elapsed",
        "elapsed",
        "steps",
    )
    assert elapsed["first_planned_steps"] > 0 and row["first_planned_steps"] is None  # only a re-planned run has one
    changed = yaml.safe_load((out / elapsed["run"] / "config_elapsed.yaml").read_text())
    assert [c["init_args"]["schedule"] for c in changed["trainer"]["callbacks"] if "TimeBudget" in c["class_path"]] == [
        "elapsed"
    ]
    run = out / elapsed["run"] / "version_0"
    assert yaml.safe_load((run / "time_budget.yaml").read_text())["schedule"] == "elapsed"


def test_budget_bench_parallel_trains_one_thread_runs_side_by_side_on_cores_of_their_own(tmp_path, monkeypatch):
    """bench/budget.py --parallel: the 1-thread runs of several configs overlap in time, never on one core, and
    a 2-thread run waits for the whole machine."""
    import threading

    from bench import budget, budget_runs

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two cores")
    lock, busy, seen = threading.Lock(), set(), []

    def fake_train(args, config, minutes, threads, schedule, cores, parallel):
        with lock:
            assert not busy & set(cores), f"{config} was given cores {cores}, busy with {sorted(busy)}"
            busy.update(cores)
            seen.append((config, threads, tuple(cores), len(busy)))
        time.sleep(0.2)
        with lock:
            busy.difference_update(cores)
        return {"wall_s": 60.0 * minutes, "parallel": parallel}

    monkeypatch.setattr(budget_runs, "train", fake_train)
    args = budget.parse_args(["--config", "a", "b", "c", "--budgets", "1", "--threads", "1", "2", "--train_only"])
    args.parallel = True
    walls = budget_runs.train_all(args, [(c, 1.0, t, "steps") for c in ("a", "b", "c") for t in (1, 2)])
    expected = {(c, 1.0, t, "steps"): {"wall_s": 60.0, "parallel": t == 1} for c in ("a", "b", "c") for t in (1, 2)}
    assert walls == expected
    one_thread = [entry for entry in seen if entry[1] == 1]
    assert len({entry[2] for entry in one_thread}) == 2  # both cores used
    assert max(entry[3] for entry in one_thread) == 2  # two ran at once
    assert all(entry[3] == len(entry[2]) == 2 for entry in seen if entry[1] == 2)  # alone, on both cores


def test_budget_bench_asks_for_a_judge_unless_it_only_trains(capsys):
    from bench import budget

    with pytest.raises(SystemExit) as raised:
        budget.parse_args(["--budgets", "1", "--threads", "1"])  # --threads 1: on any machine
    assert raised.value.code == 2 and "--judge: at least one classifier checkpoint" in capsys.readouterr().err
    assert budget.parse_args(["--budgets", "1", "--threads", "1", "--train_only"]).config == ["quick"]

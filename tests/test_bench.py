"""bench/speed.py runs end to end: a table, the JSON, and the project's greedy completions equal to the course's."""

import json
import os

import pytest

from conftest import TINY, run_script


@pytest.mark.slow  # four fresh worker processes
def test_speed_bench_prints_table_and_json(tmp_path):
    report = tmp_path / "speed.json"
    args = ("--configs", str(TINY), "--quick", "--warmup", "1", "--steps", "2", "--threads", "1", "--device", "cpu")
    result = run_script("bench/speed.py", *args, "--json", str(report))
    rows = [line for line in result.stdout.splitlines() if line.startswith("| tiny |")]
    assert [row.split(" | ")[1] for row in rows] == ["training tokens/s", "generate 80, greedy (outputs identical: True)", "generate 80, sampled"]
    saved = json.loads(report.read_text())
    assert saved["device"].endswith(f", {os.cpu_count()} cores") and "Device: " + saved["device"] in result.stdout
    median = saved["results"][0]["median"]
    assert median["train_project"]["tokens"] == median["train_course"]["tokens"] == 2 * 8 * 399  # 2 steps of 8 images
    assert all(median[name]["greedy_s"] > 0 for name in ("generate_project", "generate_course"))

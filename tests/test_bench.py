"""The benches run end to end: bench/speed.py's tables and JSON (with the project's greedy completions equal to
the course's, and the model FLOP utilisation), bench/flops.py's count against a hand count, and
bench/time_to_quality.py on two tiny recipes."""

import json
import os

import pytest
import torch
import yaml
from transformers.pytorch_utils import Conv1D

from bench.flops import forward_flops_per_token, training_flops_per_token
from bench.recipes import Recipe
from bench.time_to_level import analyse
from conftest import TINY
from entry_points import ROOT, run
from lightning_modules import PixelLM
from tiny_models import tiny_model

TINY_LLAMA = {  # grouped-query attention and a gated MLP, as configs/llama.yaml, at the tiny config's size
    "hidden_size": 16, "intermediate_size": 40, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "attention_dropout": 0.1,
}  # fmt: skip


@pytest.mark.slow  # four fresh worker processes
def test_speed_bench_prints_table_and_json(tmp_path):
    report = tmp_path / "speed.json"
    args = ("--configs", str(TINY), "--quick", "--warmup", "1", "--steps", "2", "--threads", "1", "--device", "cpu")
    result = run("bench/speed.py", *args, "--json", str(report))
    speed, utilisation = result.stdout.split("Model FLOP utilisation")
    rows = [line for line in speed.splitlines() if line.startswith("| tiny |")]
    assert [row.split(" | ")[1] for row in rows] == [
        "training tokens/s",
        "generate 80, greedy (outputs identical: True)",
        "generate 80, sampled",
    ]
    saved = json.loads(report.read_text())
    assert saved["device"].endswith(f", {os.cpu_count()} cores") and "Device: " + saved["device"] in result.stdout
    median = saved["results"][0]["median"]
    assert median["train_project"]["tokens"] == median["train_course"]["tokens"] == 2 * 8 * 399  # 2 steps of 8 images
    assert all(median[name]["greedy_s"] > 0 for name in ("generate_project", "generate_course"))
    mfu = saved["results"][0]["mfu"]
    assert mfu["flops_per_token"] == 111072  # the hand count of test_training_flops_per_token_hand_count
    for key in ("achieved_gflops", "fp32_peak_gflops", "bf16_peak_gflops", "mfu_fp32", "mfu_bf16"):
        assert mfu[key] > 0, key
    assert mfu["tokens_per_s"] == median["train_project"]["tokens_per_s"]
    assert mfu["achieved_gflops"] == pytest.approx(mfu["tokens_per_s"] * 111072 / 1e9)
    assert mfu["mfu_fp32"] == pytest.approx(mfu["achieved_gflops"] / mfu["fp32_peak_gflops"])
    assert mfu["shapes"] == {"mlp": [8 * 399, 16, 64], "lm_head": [8 * 399, 16, 167]}
    peaks = median["matmul_peak"]
    for dtype in ("fp32", "bf16"):
        measured = [peaks[f"{dtype}_{shape}_gflops"] for shape in ("mlp", "lm_head", "square")]
        assert min(measured) > 0 and peaks[f"{dtype}_peak_gflops"] == max(measured)
        assert 256 <= peaks[f"{dtype}_square_size"] <= 2048
    row = next(line for line in utilisation.splitlines() if line.startswith("| tiny |")).strip("| ").split(" | ")
    assert row[0] == "tiny" and row[1] == "0.11" and row[6].endswith("%") and row[7].endswith("%")
    assert float(row[3]) > 0 and float(row[4]) > 0 and float(row[5]) > 0
    assert (
        "| config | MFLOPs/token (fwd+bwd) | tokens/s (project) | GFLOP/s achieved | fp32 matmul GFLOP/s peak"
        in utilisation
    )


def tiny_yaml_model(model_type: str = "gpt2", model_config: dict | None = None) -> PixelLM:
    """tests/configs/tiny.yaml's model (what the speed bench runs), or another ``model_config``, on full images."""
    config = model_config or yaml.safe_load(TINY.read_text())["model"]["init_args"]["model_config"]
    return tiny_model(model_type, config, seq_len=400, prefix_len=240)


def test_training_flops_per_token_hand_count():
    # tiny.yaml: GPT-2, 1 layer, width 16 (2 heads of 8), MLP 4 x 16 = 64, 167 colours, 399 tokens a step.
    weights = 4 * 16 * 16 + 2 * 16 * 64 + 16 * 167  # q, k, v, o; MLP in and out; lm head
    scores = 2 * 16  # q @ k^T and scores @ v: 2 * heads * head_dim multiply-adds per key, all 399 keys
    assert training_flops_per_token(tiny_yaml_model()) == 3 * 2 * (weights + scores * 399) == 111072
    assert forward_flops_per_token(tiny_yaml_model()) == 2 * (weights + scores * 399)
    # Llama: 2 of 4 heads for keys and values (head size 4), three MLP matrices (gate, up, down).
    weights = 2 * (16 * 16 * 2 + 16 * 8 * 2 + 3 * 16 * 40) + 16 * 167
    scores = 2 * 2 * 16
    assert training_flops_per_token(tiny_yaml_model("llama", TINY_LLAMA)) == 3 * 2 * (weights + scores * 399)


def test_flop_count_does_not_depend_on_the_attention_kernel():
    """Without attention dropout a CPU runs SDPA's fused kernel, which FlopCounterMode does not count, and
    chunked attention computes less of the masked scores: the count is the full context's all the same."""
    with_dropout = training_flops_per_token(tiny_yaml_model("llama", TINY_LLAMA))
    fused = tiny_yaml_model("llama", {**TINY_LLAMA, "attention_dropout": 0.0})
    torch.manual_seed(0)
    chunked = PixelLM(model_type="llama", model_config=TINY_LLAMA, attention_chunks=2)
    assert training_flops_per_token(fused) == training_flops_per_token(chunked) == with_dropout


@pytest.mark.parametrize("name", ["gpt2_sample", "gpt2", "llama", "mistral", "qwen2", "qwen3"])
def test_flop_count_covers_every_weight_matrix_of_shipped_configs(name):
    """Every weight matrix (heads, key/value heads, head size, MLP width) and the full attention, forward and backward."""
    args = yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text())["model"]["init_args"]
    model = PixelLM(model_type=args["model_type"], model_config=args["model_config"])
    config = model.model.config
    weights = sum(module.weight.numel() for module in model.modules() if isinstance(module, torch.nn.Linear | Conv1D))
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    scores = 2 * config.num_hidden_layers * config.num_attention_heads * head_dim
    assert training_flops_per_token(model) == 3 * 2 * (weights + scores * 399)


def test_time_to_quality_levels_and_ratios():
    def recipe(name, points, end):
        records = [
            {"elapsed_s": 60 * minutes, "epoch": 0, "step": 0, "val/bits_per_pixel": bits} for minutes, bits in points
        ]
        return Recipe(name, "c.yaml", [], records=[*records, {"elapsed_s": 60 * end, "event": "fit_end"}])

    old = recipe("old", [(1, 2.5), (2, 2.2), (4, 2.0)], end=5)
    new = recipe("new", [(1, 2.1), (2, 1.9)], end=2.5)
    report = analyse([old, new], None)
    assert report["levels"] == [2.2, 2.1, 2.04, 2.0]  # the reference's best, and 2, 5 and 10 % above it
    rows = {row["recipe"]: row for row in report["recipes"]}
    assert rows["old"]["minutes_to_level"] == {"2.2": 2, "2.1": 4, "2.04": 4, "2": 4}
    assert rows["new"]["minutes_to_level"] == {"2.2": 1, "2.1": 1, "2.04": 2, "2": 2}
    assert rows["new"]["ratio_to_reference"] == {"2.2": 0.5, "2.1": 0.25, "2.04": 0.5, "2": 0.5}
    assert rows["new"]["training_minutes_ratio"] == 0.5 and rows["new"]["best_bits_per_pixel"] == 1.9
    report = analyse([old, new], [1.95])
    assert report["recipes"][0]["minutes_to_level"] == {"1.95": None} and report["recipes"][0][
        "ratio_to_reference"
    ] == {"1.95": None}


def ttq_table(stdout: str) -> dict[str, list[str]]:
    rows = [line.strip("| ").split(" | ") for line in stdout.splitlines() if line.startswith("| ")]
    return {row[0]: row for row in rows[1:]}


@pytest.mark.slow  # two train.py processes
def test_time_to_quality_two_recipes_end_to_end(tmp_path, small_data):
    out = tmp_path / "ttq"
    recipes = ("--recipe", f"low={TINY}", "--recipe", f"high={TINY} --model.init_args.lr=1e-2")
    common = ("--", "--data.data_dir", str(small_data), "--trainer.max_steps=12")  # 2 epochs of 6 steps
    result = run("bench/time_to_quality.py", "--out", str(out), *recipes, "--levels", "7.3", "1.0", *common)
    rows = ttq_table(result.stdout)
    header = next(line for line in result.stdout.splitlines() if line.startswith("| recipe"))
    assert header == "| recipe | training min | best dev bits/pixel | min to <= 7.3 | min to <= 1 |"
    assert list(rows) == ["low", "high"]
    for name, row in rows.items():
        assert float(row[1].split()[0]) > 0 and 0 < float(row[2]) < 7.4 and row[4] == "not reached"
        # the run's CSVLogger's (tiny.yaml's), which holds the validations the bench timed
        assert list((out / name / "version_0").glob("**/metrics.csv")) and (out / f"{name}.log").is_file()
    assert rows["high"][1].endswith("x)") and not rows["low"][1].endswith("x)")
    saved = json.loads((out / "time_to_quality.json").read_text())
    assert saved["reference"] == "low" and saved["levels"] == [7.3, 1.0]
    for row in saved["recipes"]:
        assert [record["epoch"] for record in row["validations"]] == [0, 1]  # validation every epoch
        assert row["training_minutes"] >= row["validations"][-1]["elapsed_s"] / 60 > 0
        assert row["returncode"] == 0
    high = saved["recipes"][1]
    assert high["args"] == ["--model.init_args.lr=1e-2"]
    assert yaml.safe_load((out / "high" / "version_0" / "config.yaml").read_text())["model"]["init_args"]["lr"] == 1e-2


@pytest.mark.slow  # trains a classifier and a recipe
def test_time_to_quality_scores_best_checkpoints_with_a_judge(tmp_path, small_data, classifier_ckpt):
    out = tmp_path / "ttq"
    common = ("--", "--data.data_dir", str(small_data), "--trainer.max_steps=6")
    result = run(
        "bench/time_to_quality.py",
        "--out",
        str(out),
        "--recipe",
        f"only={TINY}",
        "--judge",
        str(classifier_ckpt),
        *common,
    )
    row = ttq_table(result.stdout)["only"]
    assert len(row) == 3 + 4 + 2  # the default levels, then FID and PDR
    quality = json.loads((out / "time_to_quality.json").read_text())["recipes"][0]["quality"]
    assert quality["checkpoint"] == str(out / "only" / "version_0" / "checkpoints" / "best.ckpt")
    assert quality["fid"] == pytest.approx(float(row[-2]), abs=0.06) and 0 <= quality["pdr"] <= 1


@pytest.mark.slow  # Inception features of 7 image sets
def test_quality_bench_seeds_judges_and_new_pokemon(lm_ckpt, classifier_ckpt, small_data, tmp_path):
    """bench/quality.py: a PDR column per judge, mean and [lowest, highest] over seeds, new Pokémon rows."""
    strict = tmp_path / "strict" / "version_0" / "checkpoints" / "best.ckpt"  # a second judge, named by its folder
    strict.parent.mkdir(parents=True)
    strict.write_bytes(classifier_ckpt.read_bytes())
    report = tmp_path / "quality.json"
    result = run(
        "bench/quality.py", "--runs", str(lm_ckpt), "--judge", str(classifier_ckpt), str(strict),
        "--seeds", "0", "1", "--decodings", "sampled", "new", "--data_dir", str(small_data), "--json", str(report),
        "--spread",
    )  # fmt: skip
    header = next(line for line in result.stdout.splitlines() if line.startswith("| run |"))
    assert "| classifier FID | FID seed vs seed | PDR (runs) | PDR (strict) |" in header
    rows = json.loads(report.read_text())
    assert [row["run"] for row in rows[:3]] == [
        "(80 real dev images)",
        "(nearest-neighbour copy)",
        "(16 real train images)",
    ]
    assert rows[0]["fid"] == 0 and set(rows[0]["pdr"]) == {"runs", "strict"}
    for row in rows:  # the same weights under two names judge every set alike
        assert row["pdr"]["runs"] == row["pdr"]["strict"] and 0 <= row["pdr"]["runs"] <= 1
    sampled, new = rows[3], rows[4]
    assert (sampled["decoding"], new["decoding"]) == ("sampled", "new") and sampled["seeds"] == [0, 1]
    fids = [seed["fid"] for seed in sampled["per_seed"]]
    assert sampled["fid"] == pytest.approx(sum(fids) / 2) and sampled["fid_range"] == [min(fids), max(fids)]
    assert fids[0] != fids[1]  # another seed, other samples
    pdrs = [seed["pdr"]["strict"] for seed in new["per_seed"]]
    assert new["pdr_range"]["strict"] == [min(pdrs), max(pdrs)]
    assert new["bits_per_pixel"] is None and new["recon_acc"] is None and new["fid"] > 0
    line = next(line for line in result.stdout.splitlines() if "| sampled |" in line)
    assert f"{sampled['fid']:.1f} [{min(fids):.1f}, {max(fids):.1f}]" in line
    # --spread: seed 0's completions against seed 1's (one pair, so no range); new Pokémon share no tops
    assert sampled["fid_spread"] > 0 and sampled["fid_spread_range"] is None and "fid_spread" not in new
    assert f"| {sampled['fid_spread']:.1f} |" in line


def test_quality_bench_consensus_decodings_carry_their_setting():
    """``best_of_consensus`` rows decode with ``decoding.consensus`` and say so; plain best-of rows do not."""
    from bench.quality import RERANKED, decoding_plan

    sampling = {"temperature": 1.0, "top_k": 50, "top_p": 0.95}
    plan = decoding_plan(["best_of", "best_of_consensus", "new_best_of_consensus"], 32, [0, 1], sampling, consensus=3)
    assert [label for label, _, _ in plan] == [
        "best-of-32",
        "best-of-32 (consensus 3)",
        "new, best-of-32 (consensus 3)",
    ]
    assert [[(d.best_of, d.consensus, d.seed) for d in per_seed] for _, _, per_seed in plan] == [
        [(32, 0, 0), (32, 0, 1)], [(32, 3, 0), (32, 3, 1)], [(32, 3, 0), (32, 3, 1)]
    ]  # fmt: skip
    assert {kind for _, kind, _ in plan} <= set(RERANKED)  # every one is kept by the reranker

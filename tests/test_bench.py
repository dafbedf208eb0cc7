"""The benches run end to end: bench/speed.py's tables and JSON (with the project's greedy completions equal to
the course's, and the model FLOP utilisation), bench/flops.py's count against a hand count and torch's
FlopCounterMode."""

import json
import os

import pytest
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from bench.flops import forward_flops_per_token, hf_model, is_matmul_weight, training_flops_per_token
from conftest import ROOT, TINY, run_script
from lightning_modules import PixelLM

TINY_LLAMA = {  # grouped-query attention and a gated MLP, as configs/llama.yaml, at the tiny config's size
    "hidden_size": 16, "intermediate_size": 40, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "attention_dropout": 0.1,
}  # fmt: skip


@pytest.mark.slow  # four fresh worker processes
def test_speed_bench_prints_table_and_json(tmp_path):
    report = tmp_path / "speed.json"
    args = ("--configs", str(TINY), "--quick", "--warmup", "1", "--steps", "2", "--threads", "1", "--device", "cpu")
    result = run_script("bench/speed.py", *args, "--json", str(report))
    speed, utilisation = result.stdout.split("Model FLOP utilisation")
    rows = [line for line in speed.splitlines() if line.startswith("| tiny |")]
    assert [row.split(" | ")[1] for row in rows] == ["training tokens/s", "generate 80, greedy (outputs identical: True)", "generate 80, sampled"]
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
    assert "| config | MFLOPs/token (fwd+bwd) | tokens/s (project) | GFLOP/s achieved | fp32 matmul GFLOP/s peak" in utilisation


def tiny_model(model_type: str = "gpt2", model_config: dict | None = None) -> PixelLM:
    args = yaml.safe_load(TINY.read_text())["model"]["init_args"]
    torch.manual_seed(0)
    return PixelLM(model_type=model_type, model_config=model_config or args["model_config"])


def test_training_flops_per_token_hand_count():
    # tiny.yaml: GPT-2, 1 layer, width 16 (2 heads of 8), MLP 4 x 16 = 64, 167 colours, 399 tokens a step.
    weights = 4 * 16 * 16 + 2 * 16 * 64 + 16 * 167  # q, k, v, o; MLP in and out; lm head
    scores = 2 * 16  # q @ k^T and scores @ v: 2 * heads * head_dim multiply-adds per key
    assert training_flops_per_token(tiny_model()) == 3 * 2 * (weights + scores * 399) == 111072
    causal_keys = sum(range(1, 400)) / 399  # position i attends to i keys: 200 on average
    assert causal_keys == 200
    assert training_flops_per_token(tiny_model(), context="causal") == 3 * 2 * (weights + scores * 200)
    # Llama: 2 of 4 heads for keys and values (head size 4), three MLP matrices (gate, up, down).
    weights = 2 * (16 * 16 * 2 + 16 * 8 * 2 + 3 * 16 * 40) + 16 * 167
    scores = 2 * 2 * 16
    llama = forward_flops_per_token(tiny_model("llama", TINY_LLAMA))
    assert llama["attention_projections"] == 2 * 2 * (16 * 16 * 2 + 16 * 8 * 2) and llama["mlp"] == 2 * 2 * 3 * 16 * 40
    assert training_flops_per_token(tiny_model("llama", TINY_LLAMA)) == 3 * 2 * (weights + scores * 399)


@pytest.mark.parametrize("model_type, model_config", [("gpt2", None), ("llama", TINY_LLAMA)])
def test_training_flops_match_flop_counter_mode(model_type, model_config):
    """torch counts one real training forward and backward the same, to the FLOP: its matmuls (mm, addmm)
    and the attention, which runs as bmm on a full masked score matrix on a CPU when attention dropout is on
    (as in every shipped config). Neither counts element-wise work; without attention dropout the CPU's
    fused attention kernel runs, which FlopCounterMode does not count, and on a GPU it counts the fused
    kernels' backward with its recomputed scores (3.5x the forward, not 3x)."""
    model = tiny_model(model_type, model_config)
    images = torch.randint(0, 167, (2, 400), generator=torch.Generator().manual_seed(0))
    counter = FlopCounterMode(display=False)
    with counter:
        model.token_losses(images, reduction="mean").backward()
    counted = counter.get_total_flops() / (2 * 399)
    assert counted == pytest.approx(training_flops_per_token(model), rel=0.02)


@pytest.mark.parametrize("name", ["gpt2_sample", "gpt2", "llama", "mistral", "qwen2", "qwen3"])
def test_flop_count_covers_every_weight_matrix_of_shipped_configs(name):
    """The count from the config's keys (heads, key/value heads, head size, MLP width) names every weight matrix."""
    args = yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text())["model"]["init_args"]
    model = PixelLM(model_type=args["model_type"], model_config=args["model_config"])
    parts = forward_flops_per_token(model)
    weights = sum(module.weight.numel() for module in hf_model(model).modules() if is_matmul_weight(module))
    assert parts["attention_projections"] + parts["mlp"] + parts["lm_head"] == 2 * weights

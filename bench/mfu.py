"""Model FLOP utilisation: the project's training FLOP/s against the matmul peaks measured in the same run."""

from pathlib import Path

from bench.matmul_peak import matmul_shapes
from bench.workload import build_model, load_config


def utilisation(config_path: str, median: dict) -> dict:
    """The project's training FLOP/s (median tokens/s x FLOPs per token) as a share of the median matmul peaks."""
    from bench.flops import forward_flops_per_token, training_flops_per_token

    config = load_config(config_path)
    model = build_model(config, None)
    flops = training_flops_per_token(model)
    achieved = median["train_project"]["tokens_per_s"] * flops / 1e9
    peaks = median["matmul_peak"]
    return {
        "flops_per_token": flops,  # forward + backward, full attention context
        "forward_flops_per_token": forward_flops_per_token(model),
        "tokens_per_s": median["train_project"]["tokens_per_s"],
        "achieved_gflops": achieved,
        "fp32_peak_gflops": peaks["fp32_peak_gflops"],
        "bf16_peak_gflops": peaks["bf16_peak_gflops"],
        "mfu_fp32": achieved / peaks["fp32_peak_gflops"],
        "mfu_bf16": achieved / peaks["bf16_peak_gflops"],
        "shapes": {name: list(shape) for name, shape in matmul_shapes(config).items()},
    }


def mfu_table(results: list[dict]) -> str:
    """Training FLOP/s of the project against the matmul peaks measured in the same run."""
    rows = [
        "Model FLOP utilisation: training FLOPs per token (forward + backward of every matmul, full attention "
        "context, counted by Lightning's measure_flops; bench/flops.py) x the project's tokens/s, against the best "
        "torch.matmul GFLOP/s of the config's MLP and lm-head products and a square reference, measured in the same "
        "run at the same threads.",
        "",
        "| config | MFLOPs/token (fwd+bwd) | tokens/s (project) | GFLOP/s achieved | fp32 matmul GFLOP/s peak "
        "| bf16 matmul GFLOP/s peak | MFU vs fp32 | MFU vs bf16 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for result in results:
        u, peaks, name = result["mfu"], result["median"]["matmul_peak"], Path(result["config"]).stem
        rows.append(
            f"| {name} | {u['flops_per_token'] / 1e6:.2f} | {u['tokens_per_s']:,.0f} | {u['achieved_gflops']:.1f} | "
            f"{u['fp32_peak_gflops']:.1f} | {u['bf16_peak_gflops']:.1f} | {u['mfu_fp32']:.1%} | {u['mfu_bf16']:.1%} |"
        )
        shapes = {shape: "x".join(map(str, mkn)) for shape, mkn in u["shapes"].items()}
        for dtype in ("fp32", "bf16"):
            size = int(peaks[f"{dtype}_square_size"])
            measured = ", ".join(
                f"{shape} {label} {peaks[f'{dtype}_{shape}_gflops']:.1f}"
                for shape, label in (*shapes.items(), ("square", f"{size}x{size}x{size}"))
            )
            notes.append(f"{name} {dtype} GFLOP/s (m x k x n): {measured}")
    return "\n".join([*rows, "", *notes])

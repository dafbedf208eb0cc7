"""The machine's ``torch.matmul`` peak, fp32 and bf16: the best GFLOP/s of the config's largest training
products (the MLP's and the lm head's, over a batch) and of a square reference."""

import time

from bench.device_clock import synchronize
from bench.workload import build_model, load_config


def matmul_shapes(config: dict) -> dict[str, tuple[int, int, int]]:
    """``(m, k, n)`` of the config's largest training products: the MLP's and the lm head's, over a batch."""
    model = build_model(config, None).model.config
    rows = config["data"].get("batch_size", 16) * 399
    # The MLP's inner width: intermediate_size, GPT-2's n_inner, or GPT-2's default of 4x the width.
    width = getattr(model, "intermediate_size", None) or getattr(model, "n_inner", None) or 4 * model.hidden_size
    return {"mlp": (rows, model.hidden_size, width), "lm_head": (rows, model.hidden_size, model.vocab_size)}


def matmul_gflops(m: int, k: int, n: int, dtype, device: str, min_seconds: float, readings: int) -> float:
    """Best GFLOP/s of ``torch.matmul`` on ``(m, k) @ (k, n)``: the fastest of at least ``readings`` readings,
    taking at least ``min_seconds`` in all."""
    import torch

    a, b = torch.randn(m, k, device=device).to(dtype), torch.randn(k, n, device=device).to(dtype)
    out = torch.matmul(a, b)  # warm-up: allocation, kernel choice

    def seconds_each(reps: int) -> float:
        synchronize(device)
        start = time.perf_counter()
        for _ in range(reps):
            torch.matmul(a, b, out=out)
        synchronize(device)
        return (time.perf_counter() - start) / reps

    reps, best = 1, seconds_each(1)
    while best * reps < 0.01 and reps < 4096:  # short products: several per reading (clock resolution, GPU launches)
        reps *= 4
        best = seconds_each(reps)
    spent, count = best * reps, 1
    while count < readings or spent < min_seconds:
        each = seconds_each(reps)
        best, spent, count = min(best, each), spent + each * reps, count + 1
    return 2 * m * k * n / best / 1e9


def square_size(dtype, device: str, target: int, max_product_s: float = 1.0) -> int:
    """The square reference's size: doubled from 256 up to ``target`` while a product stays under ``max_product_s``."""
    import torch

    size = 256
    while size < target:
        a = torch.randn(size, size, device=device).to(dtype)
        torch.matmul(a, a)
        synchronize(device)
        start = time.perf_counter()
        torch.matmul(a, a)
        synchronize(device)
        if 8 * (time.perf_counter() - start) > max_product_s:  # twice the size, eight times the work
            break
        size *= 2
    return size


def matmul_peak(args) -> dict:
    """Each product's GFLOP/s, the square's size and the best of them (the peak), fp32 and bf16."""
    import torch

    shapes = matmul_shapes(load_config(args.config))
    min_seconds, readings = (0.2, 2) if args.quick else (1.0, 3)
    result = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        size = square_size(dtype, args.device, 4096 if args.device == "cuda" else 2048)
        result[f"{name}_square_size"] = size
        for shape_name, shape in {**shapes, "square": (size, size, size)}.items():
            result[f"{name}_{shape_name}_gflops"] = matmul_gflops(*shape, dtype, args.device, min_seconds, readings)
        result[f"{name}_peak_gflops"] = max(result[f"{name}_{shape}_gflops"] for shape in (*shapes, "square"))
    return result

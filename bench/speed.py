"""Training and generation speed of the project beside the course's plain PyTorch code, with peak memory.

    python bench/speed.py                      # gpt2_sample, llama_dropout (the old default), llama; 2 threads
    python bench/speed.py --threads 1 --quick  # one repeat, fewer steps

Each measurement runs in a fresh subprocess (so its peak RSS is its own), project and course variants
alternate (A B A B ...) and the table shows medians. Training counts only steps after a warm-up and
leaves out each epoch's first step, whose interval holds the epoch end (validation, checkpoints).

- train, project: what ``train.py --config X`` runs (FitCLI: Trainer + PixelLM + PokemonDataModule,
  the config's logger, callbacks and progress bar), stopped after ``--warmup + --steps`` steps.
- train, course: a DataLoader over the train images, the same model, CrossEntropyLoss on
  seq[:-1] -> seq[1:], AdamW (the config's lr / weight decay / gradient clipping), ``loss.item()`` per step.
- generate, project: ``PixelLM.complete`` on all 80 test prefixes at once (a KV cache allocated once and
  filled in place, inference mode).
- generate, course: batches of 16, ``model.generate(..., max_length=400)`` per batch.
Both generators use the same (untrained, seeded) weights, or ``--ckpt``'s; greedy outputs must match.
- matmul peak: ``torch.matmul`` throughput, fp32 and bf16, on the config's largest training products (the MLP's
  ``(batch*399, hidden) @ (hidden, intermediate)`` and the lm head's ``(batch*399, hidden) @ (hidden, vocab)``)
  and a square reference (2048 on a CPU, 4096 on a GPU; smaller where one product would take over a second,
  as bf16 does on CPUs without bf16 instructions); the best of them is the peak. A second table sets the
  project's training FLOP/s (``bench/flops.py``: Lightning's ``measure_flops`` of a training forward and
  backward) against it: the model FLOP utilisation (MFU).

``--device cuda`` (the default when a GPU is visible) runs every variant on the GPU: the project through
``--trainer.accelerator=gpu``, the course code by moving its model and batches there; clocks synchronize
the GPU before reading the time, and the table adds each worker's peak GPU memory.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.errors import reported_errors  # noqa: E402

DATA = ROOT / "data" / "pokemon"  # the shipped course split (read_images finds the .gz)
SAMPLED = {"do_sample": True, "top_k": 50, "top_p": 0.95}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def cpu_name() -> str:
    """The processor's model name (Linux), so that a table says which CPU it was measured on."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "CPU"
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else "CPU"


def synchronize(device: str) -> None:
    """Waits for the GPU's queued work, so that a clock read after it counts that work."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def load_config(path: str) -> dict:
    import yaml

    return yaml.safe_load(Path(path).read_text())


def build_model(config: dict, ckpt: str | None):
    """The config's PixelLM with seed-0 weights (or a checkpoint's): the same model in every worker."""
    import torch

    from checkpointing import load_pixel_lm
    from lightning_modules import PixelLM

    if ckpt:
        return load_pixel_lm(ckpt)  # weights-only: a checkpoint from elsewhere cannot run code here
    torch.manual_seed(0)
    args = config["model"]["init_args"]
    return PixelLM(model_type=args["model_type"], model_config=args.get("model_config"))


class StepClock:
    """Lightning callback: the interval and tokens of each training step after ``warmup`` steps."""

    def __init__(self, warmup: int, device: str) -> None:
        from lightning.pytorch.callbacks import Callback

        clock = self

        class _Clock(Callback):
            def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
                clock.tick(len(batch), batch_idx, trainer.global_step)

        self.callback = _Clock()
        self.warmup = warmup
        self.device = device
        self.last = None
        self.seconds = 0.0
        self.tokens = 0

    def tick(self, batch_size: int, batch_idx: int, step: int) -> None:
        synchronize(self.device)
        now = time.perf_counter()
        if self.last is not None and batch_idx > 0 and step > self.warmup:
            self.seconds += now - self.last
            self.tokens += batch_size * 399
        self.last = now


def train_project(args) -> dict:
    from cli.fit import FitCLI

    with tempfile.TemporaryDirectory() as runs:
        cli = FitCLI(
            args=[
                "--config", args.config, "--trainer.default_root_dir", runs, "--data.data_dir", str(DATA),
                f"--trainer.max_steps={args.warmup + args.steps}", "--trainer.max_epochs=-1",
                f"--trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}", "--trainer.devices=1",
            ],
        )  # fmt: skip
        clock = StepClock(args.warmup, args.device)
        cli.trainer.callbacks.append(clock.callback)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return {"tokens_per_s": clock.tokens / clock.seconds, "seconds": clock.seconds, "tokens": clock.tokens}


def train_course(args) -> dict:
    import torch
    from torch.utils.data import DataLoader

    from datamodules.pixel_files import read_images

    config = load_config(args.config)
    model = build_model(config, None).model.to(args.device)
    hp, data, trainer = config["model"]["init_args"], config["data"], config["trainer"]
    images = read_images(DATA / "train.txt", 400, 167)
    loader = DataLoader(images, batch_size=data.get("batch_size", 16), shuffle=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=hp.get("lr", 1e-3), weight_decay=hp.get("weight_decay", 0.1))
    criterion = torch.nn.CrossEntropyLoss()
    clip = trainer.get("gradient_clip_val")
    clock = StepClock(args.warmup, args.device)
    model.train()
    step = 0
    while step < args.warmup + args.steps:
        epoch_loss = 0.0
        for batch_idx, seq in enumerate(loader):
            seq = seq.to(args.device)
            logits = model(input_ids=seq[:, :-1], use_cache=False).logits
            loss = criterion(logits.reshape(-1, logits.shape[-1]), seq[:, 1:].reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            epoch_loss += loss.item()
            step += 1
            clock.tick(len(seq), batch_idx, step)
            if step == args.warmup + args.steps:
                break
    return {"tokens_per_s": clock.tokens / clock.seconds, "seconds": clock.seconds, "tokens": clock.tokens}


def generate_project(args) -> dict:
    from generation.decoding import Decoding

    model = build_model(load_config(args.config), args.ckpt).to(args.device)
    prefixes = test_prefixes().to(args.device)
    model.complete(prefixes[:2, :-8])  # warm-up: first calls allocate and pick kernels
    return time_modes(lambda decoding: model.complete(prefixes, Decoding(**decoding)), args)


def generate_course(args) -> dict:
    import torch

    model = build_model(load_config(args.config), args.ckpt).model.to(args.device)
    model.eval()
    prefixes = test_prefixes().to(args.device)
    batches = list(torch.utils.data.DataLoader(prefixes, batch_size=16))

    def complete(decoding: dict):
        torch.manual_seed(decoding.get("seed", 0))
        outputs = []
        for inputs in batches:
            mask = torch.ones_like(inputs)
            outputs.append(model.generate(inputs, attention_mask=mask, max_length=400, **decoding))
        return torch.cat(outputs)

    model.generate(prefixes[:2, :-8], max_length=240)  # the same warm-up as the project's
    return time_modes(complete, args)


def test_prefixes():
    from datamodules.pixel_files import read_images

    return read_images(DATA / "test.txt", 240, 167)


def time_modes(complete, args) -> dict:
    import torch

    result = {}
    for name, decoding in (("greedy", {"do_sample": False}), ("sampled", SAMPLED)):
        synchronize(args.device)
        start = time.perf_counter()
        images = complete(decoding)
        synchronize(args.device)
        result[f"{name}_s"] = time.perf_counter() - start
        assert images.shape == (80, 400), images.shape
        if name == "greedy":
            torch.save(images.cpu(), args.out)
    return result


def matmul_shapes(config: dict) -> dict[str, tuple[int, int, int]]:
    """``(m, k, n)`` of the config's largest training products: the MLP's and the lm head's, over a batch."""
    model = build_model(config, None).model.config
    rows = config["data"].get("batch_size", 16) * 399
    # The MLP's inner width: intermediate_size, GPT-2's n_inner, or GPT-2's default of 4x the width.
    width = getattr(model, "intermediate_size", None) or getattr(model, "n_inner", None) or 4 * model.hidden_size
    return {"mlp": (rows, model.hidden_size, width), "lm_head": (rows, model.hidden_size, model.vocab_size)}


def matmul_gflops(m: int, k: int, n: int, dtype, device: str, min_seconds: float, readings: int) -> float:
    """Best GFLOP/s of ``torch.matmul`` on ``(m, k) @ (k, n)`` over at least ``readings`` readings and ``min_seconds``."""
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
    """The square reference's size: doubled from 256 up to ``target`` while one product stays under ``max_product_s``."""
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


WORKERS = {
    "train_project": train_project,
    "train_course": train_course,
    "generate_project": generate_project,
    "generate_course": generate_course,
    "matmul_peak": matmul_peak,
}


def run_worker(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    result = WORKERS[args.worker](args)
    result["peak_rss_mb"] = peak_rss_mb()
    if args.device == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print("RESULT " + json.dumps(result), flush=True)


def spawn(worker: str, args, **extra) -> dict:
    """Runs one measurement in a fresh interpreter and returns its RESULT line."""
    command = [sys.executable, __file__, "--worker", worker, "--config", args.config, "--threads", str(args.threads)]
    command += ["--warmup", str(args.warmup), "--steps", str(args.steps), "--device", args.device]
    if args.ckpt:
        command += ["--ckpt", args.ckpt]
    if args.quick:
        command += ["--quick"]
    for key, value in extra.items():
        command += [f"--{key}", str(value)]
    # WANDB_MODE offline: what train.py does when nobody is logged in, without touching the network.
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
    env.pop("POKEMON_RUN_DIR", None)
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"{worker} on {args.config} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def bench_config(args) -> dict:
    """Interleaved repeats of every variant for one config; medians and all raw values."""
    import torch

    raw = {name: [] for name in WORKERS}
    same_greedy = True
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name in ("train_project", "train_course", "matmul_peak"):
                raw[name].append(spawn(name, args))
            outs = {name: Path(tmp) / f"{name}_{repeat}.pt" for name in ("generate_project", "generate_course")}
            for name, out in outs.items():
                raw[name].append(spawn(name, args, out=out))
            same_greedy &= torch.equal(*(torch.load(out) for out in outs.values()))
            print(f"  {Path(args.config).stem}: repeat {repeat + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    median = {name: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for name, runs in raw.items()}
    result = {"config": args.config, "median": median, "raw": raw, "greedy_identical": same_greedy}
    return {**result, "mfu": utilisation(args.config, median)}


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


def table(results: list[dict], args) -> str:
    rows = [
        f"Device: {args.device_name}; threads: {args.threads}; repeats: {args.repeats} (medians); warm-up "
        f"{args.warmup} + {args.steps} timed training steps; load average {args.load:.1f} before the run (above 0.5: "
        "other jobs were running, and the ratios are noisier).",
        "",
        "| config | measure | project | course code | project / course (range of the repeats' own ratios) | peak memory project | peak memory course |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        m, raw, name = result["median"], result["raw"], Path(result["config"]).stem
        tp, tc = m["train_project"], m["train_course"]
        gp, gc = m["generate_project"], m["generate_course"]
        spread = paired_range(raw["train_project"], raw["train_course"], "tokens_per_s")
        rows.append(
            f"| {name} | training tokens/s | {tp['tokens_per_s']:,.0f} | {tc['tokens_per_s']:,.0f} | "
            f"{tp['tokens_per_s'] / tc['tokens_per_s']:.2f}x{spread} | {memory(tp)} | {memory(tc)} |"
        )
        for mode in ("greedy", "sampled"):
            key = f"{mode}_s"
            same = f" (outputs identical: {result['greedy_identical']})" if mode == "greedy" else ""
            spread = paired_range(raw["generate_course"], raw["generate_project"], key)
            rows.append(
                f"| {name} | generate 80, {mode}{same} | {gp[key]:.2f} s | {gc[key]:.2f} s | "
                f"{gc[key] / gp[key]:.2f}x faster{spread} | {memory(gp)} | {memory(gc)} |"
            )
    return "\n".join(rows)


def mfu_table(results: list[dict]) -> str:
    """Training FLOP/s of the project against the matmul peaks measured in the same run."""
    rows = [
        "Model FLOP utilisation: training FLOPs per token (forward + backward of every matmul, full attention "
        "context, counted by Lightning's measure_flops; bench/flops.py) x the project's tokens/s, against the best torch.matmul GFLOP/s of the config's "
        "MLP and lm-head products and a square reference, measured in the same run at the same threads.",
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


def memory(result: dict) -> str:
    """Peak RSS of a worker, and its peak GPU memory when it ran on one."""
    gpu = f", GPU {result['peak_gpu_mb']:.0f} MB" if "peak_gpu_mb" in result else ""
    return f"RSS {result['peak_rss_mb']:.0f} MB{gpu}"


def paired_range(numerators: list[dict], denominators: list[dict], key: str) -> str:
    """`` (lowest-highest)`` of the ratio within each repeat: how far one measurement can be trusted."""
    ratios = [n[key] / d[key] for n, d in zip(numerators, denominators)]
    return f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["configs/gpt2_sample.yaml", "configs/llama_dropout.yaml", "configs/llama.yaml"])
    parser.add_argument("--threads", type=int, default=2, help="torch threads in every measurement")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats per variant (median shown)")
    parser.add_argument("--warmup", type=int, default=3, help="training steps before timing starts")
    parser.add_argument("--steps", type=int, help="timed training steps (default 20; 8 with --quick)")
    parser.add_argument("--quick", action="store_true", help="one repeat, 8 timed steps, shorter matmul timings")
    parser.add_argument("--ckpt", help="a PixelLM checkpoint for generation (default: untrained seeded weights)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: cuda when visible")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 1
    args.steps = args.steps or (8 if args.quick else 20)
    return args


@reported_errors()  # a bad --ckpt: one line "error: ...", status 2; SIGTERM / Ctrl-C: 143 / 130
def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        return run_worker(args)
    args.load = os.getloadavg()[0]
    import torch

    if args.ckpt:  # checked here, so that a bad file is one line, not a worker's traceback
        from checkpointing import load_checkpoint

        load_checkpoint(args.ckpt, "PixelLM")

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.device_name = torch.cuda.get_device_name() if args.device == "cuda" else f"{cpu_name()}, {os.cpu_count()} cores"
    results = []
    for config in args.configs:
        args.config = config
        results.append(bench_config(args))
    print(table(results, args))
    print()
    print(mfu_table(results))
    report = {"device": args.device_name, "threads": args.threads, "repeats": args.repeats, "warmup": args.warmup}
    report["steps"] = args.steps
    report["load_average_before"] = args.load
    print(json.dumps({**report, "results": results}))
    if args.json:
        Path(args.json).write_text(json.dumps({**report, "results": results}, indent=1))


if __name__ == "__main__":
    main()

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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cpu import cpu_label, thread_env  # noqa: E402
from bench.generation_speed import generate_course, generate_project  # noqa: E402
from bench.matmul_peak import matmul_peak  # noqa: E402
from bench.mfu import mfu_table, utilisation  # noqa: E402
from bench.speed_table import speed_table  # noqa: E402
from bench.training_speed import train_course, train_project  # noqa: E402
from cli.errors import reported_errors  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


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
    env = {**thread_env(args.threads), "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
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


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    configs = ["configs/gpt2_sample.yaml", "configs/llama_dropout.yaml", "configs/llama.yaml"]
    parser.add_argument("--configs", nargs="+", default=configs)
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
    args.device_name = torch.cuda.get_device_name() if args.device == "cuda" else cpu_label(os.cpu_count())
    results = []
    for config in args.configs:
        args.config = config
        results.append(bench_config(args))
    print(speed_table(results, args))
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

"""What N minutes buy: configs trained to each time budget at each thread count, then scored on dev.

    python bench/budget.py --config quick --budgets 2 5 10 20 --threads 2 1 \\
        --judge runs/classifier/version_0/checkpoints/best.ckpt runs/judge/version_0/checkpoints/best.ckpt \\
        [--seeds 0 1 2] [--decodings best_of] [--best_of 16] [--out runs/budget] [--json budget.json] [--parallel]
    python bench/budget.py --config gpt2 llama mistral qwen2 qwen3 --budgets 10 --threads 1 --parallel ...
    python bench/budget.py --config quick --budgets 5 --threads 1 --schedules steps elapsed --parallel ...

For each config, each budget (minutes) and each ``--threads`` count it runs ``train.py --config CONFIG
--trainer.max_time=<budget>`` (the whole command: the config's ``callbacks.TimeBudget`` turns the
budget into a step count, and the reranker trains within it) as a process of its own, pinned to that
many cores with that many threads (``--threads 1``: one core, ``OMP_NUM_THREADS=1``, as ``taskset -c 0``:
a machine half as fast as two), into ``<out>/<config>_<budget>min_<threads>t/``. The runs train one after
another, so none waits on another; with ``--parallel``, runs of fewer threads than there are cores train
side by side, each on cores of its own (two 1-thread runs on a 2-core machine: they share its memory
bandwidth, so each is a little slower than alone). The scoring (all cores) comes after the last.

Each run is then scored as ``bench/quality.py`` scores one: dev bits/pixel, Inception FID, and PDR by
each ``--judge``, for each ``--decodings`` decoding (default ``best_of``: ``--best_of`` samples kept by
the run's own reranker, as ``predict.py`` does with the shipped configs), mean and [lowest, highest]
over ``--seeds``. The table (and ``--json``, a list of rows like ``bench/quality.py``'s with the budget,
threads, wall time and the run's planned and run steps added) names the CPU. ``--reuse`` scores the runs
already under ``--out`` instead of training them again.

``--schedules steps elapsed`` trains each run twice: as the config says (``steps``: the step count fixed
once) and with its ``callbacks.TimeBudget`` set to ``schedule: elapsed`` (planned again after every
step; the config resolved by ``train.py --print_config`` with that one change, in
``<out>/<run>_elapsed/config_elapsed.yaml``): which gives the better model per minute.
"""

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.budget_runs import WALL, run_name, run_record, train_all  # noqa: E402
from bench.cpu import cpu_label  # noqa: E402
from bench.quality import DECODINGS, RERANKED, decoding_plan, judge_name, print_row, reference_rows, summarise  # noqa: E402
from bench.quality import score as score_decoding  # noqa: E402
from checkpointing import CheckpointError, load_classifier, load_pixel_lm  # noqa: E402
from checkpointing.run_folders import newest_checkpoint, run_reranker  # noqa: E402
from datamodules import PokemonDataModule  # noqa: E402
from evaluation.scoring import QualityJudge, classifier_scorer  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--config", nargs="+", default=["quick"], help="configs with a callbacks.TimeBudget (default: quick)"
    )
    parser.add_argument("--budgets", type=float, nargs="+", required=True, help="budgets in minutes, e.g. 2 5 10 20")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[2, 1], help="thread (and core) counts (default: 2 1)"
    )
    parser.add_argument(
        "--schedules",
        nargs="+",
        default=["steps"],
        choices=["steps", "elapsed"],
        help="callbacks.TimeBudget's schedule: steps (fixed once, the configs' default) or elapsed (default: steps)",
    )
    parser.add_argument("--judge", nargs="+", default=[], help="classifier checkpoints: one PDR column each")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="sampling seeds (default: 0 1 2)")
    parser.add_argument(
        "--decodings", nargs="+", default=["best_of"], help="bench/quality.py's decodings (default: best_of)"
    )
    parser.add_argument(
        "--best_of", type=int, default=16, help="samples per prefix for best_of (default 16, as the configs)"
    )
    parser.add_argument("--data_dir", default=None, help="data folder (default: the shipped course split)")
    parser.add_argument(
        "--train_args",
        type=shlex.split,
        default=[],
        help='more train.py arguments for every run, one string: "--trainer.logger=false"',
    )
    parser.add_argument(
        "--out", type=Path, default=Path("runs/budget"), help="where the runs go (default: runs/budget)"
    )
    parser.add_argument("--reuse", action="store_true", help="score the runs already under --out; train none")
    parser.add_argument(
        "--train_only", action="store_true", help="train the runs and stop; score them later with --reuse"
    )
    parser.add_argument(
        "--parallel",
        action="store_true",
        help="train runs of fewer threads than cores side by side, on cores of their own",
    )
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)

    for name, values in (("--budgets", args.budgets), ("--threads", args.threads)):
        if any(value <= 0 for value in values):
            parser.error(f"{name}: must be greater than 0, got {values}")
    if max(args.threads) > len(os.sched_getaffinity(0)) and not args.reuse:  # --reuse trains nothing
        parser.error(
            f"--threads: {max(args.threads)} is more than the {len(os.sched_getaffinity(0))} cores this process may use"
        )
    if not args.judge and not args.train_only:
        parser.error("--judge: at least one classifier checkpoint is needed to score the runs")
    if args.train_only and args.reuse:
        parser.error("--train_only and --reuse: one trains, the other scores; give one")
    missing = [] if args.train_only else [path for path in args.judge if not Path(path).is_file()]
    if missing:  # before minutes of training
        parser.error(
            f"--judge: {', '.join(missing)} does not exist (train one: python train.py --config configs/judge.yaml)"
        )
    if unknown := set(args.decodings) - set(DECODINGS):
        parser.error(f"--decodings: unknown {sorted(unknown)}; choose from {', '.join(DECODINGS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    combos = [
        (config, budget, threads, schedule)
        for config in args.config
        for budget in args.budgets
        for threads in args.threads
        for schedule in args.schedules
    ]
    if args.reuse:
        walls = {}
        for combo in combos:
            if not (path := args.out / run_name(*combo) / WALL).is_file():
                raise FileNotFoundError(f"--reuse: {path} is missing (train it first, without --reuse)")
            walls[combo] = {"parallel": None, **json.loads(path.read_text())}  # None: trained before it was kept
    else:
        walls = train_all(args, combos)
        if args.train_only:
            return
    rows = score(args, combos, walls)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


def score(args: argparse.Namespace, combos: list[tuple[str, float, int, str]], walls: dict) -> list[dict]:
    """Scores every run as bench/quality.py does and prints the table; the rows."""
    data = PokemonDataModule(data_dir=args.data_dir)
    data.setup("validate")
    classifiers = {judge_name(path): load_classifier(path) for path in args.judge}
    judge = QualityJudge(
        data.splits["dev"], data.palette, data.splits["train"], data.prefix_len, next(iter(classifiers.values()))
    )
    cpu = cpu_label(len(os.sched_getaffinity(0)))
    print(
        f"CPU: {cpu}; configs {' '.join(args.config)}; the scoring used every core, the training the cores of its row"
    )
    rows = reference_rows(judge, classifiers)
    for row in rows:
        row["cpu"] = cpu
        print_row(row, list(classifiers), header=row is rows[0])
    sampling = {"temperature": 1.0, "top_k": 50, "top_p": 0.95}
    for config, budget, threads, schedule in combos:
        root = args.out / run_name(config, budget, threads, schedule)
        checkpoint = newest_checkpoint(root, "best")
        if checkpoint is None:
            raise FileNotFoundError(f"{root}: no checkpoints/best.ckpt in any run under it")
        model = load_pixel_lm(checkpoint)
        model.use_training_images(data.splits["train"])
        model.use_palette(data.palette)
        reranker_path = str(run_reranker(checkpoint) or args.judge[0])
        reranker = classifier_scorer(reranker_path) if set(RERANKED) & set(args.decodings) else None
        record, trained = run_record(checkpoint), walls[config, budget, threads, schedule]
        for label, kind, per_seed in decoding_plan(args.decodings, args.best_of, args.seeds, sampling):
            model.reranker = reranker if kind in RERANKED else None
            seeds = [score_decoding(model, judge, classifiers, data, decoding, kind)[0] for decoding in per_seed]
            rows.append({
                "run": run_name(config, budget, threads, schedule), "train_min": round(trained["wall_s"] / 60, 2),
                "decoding": label, **summarise(seeds),
                "seeds": [decoding.seed for decoding in per_seed] if kind != "greedy" else None,
                "per_seed": seeds, "sampling": sampling if kind != "greedy" else None, "checkpoint": str(checkpoint),
                "features": judge.descriptions["fid"], "reranker": reranker_path if kind in RERANKED else None,
                "config": config, "budget_min": budget, "threads": threads, "schedule": schedule, "cpu": cpu,
                "parallel": trained["parallel"],
                "wall_s": trained["wall_s"], "within_budget": trained["wall_s"] <= budget * 60,
                "max_steps": record.get("max_steps"), "first_planned_steps": record.get("first_planned_steps"),
                "steps_run": record.get("steps_run"),
                "stopped_by": record.get("stopped_by"), "seconds_per_step": record.get("seconds_per_step"),
            })  # fmt: skip
            print_row(rows[-1], list(classifiers), header=False)
    print(json.dumps(rows))
    return rows


if __name__ == "__main__":
    try:
        main()
    except (CheckpointError, FileNotFoundError, RuntimeError, ValueError) as error:
        # a failed run, a bad judge or run folder: one line, as the other entry points
        print(f"budget.py: error: {error}", file=sys.stderr)
        sys.exit(2)

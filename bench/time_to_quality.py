"""Minutes to a good model: trains recipes side by side and times each to the dev bits/pixel it reaches.

    python bench/time_to_quality.py --out runs/ttq \\
        --recipe old=configs/llama_dropout.yaml --recipe new=configs/llama.yaml \\
        [--levels 2.2 2.1 2.0 1.95] [--threads 1] [--cores 0 1] [--judge CLASSIFIER.ckpt] \\
        [-- ARGS FOR EVERY train.py]

A recipe is ``NAME=CONFIG [train.py arguments]``. Each runs as its own ``train.py`` process at
``--threads`` threads, pinned to its own cores (``--cores``, default: the cores this process may use;
recipes share cores when there are too few, and the table says so: their minutes then grow together),
with its run folder in ``<out>/<NAME>/version_<N>`` and its output in ``<out>/<NAME>.log``. The callback
``callbacks.ElapsedTime`` logs the seconds since fit start with the metrics of every validation, which the
config's ``CSVLogger`` writes to the run's ``metrics.csv``. The table gives each recipe's training minutes,
its best dev bits/pixel and the minutes it took to first reach each level (default: the first recipe's
best, and 2, 5 and 10 % above it), and for every recipe after the first (the reference) the ratio of its
minutes to the reference's. Times are as fine as the config's validation interval
(``check_val_every_n_epoch``).

``--judge`` then scores each run's ``best.ckpt`` (the checkpoint its config's ``ModelCheckpoint`` keeps)
on the dev split with ``evaluation.scoring.evaluate_model``: FID and PDR of the recipe's own decoding
(best-of-N kept by the run's ``reranker/``, which ``callbacks.TrainReranker`` trains after the fit and
outside its training minutes).
The table is printed, and the table's figures and every validation are written to
``<out>/time_to_quality.json`` and printed as one JSON line.
"""

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cpu import cpu_label  # noqa: E402
from bench.recipe_quality import score_runs  # noqa: E402
from bench.recipes import assign_cores, parse_recipe, run_recipes  # noqa: E402
from bench.time_to_level import analyse  # noqa: E402
from bench.time_to_quality_table import time_to_quality_table  # noqa: E402
from cli.errors import reported_errors  # noqa: E402


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The options, and the arguments after ``--`` that every train.py gets."""
    common = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    recipe_help = "NAME=CONFIG [ARGS]; the first is the reference"
    parser.add_argument("--recipe", type=parse_recipe, action="append", required=True, help=recipe_help)
    parser.add_argument("--out", type=Path, required=True, help="folder for the runs, their logs and the JSON")
    levels_help = "dev bits/pixel levels to time (default: from the reference's best)"
    parser.add_argument("--levels", type=float, nargs="+", help=levels_help)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (and cores) per recipe")
    cores_help = "cores to spread the recipes over (default: all this process may use)"
    parser.add_argument("--cores", type=int, nargs="+", help=cores_help)
    parser.add_argument("--judge", help="a classifier checkpoint: also score each run's best.ckpt (dev FID, PDR)")
    args = parser.parse_args(argv)
    names = [recipe.name for recipe in args.recipe]
    if len(set(names)) != len(names):
        parser.error(f"--recipe names must differ: {names}")
    return args, common


@reported_errors()  # bad input: one line "error: ...", status 2; SIGTERM / Ctrl-C: 143 / 130
def main(argv: list[str] | None = None) -> None:
    args, common = parse_args(sys.argv[1:] if argv is None else argv)
    args.out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    shared = assign_cores(args.recipe, args.cores or sorted(os.sched_getaffinity(0)), args.threads)
    run_recipes(args.recipe, args.out, common, args.threads)
    failed = [recipe for recipe in args.recipe if recipe.returncode]
    for recipe in failed:
        log = args.out / f"{recipe.name}.log"
        print(
            f"{recipe.name}: train.py failed ({recipe.returncode}); the end of {log}:\n{log.read_text()[-3000:]}",
            file=sys.stderr,
        )
    for recipe in args.recipe:
        if not recipe.records:
            print(
                f"{recipe.name}: no validation in a metrics.csv under {recipe.run_dir}; the bench reads the one a "
                "CSVLogger writes, so the config's trainer.logger needs one (bench/recipes.py adds one)",
                file=sys.stderr,
            )
    report = analyse(args.recipe, args.levels)
    if args.judge:
        score_runs(report, args.judge, args.threads)
    report.update(cpu=cpu_label(os.cpu_count()), threads=args.threads, shared_cores=shared)
    report.update(train_args=common, load_average_before=load)
    print(time_to_quality_table(report, shared))
    (args.out / "time_to_quality.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

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
import csv
import json
import math
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cpu import cpu_name  # noqa: E402
from cli.errors import reported_errors  # noqa: E402

METRIC = "val/bits_per_pixel"
CALLBACK = "callbacks.ElapsedTime"  # logs time/elapsed_s with each validation's metrics, time/fit_s at the end
DEFAULT_MARGINS = (1.10, 1.05, 1.02, 1.0)  # default levels: the reference's best times these


@dataclass
class Recipe:
    name: str
    config: str
    args: list[str]
    cores: list[int] = field(default_factory=list)
    run_dir: Path | None = None
    returncode: int | None = None
    wall_s: float | None = None
    records: list[dict] = field(default_factory=list)


def parse_recipe(text: str) -> Recipe:
    """``NAME=CONFIG [ARGS...]`` (shell quoting) as a Recipe."""
    name, sep, rest = text.partition("=")
    words = shlex.split(rest)
    if not sep or not name or not words or "/" in name:
        raise argparse.ArgumentTypeError(f"--recipe {text!r}: expected NAME=CONFIG [train.py arguments]")
    return Recipe(name, words[0], words[1:])


def versions(root: Path) -> set[Path]:
    from checkpointing.run_folders import versions as run_versions

    return set(run_versions(root))


def assign_cores(recipes: list[Recipe], cores: list[int], threads: int) -> bool:
    """Gives each recipe ``threads`` cores in turn; True when some recipes had to share."""
    for index, recipe in enumerate(recipes):
        recipe.cores = sorted({cores[(index * threads + j) % len(cores)] for j in range(threads)})
    return len(recipes) * threads > len(cores)


def train_command(recipe: Recipe, out: Path, common: list[str]) -> list[str]:
    return [
        sys.executable, "train.py", "--config", recipe.config,
        "--trainer.default_root_dir", str(out / recipe.name),
        f"--trainer.callbacks+={CALLBACK}",
        *common, *recipe.args,
    ]  # fmt: skip


def run_recipes(recipes: list[Recipe], out: Path, common: list[str], threads: int) -> None:
    """Starts every recipe's train.py at once, reports validations as they come, and waits for all."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env.pop("POKEMON_RUN_DIR", None)  # a variable left over from another run would redirect every recipe
    processes, before = {}, {}
    for recipe in recipes:
        before[recipe.name] = versions(out / recipe.name)
        log = (out / f"{recipe.name}.log").open("w")
        processes[recipe.name] = (
            subprocess.Popen(
                train_command(recipe, out, common), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=lambda cores=recipe.cores: os.sched_setaffinity(0, cores),
            ),
            time.perf_counter(),
            log,
        )  # fmt: skip
    pending = dict(processes)
    while pending:
        time.sleep(2)
        for recipe in recipes:
            report_new_validations(recipe, out, before[recipe.name])
            if recipe.name in pending and (code := pending[recipe.name][0].poll()) is not None:
                process, start, log = pending.pop(recipe.name)
                recipe.returncode, recipe.wall_s = code, time.perf_counter() - start
                log.close()
                report_new_validations(recipe, out, before[recipe.name])
                print(f"{recipe.name}: train.py exited with {code} after {recipe.wall_s / 60:.1f} min", file=sys.stderr)


def report_new_validations(recipe: Recipe, out: Path, before: set[Path]) -> None:
    """Reads the recipe's validation log (finding its new run folder first) and prints the lines not seen yet."""
    if recipe.run_dir is None:
        new = sorted(versions(out / recipe.name) - before)
        if not new:
            return
        recipe.run_dir = new[-1]
    records = read_records(recipe.run_dir)
    if records is None:
        return
    for record in records[len(recipe.records) :]:
        if "event" not in record:
            print(
                f"{recipe.name}: {record['elapsed_s'] / 60:.2f} min, epoch {record['epoch']}, step {record['step']}, "
                f"{METRIC} {record.get(METRIC, float('nan')):.4f}",
                file=sys.stderr,
                flush=True,
            )
    recipe.records = records


def read_records(run_dir: Path) -> list[dict] | None:
    """``{"elapsed_s", "epoch", "step", <metrics>}`` of each validation in the run's newest ``metrics.csv``
    (a ``CSVLogger``'s), then ``{"event": "fit_end", "elapsed_s", ...}`` once the fit has ended. A row holds
    only what was logged with it, so a metric a validation did not log (``val/recon_acc`` between
    completions, ``model.recon_every_n_epochs``) is absent, not repeated; so is a NaN or infinite one.
    None: the file is being rewritten (the logger adds a column), read it next time."""
    found = sorted(run_dir.glob("**/metrics.csv"), key=lambda path: path.stat().st_mtime)
    if not found:
        return []
    try:
        with found[-1].open(newline="") as file:
            rows = [{key: float(value) for key, value in row.items() if value} for row in csv.DictReader(file)]
    except (OSError, ValueError):
        return None
    rows = [{key: value for key, value in row.items() if math.isfinite(value)} for row in rows]
    records = []
    for row in rows:
        place = {"epoch": int(row.pop("epoch", -1)), "step": int(row.pop("step", -1))}
        if "time/elapsed_s" in row:
            records.append({"elapsed_s": row.pop("time/elapsed_s"), **place, **row})
        elif "time/fit_s" in row:
            records.append({"elapsed_s": row["time/fit_s"], "event": "fit_end", **place})
    return records


def validations(recipe: Recipe) -> list[dict]:
    return [record for record in recipe.records if "event" not in record and record.get(METRIC) is not None]


def summary(recipe: Recipe) -> dict:
    """Training minutes (the whole fit), the best bits/pixel, and the (minutes, bits/pixel) of each validation."""
    ends = [record for record in recipe.records if record.get("event") == "fit_end"]
    last = ends[-1] if ends else (recipe.records[-1] if recipe.records else None)
    points = [(record["elapsed_s"] / 60, record[METRIC]) for record in validations(recipe)]
    return {
        "training_minutes": last["elapsed_s"] / 60 if last else None,
        "best_bits_per_pixel": min((bits for _, bits in points), default=None),
        "points": points,
    }


def default_levels(reference_best: float | None) -> list[float]:
    """The reference's best and a few levels above it, rounded up so that the best itself reaches its own."""
    if reference_best is None:
        return []
    # round() first: 2.0 * 1.1 is 2.2000000000000006, which would round up to 2.201
    return [math.ceil(round(reference_best * margin * 1000, 6)) / 1000 for margin in DEFAULT_MARGINS]


def minutes_to(points: list[tuple[float, float]], level: float) -> float | None:
    """Minutes at the first validation at or below ``level`` bits/pixel, or None."""
    return next((minutes for minutes, bits in points if bits <= level), None)


def analyse(recipes: list[Recipe], levels: list[float] | None) -> dict:
    summaries = {recipe.name: summary(recipe) for recipe in recipes}
    reference = summaries[recipes[0].name]
    levels = levels or default_levels(reference["best_bits_per_pixel"])
    rows = []
    for recipe in recipes:
        s = summaries[recipe.name]
        reached = {f"{level:g}": minutes_to(s["points"], level) for level in levels}
        ratios = {
            key: ratio(minutes, minutes_to(reference["points"], level))
            for (key, minutes), level in zip(reached.items(), levels)
        }
        rows.append({
            "recipe": recipe.name, "config": recipe.config, "args": recipe.args, "cores": recipe.cores,
            "run_dir": str(recipe.run_dir) if recipe.run_dir else None, "returncode": recipe.returncode,
            "process_minutes": recipe.wall_s / 60 if recipe.wall_s is not None else None,
            "training_minutes": s["training_minutes"], "best_bits_per_pixel": s["best_bits_per_pixel"],
            "training_minutes_ratio": ratio(s["training_minutes"], reference["training_minutes"]),
            "minutes_to_level": reached, "ratio_to_reference": ratios,
            "validations": validations(recipe),
        })  # fmt: skip
    return {"reference": recipes[0].name, "metric": METRIC, "levels": levels, "recipes": rows}


def ratio(minutes: float | None, reference: float | None) -> float | None:
    return minutes / reference if minutes is not None and reference else None


def table(report: dict, shared: bool) -> str:
    levels = [f"{level:g}" for level in report["levels"]]
    quality = any("quality" in row for row in report["recipes"])
    header = ["recipe", "training min", "best dev bits/pixel", *(f"min to <= {level}" for level in levels)]
    header += ["dev FID", "dev PDR"] if quality else []
    cores = "; ".join(f"{row['recipe']} on cores {','.join(map(str, row['cores']))}" for row in report["recipes"])
    lines = [
        f"{report['cpu']}; load average {report['load_average_before']:.1f} before the run. Reference: "
        f"{report['reference']}; in brackets each recipe's minutes / the reference's. {report['threads']} thread(s) "
        f"per recipe; {cores}" + ("; recipes shared cores, so each one's minutes are inflated" if shared else "") + ".",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for index, row in enumerate(report["recipes"]):
        total = row["training_minutes"]  # None: the run wrote no validation (it failed early)
        cells = [row["recipe"], minutes_cell(total, row["training_minutes_ratio"], index) if total is not None else "-"]
        best = row["best_bits_per_pixel"]
        cells.append(f"{best:.4f}" if best is not None else "-")
        cells += [minutes_cell(row["minutes_to_level"][level], row["ratio_to_reference"][level], index) for level in levels]
        if quality:
            scores = row.get("quality") or {}
            cells += [f"{scores['fid']:.1f}" if scores else "-", f"{scores['pdr']:.2f}" if scores else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def minutes_cell(minutes: float | None, ratio_to_reference: float | None, index: int) -> str:
    if minutes is None:
        return "not reached"
    shown = f"{minutes:.2f}"
    return shown if index == 0 or ratio_to_reference is None else f"{shown} ({ratio_to_reference:.2f}x)"


def score_runs(report: dict, judge_path: str, threads: int) -> None:
    """FID and PDR of each run's best.ckpt on the dev split, with the recipe's own decoding (best-of-N kept
    by the run's own reranker, as ``predict.py`` keeps it)."""
    import torch
    import yaml

    from checkpointing import load_classifier, load_pixel_lm
    from checkpointing.run_folders import run_reranker
    from datamodules import PokemonDataModule
    from evaluation.scoring import QualityJudge, classifier_scorer, evaluate_model

    torch.set_num_threads(threads)
    classifier = load_classifier(judge_path)
    for row in report["recipes"]:
        checkpoint = Path(row["run_dir"] or ".") / "checkpoints" / "best.ckpt"
        if not row["run_dir"] or not checkpoint.is_file():
            print(f"{row['recipe']}: no best.ckpt to score", file=sys.stderr)
            continue
        config = yaml.safe_load((checkpoint.parent.parent / "config.yaml").read_text())
        data = PokemonDataModule(data_dir=config["data"].get("data_dir"))
        data.setup("validate")
        model = load_pixel_lm(checkpoint).eval()  # weights-only: a checkpoint cannot run code
        reranker = run_reranker(checkpoint) if model.decoding.best_of > 1 else None
        model.reranker = classifier_scorer(str(reranker)) if reranker else None
        judge = QualityJudge(data.splits["dev"], data.palette, data.splits["train"], data.prefix_len, classifier)
        results, _ = evaluate_model(model, judge, model.decoding)
        keep = ("fid", "pdr", "bits_per_pixel", "pixel_accuracy", "features", "decoding")
        row["quality"] = {"checkpoint": str(checkpoint), "reranker": str(reranker) if reranker else None}
        row["quality"].update({key: results[key] for key in keep})
        print(f"{row['recipe']}: dev FID {results['fid']:.1f}, PDR {results['pdr']:.2f} ({checkpoint})", file=sys.stderr)


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The options, and the arguments after ``--`` that every train.py gets."""
    common = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=parse_recipe, action="append", required=True, help="NAME=CONFIG [ARGS]; the first is the reference")
    parser.add_argument("--out", type=Path, required=True, help="folder for the runs, their logs and the JSON")
    parser.add_argument("--levels", type=float, nargs="+", help="dev bits/pixel levels to time (default: from the reference's best)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (and cores) per recipe")
    parser.add_argument("--cores", type=int, nargs="+", help="cores to spread the recipes over (default: all this process may use)")
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
        tail = (args.out / f"{recipe.name}.log").read_text()[-3000:]
        print(f"{recipe.name}: train.py failed ({recipe.returncode}); the end of {args.out / recipe.name}.log:\n{tail}", file=sys.stderr)
    for recipe in args.recipe:
        if not recipe.records:
            print(
                f"{recipe.name}: no validation in a metrics.csv under {recipe.run_dir}; the bench reads the one a "
                "CSVLogger writes, so the config's trainer.logger needs one (configs/*.yaml have it)",
                file=sys.stderr,
            )
    report = analyse(args.recipe, args.levels)
    if args.judge:
        score_runs(report, args.judge, args.threads)
    report.update(cpu=f"{cpu_name()}, {os.cpu_count()} cores", threads=args.threads, shared_cores=shared)
    report.update(train_args=common, load_average_before=load)
    print(table(report, shared))
    (args.out / "time_to_quality.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

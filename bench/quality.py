"""Quality of trained runs on the dev split: bits/pixel, recon accuracy, FIDs and PDR per decoding.

    python bench/quality.py --runs runs/gpt2_sample runs/llama \\
        --judge runs/classifier/version_0/checkpoints/best.ckpt runs/judge/version_0/checkpoints/best.ckpt \\
        [--reranker CLASSIFIER.ckpt] [--best_of 8] [--seeds 0 1 2] [--decodings greedy sampled best_of new] \\
        [--spread] [--train] [--json results.json]

For each run folder (the newest version's best.ckpt) it completes the 80 dev prefixes with each
decoding and prints one table and JSON. Decodings: ``greedy``; ``sampled`` (top-k 50, top-p 0.95,
temperature 1, or ``--top_k``, ``--top_p``, ``--temperature``: for every sampled decoding); ``best_of``
(best of ``--best_of`` samples, kept by the reranker classifier); ``best_of_consensus`` (of the
reranker's ``--consensus`` best, the one most like all ``--best_of``: ``decoding.consensus``); ``best_of_likelihood`` (the same
samples, kept by the model's own likelihood, no classifier); ``best_of_contrast`` (kept by the model's
likelihood less ``--contrast`` times a bigram's, no classifier: ``decoding.contrast``); ``new``: 80 brand-new Pokémon from nothing
(``predict.py --split new``: one first pixel drawn as the training images start, then sampled), scored
against the dev images like the completions, with no bits/pixel or recon accuracy; ``new_best_of``: the
same, the best of ``--best_of`` kept by the reranker (``predict.py --split new`` with ``llama.yaml``), and
``new_best_of_consensus`` with ``--consensus`` too.
Every sampled decoding runs once per ``--seeds`` seed (sampling seed, and the first pixels of ``new``):
the table gives the mean and, in brackets, the lowest and highest value; the JSON keeps each seed's.

FID is Inception's (the course's features). Each ``--judge`` (a classifier checkpoint) gives one PDR
column, named by its run folder; the first judge also gives the classifier-feature FID. Rerank with
another classifier than the judge whose PDR you trust: the default reranker is the run's own (trained
with it by ``callbacks.TrainReranker``, as ``predict.py`` takes it), else the first judge, so pass a
second, independent ``--judge`` (``configs/judge.yaml``). The first rows are reference points,
measured the same way: the 80 real dev images themselves (their PDR: what a judge gives real Pokémon),
the dev prefixes completed with the bottom of the nearest training image (a model should beat it) and
80 real training images (the floor of an 80-image FID).

``--spread`` adds a column for every sampled decoding of the dev tops (not ``new``): the mean Inception
FID between the seeds' completion sets (each pair of seeds; in brackets the lowest and highest pair). Two
draws of the same model for the same 80 tops differ only in their bottoms, as a draw and the real images
would if the real bottoms came from the model's own distribution. So it estimates the FID a sampler with
the model's variety can expect at best: a lower FID against the real images needs bottoms closer to the
real ones than another draw is, which more variety cannot give and less variety (flatter, likelier
completions) has so far not given either (docs/quality.md).

``--train`` first trains each run's config (``configs/<name>.yaml``) and times it; otherwise the
training minutes come from the run folder (config.yaml written at the start, last.ckpt at the end).
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from checkpointing import load_classifier, load_pixel_lm  # noqa: E402
from checkpointing.run_folders import newest_checkpoint, run_reranker  # noqa: E402
from cli.errors import reported_errors  # noqa: E402
from datamodules import PokemonDataModule  # noqa: E402
from datamodules.pokemon import first_pixels  # noqa: E402
from evaluation.scoring import QualityJudge, classifier_scorer, detection_rate, evaluate_model, evaluate_new  # noqa: E402
from generation.decoding import Decoding  # noqa: E402

DECODINGS = (
    "greedy", "sampled", "best_of", "best_of_consensus", "best_of_likelihood", "best_of_contrast", "new",
    "new_best_of", "new_best_of_consensus",
)  # fmt: skip
RERANKED = ("best_of", "best_of_consensus", "new_best_of", "new_best_of_consensus")  # kept by the reranker
METRICS = (("bits_per_pixel", 3), ("recon_acc", 3), ("fid", 1), ("fid_classifier", 1))


def decoding_plan(
    names: list[str], best_of: int, seeds: list[int], sampling: dict, contrast: float = 0.5, consensus: int = 4
) -> list[tuple[str, str, list[Decoding]]]:
    """``(row label, decoding kind, one Decoding per seed)`` for each requested decoding, in table order.
    ``sampling``: the sampled decodings' ``temperature``, ``top_k`` and ``top_p``."""
    plan = []
    for name in names:
        if name == "greedy":
            plan.append(("greedy", name, [Decoding()]))
            continue
        label = {
            "best_of": f"best-of-{best_of}",
            "best_of_likelihood": f"best-of-{best_of} (likelihood)",
            "best_of_contrast": f"best-of-{best_of} (contrast {contrast:g})",
            "best_of_consensus": f"best-of-{best_of} (consensus {consensus})",
            "new_best_of": f"new, best-of-{best_of}",
            "new_best_of_consensus": f"new, best-of-{best_of} (consensus {consensus})",
        }.get(name, name)
        settings = {
            "best_of": best_of if "best_of" in name else 1,
            "contrast": contrast if name == "best_of_contrast" else 0.0,
            "consensus": consensus if name.endswith("consensus") else 0,
        }
        plan.append((label, name, [Decoding(do_sample=True, **sampling, seed=seed, **settings) for seed in seeds]))
    return plan


def train(name: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "train.py", "--config", f"configs/{name}.yaml"], check=True)
    return (time.perf_counter() - start) / 60


def training_minutes(checkpoint: Path) -> float:
    run = checkpoint.parent.parent
    return ((run / "checkpoints" / "last.ckpt").stat().st_mtime - (run / "config.yaml").stat().st_mtime) / 60


def judge_name(path: str) -> str:
    """``judge`` for ``runs/judge/version_0/checkpoints/best.ckpt``; the file's stem for a loose file."""
    parts = Path(path).parts
    return parts[-4] if len(parts) >= 4 and parts[-2] == "checkpoints" else Path(path).stem


@reported_errors(ValueError)  # a bad --judge, --reranker, --best_of or run: one line "error: ...", status 2
def main() -> None:
    run()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, help="run roots (runs/llama) or checkpoint files")
    parser.add_argument(
        "--judge",
        nargs="+",
        required=True,
        help="classifier checkpoints: one PDR column each; the first gives the classifier FID",
    )
    parser.add_argument(
        "--reranker", help="classifier checkpoint for best-of-N (default: the run's own reranker, else the first judge)"
    )
    parser.add_argument("--best_of", type=int, default=8)
    parser.add_argument(
        "--contrast", type=float, default=0.5, help="best_of_contrast's weight of the bigram (default 0.5)"
    )
    parser.add_argument(
        "--consensus", type=int, default=4, help="the *_consensus decodings' decoding.consensus (default 4)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="sampling seeds (default: 0 1 2)")
    parser.add_argument("--decodings", nargs="+", choices=DECODINGS, default=["greedy", "sampled", "best_of", "new"])
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    parser.add_argument("--top_k", type=int, default=50, help="sample among the k likeliest colours (default 50)")
    parser.add_argument("--top_p", type=float, default=0.95, help="nucleus sampling threshold (default 0.95)")
    parser.add_argument(
        "--spread", action="store_true", help="also the FID between the seeds' completion sets (2 seeds or more)"
    )
    parser.add_argument("--train", action="store_true", help="train each config first and time it")
    parser.add_argument("--data_dir", default=None, help="data folder (default: the shipped course split)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    names = [judge_name(path) for path in args.judge]
    if len(set(names)) != len(names):
        raise ValueError(f"--judge: two judges share the name {names}; put them in differently named run folders")
    if args.best_of < 1:
        raise ValueError(f"--best_of: must be 1 or more, got {args.best_of}")
    return args


def run() -> None:
    args = parse_args()
    data = PokemonDataModule(data_dir=args.data_dir)
    data.setup("validate")
    classifiers = {judge_name(path): load_classifier(path) for path in args.judge}
    first = next(iter(classifiers.values()))
    judge = QualityJudge(data.splits["dev"], data.palette, data.splits["train"], data.prefix_len, first)
    columns = list(classifiers)
    rows = reference_rows(judge, classifiers)
    for row in rows:
        print_row(row, columns, header=row is rows[0], spread=args.spread)
    for root in map(Path, args.runs):
        minutes = train(root.name) if args.train else None
        checkpoint = root if root.is_file() else newest_checkpoint(root, "best")
        if checkpoint is None:
            raise FileNotFoundError(f"{root}: no checkpoints/best.ckpt in any run under it")
        model = load_pixel_lm(checkpoint)
        model.use_training_images(data.splits["train"])  # the bigram of best_of_contrast
        model.use_palette(data.palette)  # the colours the consensus decodings compare
        reranker_path = str(args.reranker or run_reranker(checkpoint) or args.judge[0])
        reranker = classifier_scorer(reranker_path) if set(RERANKED) & set(args.decodings) else None
        minutes = minutes if minutes is not None else training_minutes(checkpoint)
        sampling = {"temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p}
        for label, kind, per_seed in decoding_plan(
            args.decodings, args.best_of, args.seeds, sampling, args.contrast, args.consensus
        ):
            model.reranker = reranker if kind in RERANKED else None  # likelihood, contrast: the model decides
            scored = [score(model, judge, classifiers, data, decoding, kind) for decoding in per_seed]
            seeds = [figures for figures, _ in scored]
            rows.append({
                "run": checkpoint.parent.parent.parent.name, "train_min": round(minutes, 1), "decoding": label,
                **summarise(seeds), "seeds": [decoding.seed for decoding in per_seed] if kind != "greedy" else None,
                "per_seed": seeds, "sampling": sampling if kind != "greedy" else None,
                "checkpoint": str(checkpoint), "features": judge.descriptions["fid"],
                "reranker": reranker_path if kind in RERANKED else None,
            })  # fmt: skip
            if args.spread and not kind.startswith("new") and len(scored) > 1:  # sampled, the same tops in every set
                pairs = judge.fid_between([images for _, images in scored])
                rows[-1]["fid_spread"], rows[-1]["fid_spread_range"] = mean_and_range(pairs)
            print_row(rows[-1], columns, header=False, spread=args.spread)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    print(json.dumps(rows))


def score(
    model, judge: QualityJudge, classifiers: dict, data: PokemonDataModule, decoding: Decoding, kind: str
) -> tuple[dict, torch.Tensor]:
    """One seed's figures (bits/pixel and recon accuracy for completions only, FIDs, each judge's PDR) and its images."""
    if kind.startswith("new"):
        # the first pixels predict.py --split new --data.new_seed SEED starts from, one per dev image
        starts = first_pixels(data.splits["train"], data.vocab_size, len(judge.reference), decoding.seed)
        results, images = evaluate_new(model, judge, starts, decoding)
        results.update(bits_per_pixel=None, pixel_accuracy=None)
    else:
        results, images = evaluate_model(model, judge, decoding)
    figures = {
        "bits_per_pixel": results["bits_per_pixel"], "recon_acc": results["pixel_accuracy"], "fid": results["fid"],
        "fid_classifier": results.get("fid_classifier"), "decode_s": results["decode_s"],
        "pdr": {name: detection_rate(classifier, images) for name, classifier in classifiers.items()},
    }  # fmt: skip
    return figures, images


def summarise(seeds: list[dict]) -> dict:
    """Each figure's mean over seeds, and ``<name>_range`` its (lowest, highest) when there are several seeds."""
    summary = {}
    for key in [key for key, _ in METRICS] + ["decode_s"]:
        summary[key], summary[f"{key}_range"] = mean_and_range([seed[key] for seed in seeds if seed[key] is not None])
    summary["pdr"] = {name: statistics.fmean(seed["pdr"][name] for seed in seeds) for name in seeds[0]["pdr"]}
    summary["pdr_range"] = (
        {name: [min(s["pdr"][name] for s in seeds), max(s["pdr"][name] for s in seeds)] for name in seeds[0]["pdr"]}
        if len(seeds) > 1 else None
    )  # fmt: skip
    return summary


def mean_and_range(values: list[float]) -> tuple[float | None, list[float] | None]:
    """The mean of ``values`` (None if there are none) and ``[lowest, highest]`` (None unless there are several)."""
    return (statistics.fmean(values) if values else None), ([min(values), max(values)] if len(values) > 1 else None)


def reference_rows(judge: QualityJudge, classifiers: dict) -> list[dict]:
    """The reference points as table rows: real dev images (PDR), the nearest-neighbour copy, real train images."""
    references = judge.references()
    sets = judge.reference_images  # the sets those FIDs were measured on
    labels = {
        "dev": "(80 real dev images)",
        "nearest": "(nearest-neighbour copy)",
        "real": f"({len(judge.reference)} real train images)",
    }
    images = {"dev": judge.reference, **sets}
    rows = []
    for name, label in labels.items():
        fids = (
            (0.0, 0.0)
            if name == "dev"
            else (references[f"fid_ref_{name}"], references.get(f"fid_classifier_ref_{name}"))
        )
        rows.append({
            "run": label, "train_min": None, "decoding": None, "bits_per_pixel": None, "recon_acc": None,
            "fid": fids[0], "fid_classifier": fids[1], "decode_s": None, "seeds": None,
            "pdr": {judge_name: detection_rate(classifier, images[name]) for judge_name, classifier in classifiers.items()},
            "checkpoint": None, "features": judge.descriptions["fid"],
        })  # fmt: skip
    return rows


def cell(row: dict, key: str, digits: int, judge: str | None = None) -> str:
    value = row.get(key) if judge is None else (row[key] or {}).get(judge)
    if value is None:
        return "-"
    spread = row.get(f"{key}_range")
    spread = spread.get(judge) if judge is not None and spread else spread
    if spread and spread[0] == spread[1]:  # every seed the same (bits/pixel does not depend on the seed)
        spread = None
    return f"{value:.{digits}f}" + (f" [{spread[0]:.{digits}f}, {spread[1]:.{digits}f}]" if spread else "")


def print_row(row: dict, judges: list[str], header: bool, spread: bool = False) -> None:
    if header:
        names = ["run", "train min", "decoding", "dev bits/pixel", "recon acc", "Inception FID", "classifier FID"]
        names += ["FID seed vs seed"] * spread + [f"PDR ({name})" for name in judges] + ["decode s"]
        print("| " + " | ".join(names) + " |")
        print("|" + "---|" * len(names))
    cells = ["-" if row[key] is None else str(row[key]) for key in ("run", "train_min", "decoding")]
    cells += [cell(row, key, digits) for key, digits in METRICS] + [cell(row, "fid_spread", 1)] * spread
    cells += [cell(row, "pdr", 2, name) for name in judges] + [cell(row, "decode_s", 1)]
    print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

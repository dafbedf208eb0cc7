"""Quality of trained runs on the dev split: bits/pixel, recon accuracy, FID and PDR per decoding.

    python bench/quality.py --runs runs/gpt2_sample runs/llama --judge CLASSIFIER.ckpt \
        [--reranker OTHER_CLASSIFIER.ckpt] [--best_of 8] [--train]

For each run folder (the newest version's best.ckpt) it completes the 80 dev prefixes greedily,
by sampling (top-k 50, top-p 0.95) and by best-of-N sampling, and prints one table and JSON.
``--train`` first trains each run's config (``configs/<name>.yaml``) and times it; otherwise the
training minutes come from the run folder (config.yaml written at the start, last.ckpt at the end).
The judge measures FID (its features) and PDR; reranking best-of-N with a different classifier
than the judge keeps the PDR figure honest.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from checkpointing import CheckpointError, load_pixel_lm  # noqa: E402
from cli import newest_checkpoint  # noqa: E402
from datamodules import PokemonDataModule  # noqa: E402
from lightning_modules import Decoding  # noqa: E402
from evaluation.scoring import classifier_scorer, evaluate_model, load_classifier  # noqa: E402


def decodings(best_of: int) -> dict[str, Decoding]:
    sampled = {"do_sample": True, "top_k": 50, "top_p": 0.95, "seed": 0}
    return {"greedy": Decoding(), "sampled": Decoding(**sampled), f"best-of-{best_of}": Decoding(**sampled, best_of=best_of)}


def train(name: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "train.py", "--config", f"configs/{name}.yaml"], check=True)
    return (time.perf_counter() - start) / 60


def training_minutes(checkpoint: Path) -> float:
    run = checkpoint.parent.parent
    return ((run / "checkpoints" / "last.ckpt").stat().st_mtime - (run / "config.yaml").stat().st_mtime) / 60


def main() -> None:
    try:
        run()
    except (CheckpointError, FileNotFoundError) as error:  # a bad --judge, --reranker or run: one line
        sys.exit(f"quality.py: error: {error}")


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, help="run roots (runs/llama) or checkpoint files")
    parser.add_argument("--judge", required=True, help="classifier checkpoint that measures FID and PDR")
    parser.add_argument("--reranker", help="classifier checkpoint for best-of-N (default: the judge)")
    parser.add_argument("--best_of", type=int, default=8)
    parser.add_argument("--train", action="store_true", help="train each config first and time it")
    parser.add_argument("--data_dir", default=None, help="data folder (default: the shipped course split)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    data = PokemonDataModule(data_dir=args.data_dir)
    data.setup("validate")
    judge = load_classifier(args.judge)
    reranker = classifier_scorer(args.reranker or args.judge)
    rows = []
    for root in map(Path, args.runs):
        minutes = train(root.name) if args.train else None
        checkpoint = root if root.is_file() else newest_checkpoint(root, "best")
        if checkpoint is None:
            raise FileNotFoundError(f"{root}: no checkpoints/best.ckpt in any run under it")
        model = load_pixel_lm(checkpoint)
        model.reranker = reranker
        minutes = minutes if minutes is not None else training_minutes(checkpoint)
        for name, decoding in decodings(args.best_of).items():
            start = time.perf_counter()
            results, _ = evaluate_model(model, data.splits["dev"], judge, decoding)
            rows.append({
                "run": checkpoint.parent.parent.parent.name, "train_min": round(minutes, 1), "decoding": name,
                "bits_per_pixel": results["bits_per_pixel"], "recon_acc": results["pixel_accuracy"],
                "fid": results["fid"], "pdr": results["pdr"], "decode_s": time.perf_counter() - start,
                "checkpoint": str(checkpoint), "features": results["features"],
            })  # fmt: skip
            print_row(rows[-1], header=len(rows) == 1)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    print(json.dumps(rows))


def print_row(row: dict, header: bool) -> None:
    if header:
        print("| run | train min | decoding | dev bits/pixel | recon acc | FID | PDR | decode s |")
        print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {row['run']} | {row['train_min']} | {row['decoding']} | {row['bits_per_pixel']:.3f} | "
        f"{row['recon_acc']:.3f} | {row['fid']:.1f} | {row['pdr']:.2f} | {row['decode_s']:.1f} |",
        flush=True,
    )


if __name__ == "__main__":
    main()

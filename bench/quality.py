"""Quality of trained runs on the dev split: bits/pixel, recon accuracy, FIDs and PDR per decoding.

    python bench/quality.py --runs runs/gpt2_sample runs/llama --judge CLASSIFIER.ckpt \
        [--reranker OTHER_CLASSIFIER.ckpt] [--best_of 8] [--train]

For each run folder (the newest version's best.ckpt) it completes the 80 dev prefixes greedily,
by sampling (top-k 50, top-p 0.95) and by best-of-N sampling, and prints one table and JSON.
``--train`` first trains each run's config (``configs/<name>.yaml``) and times it; otherwise the
training minutes come from the run folder (config.yaml written at the start, last.ckpt at the end).
FID is Inception's (the course's features); the judge (a classifier) measures PDR and the
classifier-feature FID beside it. Reranking best-of-N with a different classifier than the judge
keeps the PDR figure honest. The first two rows are the reference points, measured the same way:
the dev prefixes completed with the bottom of the nearest training image (a model should beat
it) and 80 real training images (the floor of an 80-image FID).
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from checkpointing import CheckpointError, load_pixel_lm  # noqa: E402
from cli import newest_checkpoint  # noqa: E402
from datamodules import PokemonDataModule  # noqa: E402
from lightning_modules import Decoding  # noqa: E402
from evaluation.scoring import QualityJudge, classifier_scorer, evaluate_model, load_classifier  # noqa: E402


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
    parser.add_argument("--judge", required=True, help="classifier checkpoint that measures PDR and the classifier FID")
    parser.add_argument("--reranker", help="classifier checkpoint for best-of-N (default: the judge)")
    parser.add_argument("--best_of", type=int, default=8)
    parser.add_argument("--train", action="store_true", help="train each config first and time it")
    parser.add_argument("--data_dir", default=None, help="data folder (default: the shipped course split)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    data = PokemonDataModule(data_dir=args.data_dir)
    data.setup("validate")
    classifier = load_classifier(args.judge)
    judge = QualityJudge(data.splits["dev"], data.palette, data.splits["train"], data.prefix_len, classifier)
    reranker = classifier_scorer(args.reranker or args.judge)
    rows = reference_rows(judge)
    for row in rows:
        print_row(row, header=row is rows[0])
    for root in map(Path, args.runs):
        minutes = train(root.name) if args.train else None
        checkpoint = root if root.is_file() else newest_checkpoint(root, "best")
        if checkpoint is None:
            raise FileNotFoundError(f"{root}: no checkpoints/best.ckpt in any run under it")
        model = load_pixel_lm(checkpoint)
        model.reranker = reranker
        minutes = minutes if minutes is not None else training_minutes(checkpoint)
        for name, decoding in decodings(args.best_of).items():
            results, _ = evaluate_model(model, judge, decoding)
            rows.append({
                "run": checkpoint.parent.parent.parent.name, "train_min": round(minutes, 1), "decoding": name,
                "bits_per_pixel": results["bits_per_pixel"], "recon_acc": results["pixel_accuracy"],
                "fid": results["fid"], "fid_classifier": results["fid_classifier"], "pdr": results["pdr"],
                "decode_s": results["decode_s"], "checkpoint": str(checkpoint), "features": results["features"],
            })  # fmt: skip
            print_row(rows[-1], header=False)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    print(json.dumps(rows))


def reference_rows(judge: QualityJudge) -> list[dict]:
    """The reference points as table rows (Inception and classifier FIDs; nothing was decoded)."""
    references = judge.references()
    sets = {"nearest": "(nearest-neighbour copy)", "real": f"({len(judge.reference)} real train images)"}
    return [
        {"run": label, "train_min": None, "decoding": None, "bits_per_pixel": None, "recon_acc": None,
         "fid": references[f"fid_ref_{name}"], "fid_classifier": references[f"fid_classifier_ref_{name}"],
         "pdr": None, "decode_s": None, "checkpoint": None, "features": judge.descriptions["fid"]}
        for name, label in sets.items()
    ]  # fmt: skip


def print_row(row: dict, header: bool) -> None:
    if header:
        print("| run | train min | decoding | dev bits/pixel | recon acc | Inception FID | classifier FID | PDR | decode s |")
        print("|---|---|---|---|---|---|---|---|---|")
    cells = [row["run"], row["train_min"], row["decoding"]]
    for key, digits in (("bits_per_pixel", 3), ("recon_acc", 3), ("fid", 1), ("fid_classifier", 1), ("pdr", 2), ("decode_s", 1)):  # fmt: skip
        cells.append("-" if row[key] is None else f"{row[key]:.{digits}f}")
    print("| " + " | ".join("-" if cell is None else str(cell) for cell in cells) + " |", flush=True)


if __name__ == "__main__":
    main()

"""Dev FID and PDR of each recipe's ``best.ckpt``, with the recipe's own decoding."""

import sys
from pathlib import Path


def score_runs(report: dict, judge_path: str, threads: int) -> None:
    """FID and PDR of each run's best.ckpt on the dev split, with the recipe's own decoding (best-of-N kept
    by the run's own reranker, as ``predict.py`` keeps it), into each row's ``quality``."""
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
        print(
            f"{row['recipe']}: dev FID {results['fid']:.1f}, PDR {results['pdr']:.2f} ({checkpoint})", file=sys.stderr
        )

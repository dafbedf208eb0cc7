"""Measure what the course measures, on the dev split: FID, PDR, pixel accuracy, bits per pixel.

A model: ``python evaluate.py --config configs/gpt2.yaml --classifier CLASSIFIER.ckpt [--ckpt_path ...]``
completes the 80 dev prefixes with the config's ``decoding`` (override with
``--model.init_args.decoding.do_sample=true`` and friends) using the newest run's best checkpoint
unless ``--ckpt_path`` says otherwise.
A file: ``python evaluate.py --images FILE --classifier CLASSIFIER.ckpt [--reference dev.txt]``
scores any file of full images against real ones. Both print a table and JSON (``--json_out``).
"""

import json
import sys

import torch
from jsonargparse import ArgumentParser

from checkpointing import load_weights
from cli import PixelCLI
from datamodules.pokemon import SHIPPED_DATA
from datamodules.pixel_files import PixelFormatError, atomic_write_bytes, read_images, write_images
from evaluation.scoring import evaluate_model, image_quality, load_classifier, table
from evaluation.metrics import FeatureKind, FeaturesUnavailable, InceptionResize


def add_scoring_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--classifier", type=str, required=True, help="PokemonClassifier checkpoint (PDR, classifier FID features).")
    parser.add_argument("--features", type=FeatureKind, default="classifier", help="FID features: classifier (offline) or inception (torch-fidelity).")
    parser.add_argument("--inception_weights", type=str | None, default=None, help="Local Inception-v3 weights for --features inception.")
    parser.add_argument("--inception_resize", type=InceptionResize, default="bilinear", help="20 -> 299 px for Inception: torchmetrics' bilinear, or nearest.")
    parser.add_argument("--json_out", type=str | None, default=None, help="Also write the results as JSON to this file.")
    parser.add_argument("--completions_out", type=str | None, default=None, help="Write the dev completions here (a classifier's negatives_file).")  # fmt: skip


class EvaluateCLI(PixelCLI):
    """PixelCLI's predict set-up (config, checkpoint look-up, decoding options) plus scoring options."""

    def __init__(self, args: list[str] | None) -> None:
        super().__init__("predict", args=args)

    def add_arguments_to_parser(self, parser) -> None:
        super().add_arguments_to_parser(parser)
        add_scoring_arguments(parser)


def fid_options(config) -> dict:
    return {"features": config.features, "inception_weights": config.inception_weights, "inception_resize": config.inception_resize}


def evaluate_checkpoint(args: list[str] | None) -> tuple[dict, str | None]:
    cli = EvaluateCLI(args)
    config, model, data = cli.config, cli.model, cli.datamodule
    if cli.checkpoint_file:  # weights-only, and checked against the config's model (an exported folder: loaded already)
        load_weights(model, cli.checkpoint_file)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    data.setup("validate")
    classifier = load_classifier(config.classifier, model.device)
    results, completions = evaluate_model(model.eval(), data.splits["dev"], classifier, model.decoding, **fid_options(config))
    if config.completions_out:
        write_images(config.completions_out, completions)
    return {"checkpoint": config.ckpt_path, "classifier": config.classifier, **results}, config.json_out


def evaluate_files(args: list[str] | None) -> tuple[dict, str | None]:
    parser = ArgumentParser(description="Score a file of full images against real ones.")
    parser.add_argument("--images", type=str, required=True, help="Images to score, one per line (e.g. completions).")
    parser.add_argument("--reference", type=str, default=str(SHIPPED_DATA / "dev.txt"), help="Real images to compare with (default: the shipped dev split).")
    add_scoring_arguments(parser)
    config = parser.parse_args(args)
    classifier = load_classifier(config.classifier)
    vocab, length = classifier.hparams.vocab_size, classifier.hparams.seq_len
    images, reference = (read_images(path, length, vocab) for path in (config.images, config.reference))
    results = image_quality(images, reference, classifier, **fid_options(config))
    return {"images": config.images, "reference": config.reference, "classifier": config.classifier, **results}, config.json_out


def main(args: list[str] | None = None) -> None:
    argv = sys.argv[1:] if args is None else args
    by_file = any(arg == "--images" or arg.startswith("--images=") for arg in argv)
    try:
        results, json_out = (evaluate_files if by_file else evaluate_checkpoint)(args)
    except (FeaturesUnavailable, FileNotFoundError, PixelFormatError, ValueError) as error:
        sys.exit(f"evaluate.py: error: {error}")  # one line saying what to fix, not a traceback
    print(table(results))
    print(json.dumps(results))
    if json_out:
        atomic_write_bytes(json_out, (json.dumps(results, indent=2) + "\n").encode())


if __name__ == "__main__":
    main()

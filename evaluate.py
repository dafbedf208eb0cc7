"""Measure what the course measures, on the dev split: FID, PDR, pixel accuracy, bits per pixel.

A model: ``python evaluate.py --config configs/gpt2.yaml [--classifier CLASSIFIER.ckpt] [--ckpt_path ...]``
completes the 80 dev prefixes with the config's ``decoding`` (override with
``--model.init_args.decoding.do_sample=true`` and friends) using the newest run's best checkpoint
unless ``--ckpt_path`` says otherwise.
A file: ``python evaluate.py --images FILE [--reference dev.txt] [--classifier CLASSIFIER.ckpt]``
scores any file of full images against real ones. Both print a table and JSON (``--json_out``).

FID is Inception's (the course's features, offline after ``pip install -r requirements.txt``),
printed beside its reference points: a nearest-neighbour copy from the training images and real
training images (``evaluation/references.py``). A classifier adds PDR and the classifier-feature FID.
"""

import json
import sys

import torch
from jsonargparse import ArgumentParser

from checkpointing import load_weights
from cli.errors import reported_errors
from cli.predict import PredictCLI
from datamodules.pixel_files import SHIPPED_DATA, read_images, read_palette, write_images
from evaluation.metrics import FeatureKind
from evaluation.scoring import CLASSIFIER_HINT, QualityJudge, evaluate_model, load_classifier, table
from files.atomic_write import atomic_write_bytes

SEQ_LEN = 400  # --images files hold full 20 x 20 images


def add_scoring_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--classifier", type=str | None, default=None, help="PokemonClassifier checkpoint: adds PDR and the classifier-feature FID.")  # fmt: skip
    parser.add_argument("--features", type=FeatureKind, default="inception", help="Features of the headline FID: inception (the course's) or classifier.")  # fmt: skip
    parser.add_argument(
        "--json_out", type=str | None, default=None, help="Also write the results as JSON to this file."
    )
    parser.add_argument("--completions_out", type=str | None, default=None, help="Write the dev completions here (a classifier's negatives_file).")  # fmt: skip


class EvaluateCLI(PredictCLI):
    """PredictCLI's set-up (config, checkpoint look-up, decoding options) plus scoring options."""

    def add_arguments_to_parser(self, parser) -> None:
        super().add_arguments_to_parser(parser)
        add_scoring_arguments(parser)


def evaluate_checkpoint(args: list[str] | None) -> tuple[dict, str | None]:
    cli = EvaluateCLI(args)
    config, model, data = cli.config, cli.model, cli.datamodule
    if cli.checkpoint_file:  # weights-only, and checked against the config's model (an exported folder: loaded already)
        load_weights(model, cli.checkpoint_file)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    data.setup("validate")
    classifier = load_classifier(config.classifier, model.device) if config.classifier else None
    judge = QualityJudge(
        data.splits["dev"], data.palette, data.splits["train"], model.hparams.prefix_len, classifier,
        config.features, data.image_height, data.image_width, model.device,
    )  # fmt: skip
    results, completions = evaluate_model(model.eval(), judge, model.decoding)
    if config.completions_out:
        write_images(config.completions_out, completions)
    return {"checkpoint": config.ckpt_path, "classifier": config.classifier, **results}, config.json_out


def evaluate_files(args: list[str] | None) -> tuple[dict, str | None]:
    parser = ArgumentParser(description="Score a file of full images against real ones.", exit_on_error=False)
    parser.add_argument("--images", type=str, required=True, help="Images to score, one per line (e.g. completions).")
    parser.add_argument("--reference", type=str, default=str(SHIPPED_DATA / "dev.txt"), help="Real images to compare with (default: the shipped dev split).")  # fmt: skip
    parser.add_argument("--data_dir", type=str, default=str(SHIPPED_DATA), help="Folder whose colormap.txt renders the images and whose train.txt gives the reference points.")  # fmt: skip
    parser.add_argument("--prefix_len", type=int, default=240, help="Pixels of each reference image the nearest-neighbour reference keeps.")  # fmt: skip
    add_scoring_arguments(parser)
    config = parser.parse_args(args)
    classifier = load_classifier(config.classifier) if config.classifier else None
    palette = read_palette(f"{config.data_dir}/colormap.txt")
    images, reference, train = (read_images(path, SEQ_LEN, len(palette)) for path in (config.images, config.reference, f"{config.data_dir}/train.txt"))  # fmt: skip
    judge = QualityJudge(reference, palette, train, config.prefix_len, classifier, config.features)
    results = judge(images)
    return {
        "images": config.images,
        "reference": config.reference,
        "classifier": config.classifier,
        **results,
    }, config.json_out


@reported_errors()  # bad input: one line "error: ...", status 2; SIGTERM / Ctrl-C: 143 / 130, no output replaced
def main(args: list[str] | None = None) -> None:
    argv = sys.argv[1:] if args is None else args
    by_file = any(arg == "--images" or arg.startswith("--images=") for arg in argv)
    results, json_out = (evaluate_files if by_file else evaluate_checkpoint)(args)
    if results["classifier"] is None:
        print(CLASSIFIER_HINT)
    print(table(results))
    print(json.dumps(results))
    if json_out:
        atomic_write_bytes(json_out, (json.dumps(results, indent=2) + "\n").encode())


if __name__ == "__main__":
    main()

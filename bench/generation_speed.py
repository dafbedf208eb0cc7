"""Seconds to complete the 80 test prefixes, greedy and sampled: ``PixelLM.complete`` beside the course's
``model.generate`` in batches of 16, with the same weights (the greedy outputs are saved to compare)."""

import time

from bench.device_clock import synchronize
from bench.workload import DATA, build_model, load_config

SAMPLED = {"do_sample": True, "top_k": 50, "top_p": 0.95}


def generate_project(args) -> dict:
    """``PixelLM.complete`` on all 80 prefixes at once (a KV cache allocated once and filled in place)."""
    from generation.decoding import Decoding

    model = build_model(load_config(args.config), args.ckpt).to(args.device)
    prefixes = test_prefixes().to(args.device)
    model.complete(prefixes[:2, :-8])  # warm-up: first calls allocate and pick kernels
    return time_modes(lambda decoding: model.complete(prefixes, Decoding(**decoding)), args)


def generate_course(args) -> dict:
    """Batches of 16, ``model.generate(..., max_length=400)`` per batch."""
    import torch

    model = build_model(load_config(args.config), args.ckpt).model.to(args.device)
    model.eval()
    prefixes = test_prefixes().to(args.device)
    batches = list(torch.utils.data.DataLoader(prefixes, batch_size=16))

    def complete(decoding: dict):
        torch.manual_seed(decoding.get("seed", 0))
        outputs = []
        for inputs in batches:
            mask = torch.ones_like(inputs)
            outputs.append(model.generate(inputs, attention_mask=mask, max_length=400, **decoding))
        return torch.cat(outputs)

    model.generate(prefixes[:2, :-8], max_length=240)  # the same warm-up as the project's
    return time_modes(complete, args)


def test_prefixes():
    from datamodules.pixel_files import read_images

    return read_images(DATA / "test.txt", 240, 167)


def time_modes(complete, args) -> dict:
    """Seconds of ``complete`` greedy and sampled; the greedy images go to ``args.out``."""
    import torch

    result = {}
    for name, decoding in (("greedy", {"do_sample": False}), ("sampled", SAMPLED)):
        synchronize(args.device)
        start = time.perf_counter()
        images = complete(decoding)
        synchronize(args.device)
        result[f"{name}_s"] = time.perf_counter() - start
        assert images.shape == (80, 400), images.shape
        if name == "greedy":
            torch.save(images.cpu(), args.out)
    return result

"""Training tokens per second: the project's ``train.py`` path beside the course's plain PyTorch loop."""

import tempfile

from bench.device_clock import StepClock
from bench.workload import DATA, build_model, load_config


def train_project(args) -> dict:
    """What ``train.py --config X`` runs (FitCLI: Trainer + PixelLM + PokemonDataModule, the config's logger,
    callbacks and progress bar), stopped after ``args.warmup + args.steps`` steps."""
    from cli.fit import FitCLI

    with tempfile.TemporaryDirectory() as runs:
        cli = FitCLI(
            args=[
                "--config", args.config, "--trainer.default_root_dir", runs, "--data.data_dir", str(DATA),
                f"--trainer.max_steps={args.warmup + args.steps}", "--trainer.max_epochs=-1",
                f"--trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}", "--trainer.devices=1",
            ],
        )  # fmt: skip
        clock = StepClock(args.warmup, args.device)
        cli.trainer.callbacks.append(clock.callback)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return {"tokens_per_s": clock.tokens / clock.seconds, "seconds": clock.seconds, "tokens": clock.tokens}


def train_course(args) -> dict:
    """The course's loop: a DataLoader, the same model, CrossEntropyLoss on seq[:-1] -> seq[1:], AdamW with the
    config's lr, weight decay and gradient clipping, ``loss.item()`` per step."""
    import torch
    from torch.utils.data import DataLoader

    from datamodules.pixel_files import read_images

    config = load_config(args.config)
    model = build_model(config, None).model.to(args.device)
    hp, data, trainer = config["model"]["init_args"], config["data"], config["trainer"]
    images = read_images(DATA / "train.txt", 400, 167)
    loader = DataLoader(images, batch_size=data.get("batch_size", 16), shuffle=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=hp.get("lr", 1e-3), weight_decay=hp.get("weight_decay", 0.1))
    criterion = torch.nn.CrossEntropyLoss()
    clip = trainer.get("gradient_clip_val")
    clock = StepClock(args.warmup, args.device)
    model.train()
    step = 0
    while step < args.warmup + args.steps:
        epoch_loss = 0.0
        for batch_idx, seq in enumerate(loader):
            seq = seq.to(args.device)
            logits = model(input_ids=seq[:, :-1], use_cache=False).logits
            loss = criterion(logits.reshape(-1, logits.shape[-1]), seq[:, 1:].reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            epoch_loss += loss.item()
            step += 1
            clock.tick(len(seq), batch_idx, step)
            if step == args.warmup + args.steps:
                break
    return {"tokens_per_s": clock.tokens / clock.seconds, "seconds": clock.seconds, "tokens": clock.tokens}

"""The SampleImages callback: grids of dev completions on disk and in W&B while training."""

import yaml
from PIL import Image

from checkpointing.run_folders import versions
from conftest import TINY
from datamodules.pixel_files import read_images, read_palette
from run_logs import history


def test_samples_land_on_disk_and_in_wandb(train_tiny, tmp_path, small_data):
    config = yaml.safe_load(TINY.read_text())
    config["trainer"]["callbacks"].append(
        {"class_path": "callbacks.SampleImages", "init_args": {"every_n_epochs": 1, "num_images": 4}}
    )
    path = tmp_path / "samples.yaml"
    path.write_text(yaml.safe_dump(config))
    train_tiny("--trainer.max_steps=-1", "--trainer.max_epochs=2", config=path, wandb_mode="offline")

    run_dir = tmp_path / "runs" / "version_0"
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    picture = Image.open(run_dir / "samples" / "epoch_002.png").convert("RGB")
    assert picture.size == (8 * 82 + 2, 82 + 2)  # 4 pairs in one row, 80 px cells and 2 px gaps
    # The left cell of each pair is the real dev image, pixel for pixel (row 12 carries the red prefix line).
    dev = read_images(small_data / "dev.txt")
    palette = read_palette(small_data / "colormap.txt")
    for pair in range(4):
        for row in (0, 5, 11, 13, 19):
            for col in range(20):
                colour = tuple(palette[dev[pair, row * 20 + col]].tolist())
                assert picture.getpixel((2 + 2 * pair * 82 + col * 4, 2 + row * 4)) == colour
    assert picture.getpixel((2 + 82, 2 + 12 * 4)) == (255, 0, 0)  # the completion shows the boundary too

    uploaded = list(run_dir.glob("wandb/offline-run-*/files/media/images/**/*.png"))
    assert len(uploaded) == 2  # one grid per epoch, waiting for `wandb sync`
    logged = [row for row in history(run_dir) if row.get("samples/dev/_type") == "images/separated"]
    assert [row["samples/dev/captions"][0].split(":")[0] for row in logged] == ["epoch 1", "epoch 2"]
    assert [row["trainer/global_step"] for row in logged] == [6, 12]  # 48 images in batches of 8


def test_samples_are_one_sample_per_prefix_whatever_best_of(train_tiny, tmp_path):
    """best_of is prediction's (with a reranker trained after the model): the grids draw one sample, so a
    run decoding best-of-4 shows the very grid of a run decoding one."""
    config = yaml.safe_load(TINY.read_text())
    config["trainer"]["callbacks"].append({"class_path": "callbacks.SampleImages", "init_args": {"every_n_epochs": 1}})
    config["model"]["init_args"]["decoding"] = {"do_sample": True, "seed": 1}
    path = tmp_path / "samples.yaml"
    path.write_text(yaml.safe_dump(config))
    grids = []
    for best_of in (1, 4):
        train_tiny("--trainer.max_steps=6", f"--model.init_args.decoding.best_of={best_of}", config=path)
        grids.append(versions(tmp_path / "runs")[-1])
    assert [run.name for run in grids] == ["version_0", "version_1"]
    first, second = (run / "samples" / "epoch_001.png" for run in grids)
    assert first.read_bytes() == second.read_bytes()

"""callbacks.ElapsedTime with CSVLogger: each validation's seconds and metrics, as bench/time_to_quality reads them."""

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger

from bench.validation_records import read_records
from callbacks import ElapsedTime
from datamodules import PokemonDataModule
from lightning_modules import PixelLM
from tiny_models import ARCHITECTURES


def test_validations_are_timed_in_metrics_csv(tmp_path, small_data):
    torch.manual_seed(0)
    model = PixelLM("gpt2", ARCHITECTURES["gpt2"], recon_every_n_epochs=2)
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=4, limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=1,
        logger=CSVLogger(tmp_path / "run", name="csv"), callbacks=[ElapsedTime()], enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, datamodule=PokemonDataModule(data_dir=str(small_data), batch_size=8))
    assert (tmp_path / "run" / "csv" / "version_0" / "metrics.csv").is_file()
    *validations, end = read_records(tmp_path / "run")
    assert [record["epoch"] for record in validations] == [0, 1, 2, 3]  # not the sanity check's
    assert [record["epoch"] for record in validations if "val/recon_acc" in record] == [1, 3]  # never a stale value
    assert all(0 < record["val/bits_per_pixel"] < 8 for record in validations)
    seconds = [record["elapsed_s"] for record in validations]
    assert 0 < seconds[0] and seconds == sorted(seconds)
    assert end["event"] == "fit_end" and end["elapsed_s"] >= seconds[-1] and end["step"] == trainer.global_step == 8

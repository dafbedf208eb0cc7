"""Clock reads that count the device's queued work, and the training steps' clock built on them."""

import time


def synchronize(device: str) -> None:
    """Waits for the GPU's queued work, so that a clock read after it counts that work."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


class StepClock:
    """Lightning callback: the interval and tokens of each training step after ``warmup`` steps."""

    def __init__(self, warmup: int, device: str) -> None:
        from lightning.pytorch.callbacks import Callback

        clock = self

        class _Clock(Callback):
            def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
                clock.tick(len(batch), batch_idx, trainer.global_step)

        self.callback = _Clock()
        self.warmup = warmup
        self.device = device
        self.last = None
        self.seconds = 0.0
        self.tokens = 0

    def tick(self, batch_size: int, batch_idx: int, step: int) -> None:
        synchronize(self.device)
        now = time.perf_counter()
        if self.last is not None and batch_idx > 0 and step > self.warmup:
            self.seconds += now - self.last
            self.tokens += batch_size * 399
        self.last = now

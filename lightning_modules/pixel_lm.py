"""A Hugging Face causal language model over palette indices, as a LightningModule."""

import math
from collections.abc import Callable
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.trainer.states import TrainerFn

from datamodules.negatives import fit_bigram
from generation.best_of import keep_best
from generation.complete import complete, evaluating
from generation.decoding import Decoding
from lightning_modules.architecture import build_causal_lm
from lightning_modules.optimizers import build_optimizer, build_schedule, check_optimizer_settings


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names the step."""


class PixelLM(L.LightningModule):
    """Next-pixel prediction with any ``transformers`` causal LM, built from its config (not pretrained).

    Args:
        model_type: A ``transformers`` model type: ``gpt2``, ``llama``, ``mistral``, ``qwen2``, ``qwen3``, ...
        model_config: Keys of that architecture's config class (``n_layer`` for GPT-2,
            ``num_hidden_layers`` for Llama, ...). Vocabulary size and context length come from the data.
        vocab_size: Palette size; linked from the data module.
        seq_len: Tokens per image; linked from the data module.
        prefix_len: Tokens given at test time; linked from the data module.
        lr: Peak learning rate.
        weight_decay: Decoupled weight decay.
        betas: AdamW betas.
        optimizer: ``adamw`` for every weight, or ``muon``: Muon for the hidden matrices inside the blocks,
            AdamW for embeddings, output head and norms, at the same learning rate and weight decay
            (:mod:`lightning_modules.optimizers`).
        warmup_steps: Steps of linear warm-up from 0 to ``lr``.
        schedule: ``constant`` after warm-up (the course's sample code), or ``cosine`` decay to ``min_lr_ratio * lr``.
        min_lr_ratio: Final learning rate of the cosine schedule, as a share of ``lr``.
        decoding: How validation samples and predictions are decoded (reconstruction accuracy is always greedy);
            :mod:`generation`.
        input_noise: Share of training input pixels replaced by a random colour (the targets stay the
            true pixels): a regulariser that costs nothing per step, unlike attention dropout's masks.
        grid_positions: Add learned row and column embeddings to the token embeddings
            (:mod:`lightning_modules.grid_positions`): the model knows each pixel's column and row.
        image_width: Pixels per row, for ``grid_positions`` and ``decoding.consensus``.
        compile: Compile the teacher-forced forward pass (training, validation loss) with ``torch.compile``;
            pays off on a GPU. Generation stays uncompiled: its shapes change every step.
        attention_chunks: Above 1, a CPU training step's causal attention cuts the queries into this many
            chunks that each see only the keys up to their own end (:mod:`lightning_modules.causal_chunks`):
            the same attention with less of the masked-away arithmetic. 1: ``transformers``' SDPA as is.
        recon_every_n_epochs: During ``fit``, greedy-complete the dev prefixes for ``val/recon_acc`` only at
            validations after an epoch whose number (counted from 1) this divides. The completion costs more
            than the dev loss (about 3 of a validation's 4.6 s at one CPU thread); every validation still
            logs ``val/loss`` and ``val/bits_per_pixel``. ``trainer.validate`` always completes.
    """

    def __init__(
        self,
        model_type: str = "gpt2",
        model_config: dict[str, Any] | None = None,
        vocab_size: int = 167,
        seq_len: int = 400,
        prefix_len: int = 240,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        betas: tuple[float, float] = (0.9, 0.999),
        optimizer: Literal["adamw", "muon"] = "adamw",
        warmup_steps: int = 0,
        schedule: Literal["constant", "cosine"] = "constant",
        min_lr_ratio: float = 0.1,
        decoding: Decoding | None = None,
        input_noise: float = 0.0,
        grid_positions: bool = False,
        image_width: int = 20,
        compile: bool = False,
        attention_chunks: int = 1,
        recon_every_n_epochs: int = 1,
    ) -> None:
        super().__init__()
        check_optimizer_settings(lr=lr, weight_decay=weight_decay, warmup_steps=warmup_steps)
        if not 0.0 <= input_noise < 1.0:
            raise ValueError(f"model.input_noise: must be in [0, 1), got {input_noise}")
        if attention_chunks < 1:
            raise ValueError(f"model.attention_chunks: must be 1 or more, got {attention_chunks}")
        if recon_every_n_epochs < 1:
            raise ValueError(f"model.recon_every_n_epochs: must be 1 or more, got {recon_every_n_epochs}")
        self.save_hyperparameters()
        self.decoding = decoding or Decoding()
        # What best-of-N decoding (generation.best_of) keeps the best by. Plain attributes, not buffers, so
        # none of them enters this model's checkpoints. reranker: scores (N, seq_len) images, higher is
        # better (a classifier, set by predict.py). bigram: (vocab, vocab) log-probabilities of the training
        # images, for decoding.contrast; palette: (vocab, 3) uint8 colours, for decoding.consensus; both
        # set by use_training_images / use_palette, or in setup from the trainer's data module.
        self.reranker: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.bigram: torch.Tensor | None = None
        self.palette: torch.Tensor | None = None
        self.model = build_causal_lm(
            model_type, model_config, vocab_size, seq_len, attention_chunks, grid_positions, image_width
        )
        self._compiled_forward = None

    @property
    def example_input_array(self) -> torch.Tensor | None:
        """One image's input, which Lightning's model summary runs to count FLOPs (without it: "Total FLOPs: 0").
        None on a GPU, where torch's FlopCounterMode asserts on grouped-query SDPA (the default llama, H200)."""
        return torch.zeros(1, self.hparams.seq_len - 1, dtype=torch.long) if self.device.type == "cpu" else None

    def setup(self, stage: str) -> None:
        # The data module's palette and training images, unless the caller gave them (use_palette, use_training_images).
        data = self.trainer.datamodule
        if self.palette is None and getattr(data, "palette", None) is not None:
            self.use_palette(data.palette)
        if self.bigram is None and getattr(data, "splits", {}).get("train") is not None:
            self.use_training_images(data.splits["train"])

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits for the token after each position."""
        if self.hparams.get("compile") and self._compiled_forward is None and self.training:
            # A compiled function, not a compiled module: checkpoint keys stay those of self.model. Compiled at
            # the first training step: not in configure_model, which WeightAveraging reserves for sharding (and
            # warns about), nor for the model summary's one-image forward.
            self._compiled_forward = torch.compile(self.model.forward)
        forward = self._compiled_forward or self.model
        return forward(input_ids=tokens, use_cache=False).logits

    def token_losses(self, images: torch.Tensor, reduction: str = "none", noise: float = 0.0) -> torch.Tensor:
        """Cross-entropy in nats of each pixel but the first, given the ones before it: ``(B, seq_len - 1)``,
        or with ``reduction="mean"`` their mean (a third faster backward than averaging the per-pixel losses).
        ``noise``: share of the input pixels replaced by random colours (targets stay the true ones)."""
        inputs = images[:, :-1]
        if noise > 0:
            noisy = torch.rand(inputs.shape, device=inputs.device) < noise
            inputs = torch.where(noisy, torch.randint_like(inputs, self.hparams.vocab_size), inputs)
        logits = self(inputs)
        # (N, classes) rows, not the transposed (B, classes, L) view: 3x faster forward and backward on CPU
        losses = F.cross_entropy(logits.flatten(0, 1), images[:, 1:].flatten(), reduction=reduction)
        return losses if reduction == "mean" else losses.view(images.shape[0], -1)

    def training_step(self, images: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = self.token_losses(images, reduction="mean", noise=self.hparams.get("input_noise", 0.0))
        if not torch.isfinite(loss):  # stop before the step: a NaN update would ruin every weight
            raise NonFiniteLossError(
                f"step {self.global_step}: the training loss is {loss.item()}; the run diverged. Lower "
                "model.init_args.lr or raise warmup_steps (checkpoints saved before this step are kept)"
            )
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(images))
        return loss

    def validation_step(self, images: torch.Tensor, batch_idx: int) -> None:
        losses = self.token_losses(images)
        given = self.hparams.prefix_len
        # Position i predicts pixel i + 1, so the generated pixels are scored from position given - 1 on.
        bits = losses[:, given - 1 :].mean() / math.log(2)
        metrics = {"val/loss": losses.mean(), "val/bits_per_pixel": bits}
        if self._completes_at_this_validation():
            completed = self.complete(images[:, :given], Decoding())
            metrics["val/recon_acc"] = (completed[:, given:] == images[:, given:]).float().mean()
        self.log_dict(metrics, prog_bar=True, batch_size=len(images), sync_dist=True)

    def _completes_at_this_validation(self) -> bool:
        every = self.hparams.get("recon_every_n_epochs", 1)
        fitting = self._trainer is not None and self._trainer.state.fn == TrainerFn.FITTING
        return not fitting or (self.current_epoch + 1) % every == 0

    @torch.inference_mode()
    def complete(self, prefixes: torch.Tensor, decoding: Decoding | None = None) -> torch.Tensor:
        """Completes ``(B, prefix)`` token prefixes to full ``(B, seq_len)`` images with ``decoding`` (default:
        the module's), keeping the best of ``decoding.best_of`` (:mod:`generation.best_of`)."""
        decoding = decoding or self.decoding
        with evaluating(self.model):
            candidates = complete(self.model, prefixes, self.hparams.seq_len, decoding)
            if decoding.best_of == 1:
                return candidates
            candidates = candidates.view(len(prefixes), decoding.best_of, -1)
            given, width = prefixes.shape[1], self.hparams.image_width
            return keep_best(
                candidates, given, decoding, self.token_losses, self.reranker, self.bigram, self.palette, width
            )

    def use_palette(self, palette: torch.Tensor) -> None:
        """The ``(vocab, 3)`` colours that ``decoding.consensus`` compares candidates by."""
        if palette.shape != (self.hparams.vocab_size, 3):
            raise ValueError(f"palette: expected ({self.hparams.vocab_size}, 3) colours, got {tuple(palette.shape)}")
        self.palette = palette

    def use_training_images(self, images: torch.Tensor) -> None:
        """Fits the bigram that ``decoding.contrast`` scores against on ``(N, seq_len)`` training images."""
        self.bigram = fit_bigram(images, self.hparams.vocab_size).log()

    def predict_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        indices, prefixes = batch
        # Seeding by the first image's index keeps sampled files the same for any batch position.
        return {"indices": indices, "images": self.complete(prefixes, self.decoding.for_batch(int(indices[0])))}

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = build_optimizer(self.model, hp.get("optimizer", "adamw"), hp.lr, hp.weight_decay, hp.betas)
        total = self.trainer.estimated_stepping_batches if hp.schedule == "cosine" else None
        scheduler = build_schedule(optimizer, hp.schedule, hp.warmup_steps, total, hp.min_lr_ratio)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

"""A Hugging Face causal language model over palette indices, as a LightningModule."""

import math
from collections.abc import Callable
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.seed import isolate_rng
from transformers import AutoConfig, AutoModelForCausalLM, get_constant_schedule_with_warmup
from transformers import get_cosine_with_min_lr_schedule_with_warmup

from datamodules.render import to_rgb
from lightning_modules import causal_chunks
from generation.decoding import Decoding
from lightning_modules.grid_positions import add_grid_positions
from generation.kv_cache import FilledInPlaceCache
from generation.progress import pixel_progress
from datamodules.negatives import fit_bigram
from lightning_modules.optimizers import MuonAdamW, muon_parameters

# Keys that name the context length in each architecture's config class.
POSITION_KEYS = {"gpt2": "n_positions"}


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names the step."""


def check_optimizer_settings(lr: float, weight_decay: float, warmup_steps: int) -> None:
    """Refuses, when the model is built, values that AdamW or the schedule would reject only once training starts."""
    if not lr > 0:  # also catches NaN
        raise ValueError(f"model.lr: must be greater than 0, got {lr}")
    if not weight_decay >= 0:
        raise ValueError(f"model.weight_decay: must be 0 or more, got {weight_decay}")
    if warmup_steps < 0:
        raise ValueError(f"model.warmup_steps: must be 0 or more, got {warmup_steps}")


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
        decoding: How validation samples and predictions are decoded (reconstruction accuracy is always greedy).
        input_noise: Share of training input pixels replaced by a random colour (the targets stay the
            true pixels): a regulariser that costs nothing per step, unlike attention dropout's masks.
        grid_positions: Add learned row and column embeddings to the token embeddings
            (:mod:`lightning_modules.grid_positions`): the model knows each pixel's column and row.
        image_width: Pixels per row, for ``grid_positions``.
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
        # Scores (N, seq_len) images for best-of-N decoding (higher is better); a plain function,
        # not a submodule, so a classifier set here never enters this model's checkpoints.
        self.reranker: Callable[[torch.Tensor], torch.Tensor] | None = None
        # (vocab, vocab) log-probabilities of a pixel given the one before it in the training images, for
        # decoding.contrast; set by use_training_images, or on first use from the trainer's data module.
        self.bigram: torch.Tensor | None = None
        # (vocab, 3) uint8 colours of the palette indices, for decoding.consensus; set by use_palette, or on
        # first use from the trainer's data module.
        self.palette: torch.Tensor | None = None
        config = self.build_config(model_type, model_config, vocab_size, seq_len)
        attention = {}
        if attention_chunks > 1:
            setattr(config, causal_chunks.CHUNKS_KEY, attention_chunks)
            attention = {"attn_implementation": causal_chunks.NAME}
        self.model = AutoModelForCausalLM.from_config(config, **attention)
        if grid_positions:
            if image_width < 1 or seq_len % image_width:
                raise ValueError(f"model.image_width: {image_width} does not divide the {seq_len} pixels of an image")
            add_grid_positions(self.model, seq_len // image_width, image_width)
        self._compiled_forward = None
        # One image's inputs: Lightning's model summary runs them to count FLOPs (without, it prints "Total FLOPs: 0").
        self.example_input_array = torch.zeros(1, seq_len - 1, dtype=torch.long)

    @staticmethod
    def build_config(model_type: str, overrides: dict[str, Any] | None, vocab_size: int, seq_len: int):
        """The architecture's config: its defaults, the YAML's keys, and the data's vocabulary and length."""
        try:
            config = AutoConfig.for_model(model_type)
        except ValueError:
            raise ValueError(f"model.model_type: unknown architecture {model_type!r}") from None
        for key in overrides or {}:
            if not hasattr(config, key):
                raise ValueError(f"model.model_config: {model_type} has no config key {key!r}")
        fixed = {
            "vocab_size": vocab_size,
            POSITION_KEYS.get(model_type, "max_position_embeddings"): seq_len,
            # Every id is a colour: no token may end, start or pad a sequence.
            "bos_token_id": None,
            "eos_token_id": None,
            "pad_token_id": None,
        }
        return AutoConfig.for_model(model_type, **{**(overrides or {}), **fixed})

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
        """Completes ``(B, prefix)`` token prefixes to full ``(B, seq_len)`` images.

        All prefixes share one length, so the batch needs no padding and no attention mask, and the
        key/value cache is allocated once for the whole image (``FilledInPlaceCache``).
        Sampling is seeded by ``decoding.seed`` without touching the global random state.
        """
        decoding = decoding or self.decoding
        training = self.model.training
        self.model.eval()
        try:
            with isolate_rng():
                torch.manual_seed(decoding.seed)
                candidates = self.model.generate(
                    prefixes.repeat_interleave(decoding.best_of, dim=0),
                    max_new_tokens=self.hparams.seq_len - prefixes.shape[1],
                    min_new_tokens=self.hparams.seq_len - prefixes.shape[1],
                    cache=self._new_cache(),
                    # predict.py's bar over the generated pixels (None elsewhere)
                    streamer=pixel_progress(self.hparams.seq_len - prefixes.shape[1], len(prefixes), decoding.best_of),
                    **decoding.generate_kwargs(),
                )
            if decoding.best_of == 1:
                return candidates
            return self._keep_best(candidates.view(len(prefixes), decoding.best_of, -1), prefixes.shape[1], decoding)
        finally:
            self.model.train(training)

    def _new_cache(self) -> FilledInPlaceCache | None:
        """A cache filled in place, or None (``generate``'s default) for a sliding window shorter than an image."""
        window = getattr(self.model.config, "sliding_window", None)
        if window is not None and window < self.hparams.seq_len:
            return None
        return FilledInPlaceCache(self.hparams.seq_len)

    def _keep_best(self, candidates: torch.Tensor, given: int, decoding: Decoding) -> torch.Tensor:
        """The best of ``(B, N, seq_len)`` candidates per prefix, by the reranker or the contrast score, or
        with ``decoding.consensus``, the most typical of the best-scored few."""
        flat = candidates.flatten(0, 1)
        if self.reranker is not None:
            scores = self.reranker(flat).to(flat.device)
        else:  # mean log-probability of the pixels after the prefix, less a share of the bigram's
            scores = -self.token_losses(flat)[:, given - 1 :].mean(dim=1)
            if decoding.contrast:
                bigram = self.training_bigram().to(flat.device)
                scores = scores - decoding.contrast * bigram[flat[:, given - 1 : -1], flat[:, given:]].mean(dim=1)
        scores = scores.view(candidates.shape[:2])
        if decoding.consensus > 1:
            best = scores.topk(min(decoding.consensus, scores.shape[1]), dim=1).indices  # (B, k)
            distances = self.mean_distances(candidates).gather(1, best)
            kept = best.gather(1, distances.argmin(dim=1, keepdim=True)).squeeze(1)
        else:
            kept = scores.argmax(dim=1)
        return candidates[torch.arange(len(candidates)), kept]

    def mean_distances(self, candidates: torch.Tensor) -> torch.Tensor:
        """``(B, N)``: each of ``(B, N, seq_len)`` candidates' mean distance to the N of its prefix, between
        their RGB colours after a 3 x 3 box blur (decoding.consensus). The given pixels are the same in all
        N, so only the generated ones and the blur across the boundary count."""
        width, (count, n, length) = self.hparams.image_width, candidates.shape
        if length % width:
            raise ValueError(f"decoding.consensus: model.image_width {width} does not divide the {length} pixels of an image")
        images = to_rgb(candidates.flatten(0, 1), self.colour_palette(), length // width, width).float()
        blurred = F.avg_pool2d(images, 3, stride=1, padding=1, count_include_pad=False).reshape(count, n, -1)
        return torch.cdist(blurred, blurred).mean(dim=2)

    def use_palette(self, palette: torch.Tensor) -> None:
        """The ``(vocab, 3)`` colours that ``decoding.consensus`` compares candidates by."""
        if palette.shape != (self.hparams.vocab_size, 3):
            raise ValueError(f"palette: expected ({self.hparams.vocab_size}, 3) colours, got {tuple(palette.shape)}")
        self.palette = palette

    def colour_palette(self) -> torch.Tensor:
        """The palette set by :meth:`use_palette`, or the trainer's data module's (``predict.py``) on first use."""
        if self.palette is None:
            datamodule = self._trainer.datamodule if self._trainer is not None else None
            palette = getattr(datamodule, "palette", None)
            if palette is None:
                raise ValueError("decoding.consensus: best-of-N compares colours and needs the palette; call use_palette first")
            self.use_palette(palette)
        return self.palette

    def use_training_images(self, images: torch.Tensor) -> None:
        """Fits the bigram that ``decoding.contrast`` scores against on ``(N, seq_len)`` training images."""
        self.bigram = fit_bigram(images, self.hparams.vocab_size).log()

    def training_bigram(self) -> torch.Tensor:
        """The training images' bigram log-probabilities: set by :meth:`use_training_images`, or fitted on
        the trainer's data module's training split (``predict.py``) on first use."""
        if self.bigram is None:
            datamodule = self._trainer.datamodule if self._trainer is not None else None
            train = getattr(datamodule, "splits", {}).get("train")
            if train is None:
                raise ValueError(
                    "decoding.contrast: best-of-N needs the training images' bigram; call use_training_images first"
                )
            self.use_training_images(train)
        return self.bigram

    def predict_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        indices, prefixes = batch
        # Seeding by the first image's index keeps sampled files the same for any batch position.
        return {"indices": indices, "images": self.complete(prefixes, self.decoding.for_batch(int(indices[0])))}

    def configure_optimizers(self):
        hp = self.hparams
        if hp.get("optimizer", "adamw") == "muon":
            optimizer = MuonAdamW(*muon_parameters(self.model), lr=hp.lr, weight_decay=hp.weight_decay, betas=hp.betas)
        else:
            optimizer = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay, betas=hp.betas)
        if hp.schedule == "cosine":
            total = self.trainer.estimated_stepping_batches
            scheduler = get_cosine_with_min_lr_schedule_with_warmup(
                optimizer, hp.warmup_steps, total, min_lr_rate=hp.min_lr_ratio
            )
        else:
            scheduler = get_constant_schedule_with_warmup(optimizer, hp.warmup_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

"""A small CNN that tells real Pokémon from failed completions: the project's PDR judge and FID features."""

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from datamodules.negatives import NEGATIVE_TYPES, Corruptor, fit_bigram, hflip, translate
from datamodules.pixel_files import read_images
from datamodules.render import to_rgb


def _block(channels_in: int, channels_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, padding=1), nn.BatchNorm2d(channels_out), nn.ReLU(inplace=True)
    )


class PokemonClassifier(L.LightningModule):
    """Scores how much an RGB image looks like a Pokémon (1) rather than a failed completion (0).

    Positives are real training images (mirrored and moved by a pixel or two); negatives keep a
    real top and spoil the bottom in one of several ways (``datamodules/negatives.py``),
    optionally plus completions of weak models read from ``negatives_file``. The palette and the
    bigram used for ``markov`` negatives are buffers, so a checkpoint is all a user needs.

    Args:
        vocab_size: Palette size; linked from the data module.
        seq_len: Pixels per image; linked from the data module.
        prefix_len: Pixels a negative keeps from the real image; linked from the data module.
        image_width: Pixels per row (the height is ``seq_len / image_width``).
        widths: Channels of the two convolution stages (each two 3x3 convolutions, then 2x2 pooling).
        feature_dim: Size of the penultimate layer, the feature vector used for FID.
        dropout: Dropout before the final layer.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        max_shift: Positives and negatives are moved by up to this many pixels in x and y.
        negative_types: Kinds of made-up negatives to train on (see ``NEGATIVE_TYPES``).
        negative_weights: Relative frequency of each kind; None draws them equally often.
        negatives_file: Extra negative images, one per line (e.g. completions of an early checkpoint).
        file_share: Share of negatives drawn from ``negatives_file`` when it is given.
    """

    def __init__(
        self,
        vocab_size: int = 167,
        seq_len: int = 400,
        prefix_len: int = 240,
        image_width: int = 20,
        widths: tuple[int, int] = (32, 64),
        feature_dim: int = 64,
        dropout: float = 0.2,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        max_shift: int = 1,
        negative_types: list[str] | None = None,
        negative_weights: list[float] | None = None,
        negatives_file: str | None = None,
        file_share: float = 0.3,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.negative_types = list(negative_types or NEGATIVE_TYPES)
        unknown = sorted(set(self.negative_types) - set(NEGATIVE_TYPES))
        if unknown:
            raise ValueError(f"model.negative_types: unknown {unknown}; choose from {list(NEGATIVE_TYPES)}")
        weights = negative_weights or [1.0] * len(self.negative_types)
        if len(weights) != len(self.negative_types):
            raise ValueError("model.negative_weights: give one weight per entry of negative_types")
        self.negative_weights = torch.tensor(weights, dtype=torch.float)
        self.height, self.width = seq_len // image_width, image_width
        self.register_buffer("palette", torch.zeros(vocab_size, 3, dtype=torch.uint8))
        self.register_buffer("bigram", torch.full((vocab_size, vocab_size), 1.0 / vocab_size))
        self.file_negatives: dict[str, torch.Tensor] = {}
        small, large = widths
        side = (self.height // 4) * (self.width // 4)
        self.body = nn.Sequential(
            _block(3, small), _block(small, small), nn.MaxPool2d(2),
            _block(small, large), _block(large, large), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(large * side, feature_dim), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, 1))
        # One image: Lightning's model summary runs it to count FLOPs (without, it prints "Total FLOPs: 0").
        self.example_input_array = torch.zeros(1, 3, self.height, self.width, dtype=torch.uint8)

    # --- scoring -------------------------------------------------------------------------------

    def features(self, rgb: torch.Tensor) -> torch.Tensor:
        """``(N, feature_dim)`` penultimate activations of ``(N, 3, H, W)`` RGB images.

        Takes uint8 (0..255) or float (0..1) images of any size: other sizes are area-resized to
        the training size, so an image upscaled by an integer factor gives its original features.
        """
        rgb = rgb.float() / 255 if not rgb.is_floating_point() else rgb.float()
        if rgb.shape[-2:] != (self.height, self.width):
            rgb = F.adaptive_avg_pool2d(rgb, (self.height, self.width))
        return self.body(rgb.to(self.device) - 0.5)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """Logits, ``(N,)``, that each RGB image is a real Pokémon."""
        return self.head(self.features(rgb)).squeeze(1)

    def render(self, images: torch.Tensor) -> torch.Tensor:
        """Palette indices ``(N, seq_len)`` → uint8 RGB ``(N, 3, H, W)`` with the stored palette."""
        return to_rgb(images.to(self.device), self.palette, self.height, self.width)

    @torch.no_grad()
    def probability(self, images: torch.Tensor) -> torch.Tensor:
        """Probability, ``(N,)``, that each palette-index image looks like a Pokémon (eval mode)."""
        training = self.training
        self.eval()
        try:
            return torch.sigmoid(self(self.render(images)))
        finally:
            self.train(training)

    # --- training ------------------------------------------------------------------------------

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        if datamodule is None or stage != "fit":
            return
        if datamodule.image_width != self.width or datamodule.seq_len != self.height * self.width:
            raise ValueError("model.image_width: does not match the data module's image size")
        self.palette.copy_(datamodule.palette)
        self.bigram.copy_(fit_bigram(datamodule.splits["train"], self.hparams.vocab_size))
        if self.hparams.negatives_file:
            self._load_file_negatives(self.hparams.negatives_file)

    def _load_file_negatives(self, path: str) -> None:
        images = read_images(path, self.hparams.seq_len, self.hparams.vocab_size)
        held_out = max(1, len(images) // 10) if len(images) > 1 else 0  # the last tenth checks generalisation
        self.file_negatives = {"train": images[: len(images) - held_out], "val": images[len(images) - held_out :]}

    @property
    def corruptor(self) -> Corruptor:
        return Corruptor(self.hparams.prefix_len, self.width, self.bigram.cpu())

    def _augment(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return translate(hflip(images, self.width, generator), self.width, generator, self.hparams.max_shift)

    def _negatives(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One negative per image, its kind drawn by ``negative_weights``."""
        corruptor = self.corruptor
        kinds = torch.multinomial(self.negative_weights, len(images), replacement=True, generator=generator)
        out = images.clone()
        for index, kind in enumerate(self.negative_types):
            chosen = kinds == index
            if chosen.any():
                out[chosen] = corruptor(images, kind, generator)[chosen]
        if "train" in self.file_negatives and len(self.file_negatives["train"]):
            pool = self.file_negatives["train"]
            take = torch.rand(len(images), generator=generator) < self.hparams.file_share
            picks = pool[torch.randint(0, len(pool), (int(take.sum()),), generator=generator)]
            out[take] = hflip(picks, self.width, generator)
        return out

    def training_step(self, images: torch.Tensor, batch_idx: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, ())))  # follows seed_everything
        images = images.cpu()
        positives = self._augment(images, generator)
        negatives = self._negatives(self._augment(images, generator), generator)
        logits = self(self.render(torch.cat([positives, negatives])))
        labels = torch.cat([torch.ones(len(images)), torch.zeros(len(images))]).to(logits)
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        accuracy = ((logits > 0).float() == labels).float().mean()
        self.log_dict({"train/loss": loss, "train/acc": accuracy}, prog_bar=True, batch_size=len(images))
        return loss

    def validation_step(self, images: torch.Tensor, batch_idx: int) -> None:
        """Accuracy on real dev images and on dev images spoiled each way, the same way every epoch."""
        generator = torch.Generator().manual_seed(batch_idx)
        images = images.cpu()
        sets = {"real": (images, 1.0)}
        for kind in NEGATIVE_TYPES:  # every kind, trained on or not: shows what the judge misses
            sets[kind] = (self.corruptor(images, kind, generator), 0.0)
        if batch_idx == 0 and len(self.file_negatives.get("val", ())):
            sets["file"] = (self.file_negatives["val"], 0.0)
        losses = []
        for name, (batch, label) in sets.items():
            logits = self(self.render(batch))
            labels = torch.full_like(logits, label)
            losses.append(F.binary_cross_entropy_with_logits(logits, labels))
            accuracy = ((logits > 0).float() == labels).float().mean()
            self.log(f"val/acc_{name}", accuracy, batch_size=len(batch), sync_dist=True)
        # Real images weigh as much as all negatives together, as in training.
        loss = (losses[0] + torch.stack(losses[1:]).mean()) / 2
        self.log("val/loss", loss, prog_bar=True, batch_size=len(images), sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)

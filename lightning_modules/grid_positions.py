"""Row and column embeddings: where a pixel sits in the image, added to its colour's embedding.

A causal LM sees an image as one line of 400 tokens. Rotary or learned 1-D positions tell it how far
back a pixel is (the one above is 20 tokens back) but not, without inference from the colours, in which
column it is: whether the next pixel starts a new row at the left edge. ``GridPositions`` adds a learned
row embedding and a learned column embedding to each token's embedding, as 2-D pixel models do.

``transformers`` has no such option, so :func:`add_grid_positions` puts the module inside the causal LM's
base model (its weights travel with the model's ``state_dict``, ``save_pretrained`` and exported folders)
and a forward pre-hook on that base model turns ``input_ids`` into ``inputs_embeds``: token embedding plus
grid embedding, at the positions the call covers. In ``generate``'s cached steps those come from the
call's ``position_ids`` or, when there are none, from how many positions the cache already holds, so the
cached generation sees exactly the positions of a teacher-forced forward pass.
"""

import torch
from torch import nn
from transformers import PreTrainedModel


class GridPositions(nn.Module):
    """Learned ``(row, column)`` embeddings of an image ``width`` pixels wide, up to ``height`` rows."""

    def __init__(self, height: int, width: int, hidden_size: int) -> None:
        super().__init__()
        self.width = width
        self.row = nn.Embedding(height, hidden_size)
        self.column = nn.Embedding(width, hidden_size)
        for table in (self.row, self.column):  # small, like transformers' own position tables
            nn.init.normal_(table.weight, std=0.02)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.row(positions // self.width) + self.column(positions % self.width)


def add_grid_positions(model: PreTrainedModel, height: int, width: int) -> GridPositions:
    """Installs :class:`GridPositions` in ``model``'s base model (as ``grid_positions``) and its hook."""
    base = model.base_model
    grid = GridPositions(height, width, model.get_input_embeddings().embedding_dim)
    base.grid_positions = grid
    base.register_forward_pre_hook(_embed_with_grid, with_kwargs=True)
    return grid


def _embed_with_grid(base: nn.Module, args: tuple, kwargs: dict):
    if len(args) > 1:
        raise TypeError("grid positions: pass the base model's arguments after input_ids by keyword")
    input_ids = args[0] if args else kwargs.get("input_ids")  # GPT-2 passes input_ids by position
    if input_ids is None:  # already embedded by the caller
        return None
    positions = kwargs.get("position_ids")
    if positions is None:
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        start = cache.get_seq_length() if cache is not None else 0
        positions = torch.arange(start, start + input_ids.shape[1], device=input_ids.device).unsqueeze(0)
    embeds = base.get_input_embeddings()(input_ids) + base.grid_positions(positions)
    return (), {**kwargs, "input_ids": None, "inputs_embeds": embeds}

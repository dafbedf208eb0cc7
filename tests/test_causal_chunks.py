"""Chunked causal attention (lightning_modules/causal_chunks.py) and the validation's completion cadence."""

import pytest
import torch
import torch.nn.functional as F

import lightning_modules.causal_chunks as causal_chunks
from generation.decoding import Decoding
from lightning_modules import PixelLM
from run_logs import history, metric
from tiny_models import as_option, tiny_model

LLAMA = {"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "hidden_size": 32,
         "intermediate_size": 64, "attention_dropout": 0.0}  # fmt: skip


@pytest.mark.parametrize("chunks", [2, 3, 5])
def test_chunked_attention_is_causal_attention(chunks):
    torch.manual_seed(0)
    query = torch.randn(3, 4, 37, 8, requires_grad=True)  # 37: chunks of unequal length
    key, value = (torch.randn(3, 2, 37, 8, requires_grad=True) for _ in range(2))
    grad = torch.randn(3, 4, 37, 8)

    def run(attention):
        for tensor in (query, key, value):
            tensor.grad = None
        output = attention()
        output.backward(grad)
        return [output.detach(), query.grad.clone(), key.grad.clone(), value.grad.clone()]

    expected = run(lambda: F.scaled_dot_product_attention(query, key, value, is_causal=True, enable_gqa=True))
    chunked = run(lambda: causal_chunks.causal_chunks_attention(query, key, value, chunks, enable_gqa=True))
    for want, got in zip(expected, chunked, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_chunk_bounds_cover_the_image():
    assert causal_chunks.chunk_bounds(399, 2) == [0, 200, 399]
    assert causal_chunks.chunk_bounds(10, 3) == [0, 3, 7, 10]


def twin_models(chunks: int) -> tuple[PixelLM, PixelLM]:
    """The same weights, attending in one piece and in ``chunks``."""
    plain = tiny_model("llama", LLAMA, grid_positions=True, image_width=8)
    chunked = tiny_model("llama", LLAMA, grid_positions=True, image_width=8, attention_chunks=chunks)
    return plain, chunked


def counting_calls(monkeypatch) -> list[int]:
    calls = []
    original = causal_chunks.causal_chunks_attention

    def counted(*args, **kwargs):
        calls.append(args[3])
        return original(*args, **kwargs)

    monkeypatch.setattr(causal_chunks, "causal_chunks_attention", counted)
    return calls


def test_a_training_step_runs_chunked_with_the_same_loss_and_gradients(monkeypatch):
    plain, chunked = twin_models(chunks=3)
    assert chunked.model.config._attn_implementation == causal_chunks.NAME
    calls = counting_calls(monkeypatch)
    images = torch.randint(0, 167, (4, 40))
    losses = []
    for model in (plain, chunked):
        model.train()
        loss = model.token_losses(images, reduction="mean")
        loss.backward()
        losses.append(loss.detach())
    assert calls == [3, 3]  # both layers of the chunked model, none of the plain one
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-6, atol=1e-6)
    for (name, want), got in zip(plain.named_parameters(), chunked.parameters(), strict=True):
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_evaluation_and_generation_run_sdpa_as_is(monkeypatch):
    plain, chunked = twin_models(chunks=2)
    calls = counting_calls(monkeypatch)
    images = torch.randint(0, 167, (5, 40))
    for model in (plain, chunked):
        model.eval()
    with torch.no_grad():
        assert torch.equal(chunked.token_losses(images), plain.token_losses(images))
    for decoding in (Decoding(), Decoding(do_sample=True, top_k=50, top_p=0.95, seed=3)):
        assert torch.equal(chunked.complete(images[:, :24], decoding), plain.complete(images[:, :24], decoding))
    assert calls == []


def test_train_py_chunks_and_completes_every_second_epoch(train_tiny, tmp_path):
    train_tiny(
        "--model.init_args.model_type=llama",
        f"--model.init_args.model_config={as_option(LLAMA)}",
        "--model.init_args.attention_chunks=2",
        "--model.init_args.recon_every_n_epochs=2",
        "--trainer.max_steps=-1", "--trainer.max_epochs=4", "--trainer.limit_train_batches=2",
        wandb_mode="offline",
    )  # fmt: skip
    run = tmp_path / "runs" / "version_0"
    rows = history(run)
    validations = [row for row in rows if "val/bits_per_pixel" in row]
    assert [row["epoch"] for row in validations] == [0, 1, 2, 3]  # every epoch's dev loss
    assert [row["epoch"] for row in validations if "val/recon_acc" in row] == [1, 3]  # epochs 2 and 4, from 1
    assert all(0 <= value <= 1 for value in metric(rows, "val/recon_acc"))

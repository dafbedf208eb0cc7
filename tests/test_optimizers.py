"""model.optimizer=muon: which weights Muon takes, its update, and a train.py run that checkpoints and resumes it."""

import pytest
import torch
from torch import nn

from conftest import TINY
from entry_points import assert_error, run
from lightning_modules import PixelLM
from lightning_modules.optimizers import MuonAdamW, muon_parameters, orthogonalise
from tiny_models import ARCHITECTURES, tiny_config

LLAMA = tiny_config("llama", num_hidden_layers=2)
NS = ((3.4445, -4.775, 2.0315), 5, 1e-7)  # torch.optim.Muon's defaults


def names(model: nn.Module, parameters: list[nn.Parameter]) -> set[str]:
    ids = {id(p) for p in parameters}
    return {name for name, p in model.named_parameters() if id(p) in ids}


def test_muon_takes_the_hidden_matrices_and_adamw_the_rest():
    lm = PixelLM(model_type="llama", model_config=LLAMA, grid_positions=True, optimizer="muon").model
    hidden, rest = muon_parameters(lm)
    projections = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    assert names(lm, hidden) == {f"model.layers.{i}.{part}.{p}.weight" for i in range(2) for p in projections
                                 for part in ("self_attn", "mlp") if (part == "mlp") == (p in projections[4:])}  # fmt: skip
    assert {"model.embed_tokens.weight", "lm_head.weight", "model.norm.weight",
            "model.grid_positions.row.weight", "model.grid_positions.column.weight"} <= names(lm, rest)  # fmt: skip
    assert len(hidden) + len(rest) == len(list(lm.parameters()))


def test_gpt2_conv1d_matrices_go_to_muon_and_its_position_table_to_adamw():
    lm = PixelLM(model_type="gpt2", model_config=ARCHITECTURES["gpt2"], optimizer="muon").model
    hidden, rest = muon_parameters(lm)
    assert names(lm, hidden) == {
        f"transformer.h.0.{m}.weight" for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
    }
    assert {"transformer.wte.weight", "transformer.wpe.weight"} <= names(lm, rest)


@pytest.mark.parametrize("shape", [(32, 80), (80, 32), (48, 48)])
def test_orthogonalise_pushes_singular_values_towards_one_like_torch(shape):
    torch.manual_seed(0)
    matrix = torch.randn(shape) * torch.logspace(-0.5, 0.5, shape[1])  # singular values 8 to 180 times apart
    ours = orthogonalise(matrix, *NS)
    assert ours.dtype == torch.float32 and ours.shape == shape
    singular = torch.linalg.svdvals(ours)
    assert singular.min() > 0.5 and singular.max() < 1.5  # Muon's quintic lands in about (0.5, 1.5)
    from torch.optim._muon import _zeropower_via_newtonschulz  # torch's own, in bfloat16

    theirs = _zeropower_via_newtonschulz(matrix, *NS).float()
    assert torch.allclose(ours, theirs, atol=0.02)


def test_muon_adamw_steps_both_halves_and_a_scheduler_sets_both_learning_rates():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 8), nn.Linear(8, 8), nn.LayerNorm(8))
    optimizer = MuonAdamW(
        [model[1].weight], [model[0].weight, model[1].bias, *model[2].parameters()], lr=0.1, weight_decay=0.0
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5)
    assert [group["lr"] for group in optimizer.muon.param_groups + optimizer.adamw.param_groups] == [0.05, 0.05]
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.tensor([[1, 2, 3]])).sum().backward()
    optimizer.step()
    scheduler.step()
    assert all(
        not torch.equal(b, p)
        for b, p in zip(before, model.parameters(), strict=True)
        if p.grad is not None and p.grad.any()
    )
    state = optimizer.state_dict()
    assert len(state["muon"]["state"]) == 1 and len(state["adamw"]["state"]) == 4
    optimizer.load_state_dict(state)  # as a resumed run does; the scheduler must still reach both halves
    for group in optimizer.param_groups:
        group["lr"] = 0.01
    assert [group["lr"] for group in optimizer.muon.param_groups + optimizer.adamw.param_groups] == [0.01, 0.01]
    with pytest.raises(ValueError, match="not a MuonAdamW state"):
        optimizer.load_state_dict(torch.optim.AdamW(model.parameters()).state_dict())


def test_train_py_with_muon_learns_and_checkpoints_both_optimizers(tmp_path, small_data):
    args = ["--config", str(TINY), "--trainer.default_root_dir", str(tmp_path / "runs"), "--data.data_dir", str(small_data),
            "--model.init_args.optimizer=muon", "--trainer.max_steps=-1", "--trainer.max_epochs=3"]  # fmt: skip
    run("train.py", *args)
    last = tmp_path / "runs" / "version_0" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)  # a shared checkpoint must load without running code
    assert checkpoint["hyper_parameters"]["optimizer"] == "muon"
    (state,) = checkpoint["optimizer_states"]
    assert len(state["muon"]["state"]) == 4  # tiny.yaml's one GPT-2 block: c_attn, two c_proj, c_fc
    assert all(s["momentum_buffer"].any() for s in state["muon"]["state"].values())
    # resuming with the other optimizer is refused before the run folder changes
    wrong = run("train.py", *args[:-3], "--trainer.max_epochs=4", "--ckpt_path=last", check=False)
    assert assert_error(wrong) == (
        f"error: {last}: trained with model.optimizer=muon, the config asks for adamw; "
        "resume with --model.init_args.optimizer=muon"
    )
    assert torch.equal(torch.load(last, weights_only=True)["state_dict"]["model.lm_head.weight"],
                       checkpoint["state_dict"]["model.lm_head.weight"])  # fmt: skip

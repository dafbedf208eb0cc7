"""Issue 35's exported-folder cases: a folder is input from anyone, so nothing in it may hang a run, size the
model past its own weights, slip bad weights in, or make ``export.py --overwrite`` delete what is no export.

Each case ends as a user would see it: one line ``error: ...`` naming the file (or option) and status 2,
before any memory is taken or any file is replaced. Tiny random models, exported and predicted in-process.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import export
import predict
from checkpointing.export_writer import export_pixel_lm
from datamodules.pixel_files import read_palette
from generation.decoding import DecodingError
from lightning_modules import PixelLM
from tiny_models import ARCHITECTURES

TINY_GPT2 = ARCHITECTURES["gpt2"]


@pytest.fixture
def folder(small_data, tmp_path) -> Path:
    """A good exported folder of a tiny random GPT-2."""
    torch.manual_seed(0)
    model = PixelLM(model_type="gpt2", model_config=TINY_GPT2)
    (tmp_path / "shared").mkdir()
    return export_pixel_lm(model, read_palette(small_data / "colormap.txt"), tmp_path / "shared" / "exported")


def predict_args(folder: Path, small_data: Path, tmp_path: Path) -> list[str]:
    return ["--ckpt_path", str(folder), "--data.data_dir", str(small_data), "--output", str(tmp_path / "out.txt")]


def refused(entry, args: list[str], capsys) -> str:
    """Runs ``entry.main(args)`` under the entry point's own error policy; asserts status 2 and one line.

    ``entry.reported_errors`` is what ``python predict.py`` / ``python export.py`` wrap ``main`` in.
    """
    with pytest.raises(SystemExit) as stop, entry.reported_errors():
        entry.main(args)
    stderr = capsys.readouterr().err
    assert stop.value.code == 2, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    line = stderr.strip().splitlines()[-1]
    assert line.startswith("error: "), stderr[-3000:]
    return line


def edit_settings(folder: Path, edit) -> None:
    settings = json.loads((folder / "pixel_lm.json").read_text())
    edit(settings)
    (folder / "pixel_lm.json").write_text(json.dumps(settings))


def edit_header(path: Path, edit) -> None:
    """Rewrites the JSON header of the safetensors file ``path`` after ``edit(header)``; the data stays as it is."""
    raw = path.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + length])
    edit(header)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors pads its header to 8 bytes
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + length :])


@pytest.fixture
def never_built(monkeypatch):
    """Fails the test if a model is built for real: a tampered folder must be refused before that."""

    def build(*args, **kwargs):
        raise AssertionError(f"a model was built from the folder's settings: {args[:2]}")

    monkeypatch.setattr("lightning_modules.pixel_lm.build_causal_lm", build)


# --- 1. no read waits on a FIFO --------------------------------------------------------------------------


# Opens the FIFO for writing (and closes it) again and again after a wait, so that a reader blocked in
# open() goes on, and leaves a mark. A separate process: the blocked reader (safetensors' loader) holds
# the GIL, so no thread of the test could run, as no signal handler could (SIGTERM and Ctrl-C went unheard).
RELEASER = """
import os, sys, time
fifo, mark = sys.argv[1], sys.argv[2]
time.sleep(60)
while True:
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        open(mark, "w").close()
    except OSError:  # ENXIO: no reader waiting
        pass
    time.sleep(0.1)
"""


@pytest.mark.parametrize("name", ["model.safetensors", "pixel_lm.json"])
def test_a_fifo_in_the_folder_is_refused_not_waited_on(name, folder, small_data, tmp_path, capsys):
    fifo, mark = folder / name, tmp_path / "released"
    fifo.unlink()
    os.mkfifo(fifo)
    releaser = subprocess.Popen([sys.executable, "-c", RELEASER, str(fifo), str(mark)])
    try:
        line = refused(predict, predict_args(folder, small_data, tmp_path), capsys)
    finally:
        releaser.kill()
        releaser.wait()
    assert not mark.exists(), f"predict waited on the FIFO {fifo} until a writer came"
    assert f"{fifo}: is a FIFO (named pipe), not a regular file" in line


# --- 2. sizes are checked against the weights' own header before memory is taken -------------------------


@pytest.mark.parametrize(
    "model_config, message",
    [
        ({"n_embd": 16384}, "pixel_lm.json: model_config.n_embd 16384 does not fit"),
        ({"n_embd": 16384, "n_layer": 8}, "pixel_lm.json: model_config.n_layer 8 does not fit"),
        ({"n_layer": 200000}, "pixel_lm.json: model_config.n_layer must be 1 to 256, got 200000"),
        ({"n_head": 0}, "pixel_lm.json: model_config does not build a gpt2 model"),
    ],
    ids=["width", "width and layers", "layers", "no heads"],
)
def test_tampered_sizes_are_refused_before_the_model_is_built(
    model_config, message, folder, small_data, tmp_path, capsys, never_built
):
    edit_settings(folder, lambda settings: settings["model_config"].update(model_config))
    line = refused(predict, predict_args(folder, small_data, tmp_path), capsys)
    assert f"{folder}/{message}" in line
    if "does not fit" in message:
        assert f"{folder}/model.safetensors" in line


def test_a_header_that_claims_more_than_the_file_holds(folder, small_data, tmp_path, capsys, never_built):
    """pixel_lm.json and the header agree on a 16384-wide model, but the file holds a 16-wide one's bytes."""
    edit_settings(folder, lambda settings: settings["model_config"].update(n_embd=16384))
    edit_header(
        folder / "model.safetensors", lambda header: header["transformer.wte.weight"].update(shape=[167, 16384])
    )
    line = refused(predict, predict_args(folder, small_data, tmp_path), capsys)
    assert f"{folder}/model.safetensors: transformer.wte.weight is F32 of shape [167, 16384]" in line
    assert "but its data_offsets span 10688" in line


@pytest.mark.parametrize(
    "decoding, message",
    [
        ({"best_of": 100000}, "decoding.best_of: must be 1 to 1024, got 100000"),
        ({"do_sample": True, "temperature": 0}, "decoding.temperature: must be above 0 when sampling"),
        ({"top_p": 2}, "decoding.top_p: must be above 0 and at most 1"),
        ({"consensus": -1}, "decoding.consensus: must be 0 or more"),
        ({"seed": 10**30}, "decoding.seed: must be within ±2**62"),
        ({"contrast": 10**400}, "decoding.contrast = 10000000000000000000... (401 characters) is too large"),
    ],
    ids=["best_of", "temperature", "top_p", "consensus", "seed", "contrast"],
)
def test_decoding_from_the_folder_is_checked(decoding, message, folder, small_data, tmp_path, capsys):
    edit_settings(folder, lambda settings: settings["decoding"].update(decoding))
    line = refused(predict, predict_args(folder, small_data, tmp_path), capsys)
    assert f"{folder}/pixel_lm.json: {message}" in line


def test_the_folders_best_of_is_bounded_by_the_batch(folder, small_data, tmp_path, capsys):
    """1024 candidates is a valid setting, but not for each of 16 prefixes at once: refused before drawing.

    The check is the PredictionWriter's (generation/decoding.py); here it must see the folder's value. Its
    DecodingError is not yet among the errors reported as one line (cli), so either form is taken.
    """
    edit_settings(folder, lambda settings: settings["decoding"].update(best_of=1024))
    with pytest.raises((DecodingError, SystemExit)) as stop:
        predict.main(predict_args(folder, small_data, tmp_path))
    message = str(stop.value) if isinstance(stop.value, DecodingError) else capsys.readouterr().err
    assert "decoding.best_of: 1024 candidates for each of a batch's 16 prefixes" in message
    assert not (tmp_path / "out.txt").exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("[" * 100_000 + "]" * 100_000, "is not valid JSON (nested too deeply)"),
        ('{"format": "pokemon-pixel-lm", "seed": 1' + "0" * 5000 + "}", "is not valid JSON (Exceeds the limit"),
        (" " * (1 << 20) + "{}", "is larger than 1024 kB"),
    ],
    ids=["deeply nested", "huge integer", "oversized"],
)
def test_settings_json_that_no_export_writes(text, message, folder, small_data, tmp_path, capsys):
    (folder / "pixel_lm.json").write_text(text)
    line = refused(predict, predict_args(folder, small_data, tmp_path), capsys)
    assert f"{folder}/pixel_lm.json: {message}" in line


# --- 3. weights: their dtype and their values ------------------------------------------------------------


def test_a_tensor_relabelled_as_integers_is_refused(folder, small_data, tmp_path, capsys):
    edit_header(folder / "model.safetensors", lambda header: header["transformer.wte.weight"].update(dtype="I32"))
    line = refused(predict, predict_args(folder, small_data, tmp_path), capsys)
    assert (
        f"{folder}/model.safetensors: transformer.wte.weight is stored as I32, but it is a weight of type float32"
        in line
    )
    assert not (tmp_path / "out.txt").exists()


def test_nan_weights_are_refused(small_data, tmp_path, capsys):
    model = PixelLM(model_type="gpt2", model_config=TINY_GPT2)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(float("nan"))
    folder = export_pixel_lm(model, read_palette(small_data / "colormap.txt"), tmp_path / "exported")
    line = refused(predict, predict_args(folder, small_data, tmp_path), capsys)
    assert f"{folder}/model.safetensors: transformer.h.0.attn.c_attn.bias holds 48 NaN or infinite values of 48" in line
    assert not (tmp_path / "out.txt").exists()


# --- 4. export.py --overwrite replaces only an exported folder, and leaves nothing behind ----------------


def listing(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def export_args(folder: Path, small_data: Path, out: str) -> list[str]:
    """Re-exporting ``folder``: export.py with no training run needed."""
    return ["--ckpt_path", str(folder), "--data.data_dir", str(small_data), "--out", out, "--overwrite", "true"]


def test_export_out_dot_is_refused(folder, small_data, tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine\n")
    monkeypatch.chdir(work)
    before = listing(tmp_path)
    line = refused(export, export_args(folder, small_data, "."), capsys)
    assert f"--out .: is the current folder; export into a new folder, e.g. --out {work / 'exported'}" in line
    assert listing(tmp_path) == before  # no "..<x>.old/" or ".<x>.tmp/" left behind


def test_export_over_a_parent_of_the_checkpoint_is_refused(folder, small_data, tmp_path, capsys):
    parent = folder.parent  # holds the folder being exported
    before = listing(parent)
    line = refused(export, export_args(folder, small_data, str(parent)), capsys)
    assert f"--out {parent}: is not a folder export.py wrote (it holds exported, which an export does not)" in line
    assert listing(parent) == before


@pytest.mark.parametrize(
    "files, message",
    [
        ({"checkpoints/best.ckpt": b"weights", "config.yaml": b"model: {}\n"}, "it holds checkpoints"),
        ({"README.md": b"# a project\n"}, "it has no pokemon-pixel-lm pixel_lm.json"),
    ],
    ids=["run folder", "project folder"],
)
def test_overwrite_refuses_a_folder_that_is_no_export(files, message, folder, small_data, tmp_path):
    """A run folder (the very run being exported, say) or a project's folder is never deleted by --overwrite."""
    out = tmp_path / "run"
    for name, data in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    before = listing(tmp_path)
    model = PixelLM(model_type="gpt2", model_config=TINY_GPT2)
    with pytest.raises(ValueError, match="^--out .*: is not a folder export.py wrote") as error:
        export_pixel_lm(model, read_palette(small_data / "colormap.txt"), out, overwrite=True)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert listing(tmp_path) == before


def test_overwrite_refuses_a_file(small_data, tmp_path):
    out = tmp_path / "best.ckpt"
    out.write_bytes(b"a checkpoint")
    model = PixelLM(model_type="gpt2", model_config=TINY_GPT2)
    with pytest.raises(ValueError, match="is a file, not a folder export.py wrote"):
        export_pixel_lm(model, read_palette(small_data / "colormap.txt"), out, overwrite=True)
    assert out.read_bytes() == b"a checkpoint"


def test_overwrite_replaces_an_export_and_a_failure_keeps_it(folder, small_data, tmp_path, monkeypatch):
    palette = read_palette(small_data / "colormap.txt")
    old = {path.name: path.read_bytes() for path in folder.iterdir()}
    rename = os.rename

    def failing_rename(source, target):  # the new folder's rename into place fails (a full disk, Ctrl-C)
        if Path(source).name.endswith(".tmp"):
            raise OSError(28, "No space left on device")
        rename(source, target)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(OSError, match="No space left"):
        export_pixel_lm(PixelLM(model_type="gpt2", model_config=TINY_GPT2), palette, folder, overwrite=True)
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == old  # the old export, in place
    assert listing(folder.parent) == sorted(["exported", *(f"exported/{name}" for name in old)])  # nothing beside

    monkeypatch.setattr(os, "rename", rename)
    torch.manual_seed(1)
    export_pixel_lm(PixelLM(model_type="gpt2", model_config=TINY_GPT2), palette, folder, overwrite=True)
    assert (folder / "model.safetensors").read_bytes() != old["model.safetensors"]
    assert listing(folder.parent) == sorted(["exported", *(f"exported/{name}" for name in old)])

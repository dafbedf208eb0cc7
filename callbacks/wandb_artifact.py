"""Logs a submission or an exported model as a W&B artifact (``predict.py`` / ``export.py --wandb_artifact``)."""

import os
from pathlib import Path

import yaml


def model_run(checkpoint: str | Path | None) -> tuple[Path | None, dict]:
    """The run folder that holds ``checkpoint`` (``<run>/checkpoints/x.ckpt``) and its W&B logger settings."""
    checkpoint = Path(checkpoint) if checkpoint else None
    if checkpoint is None or checkpoint.parent.name != "checkpoints":
        return None, {}  # e.g. an exported folder: no run to name
    run = checkpoint.parent.parent
    try:
        config = yaml.safe_load((run / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return run, {}
    logger = (config.get("trainer") or {}).get("logger")
    return run, dict((logger or {}).get("init_args") or {}) if isinstance(logger, dict) else {}


def wandb_run_id(run: Path) -> str | None:
    """The id of the W&B run logged into ``run``, from W&B's ``latest-run`` link (as cli.py reads it to resume)."""
    latest = run / "wandb" / "latest-run"
    return os.readlink(latest).rsplit("-", 1)[-1] if latest.is_symlink() else None


def logged_in() -> bool:
    """Whether W&B finds an API key (environment or netrc), asking no one. (As cli.py asks before training.)"""
    import wandb

    try:
        return wandb.login(prompt=False, verify=False)
    finally:
        wandb.teardown()  # login() freezes W&B's settings: an offline run started later would be refused


def log_artifact(paths: list[Path], kind: str, checkpoint: str | Path | None) -> str:
    """Logs ``paths`` (files or folders) as one artifact of type ``kind`` and returns its name.

    It is logged by a short W&B run of its own, in the project and group of the run that trained
    ``checkpoint``, with job type ``kind``: W&B then lists it beside that run and its reranker. The
    run's files go to ``<run>/artifacts/wandb`` (not ``<run>/wandb``, whose newest run a resumed
    training continues). Without a W&B login (and no ``WANDB_MODE``) it is logged offline;
    ``wandb sync`` uploads it later.
    """
    import wandb

    run, logger = model_run(checkpoint)
    name = logger.get("name") or (run.parent.name if run else "pixel-lm")
    run_id = wandb_run_id(run) if run else None
    group = logger.get("group") or ("-".join(filter(None, (name, run_id))) if run_id else None)
    folder = (run / "artifacts") if run else Path(paths[0]).resolve().parent
    folder.mkdir(parents=True, exist_ok=True)
    mode = None if "WANDB_MODE" in os.environ or logged_in() else "offline"
    artifact = wandb.Artifact(f"{name}-{kind}".replace("/", "-"), type=kind)
    for path in map(Path, paths):
        if path.is_dir():
            artifact.add_dir(str(path))
        else:
            artifact.add_file(str(path))
    with wandb.init(project=logger.get("project"), group=group, job_type=kind, dir=folder, mode=mode) as w_run:
        w_run.log_artifact(artifact)
        offline = w_run.offline
    where = f"offline, in {folder / 'wandb'} (upload: wandb sync)" if offline else "uploaded"
    print(f"W&B: logged {', '.join(Path(p).name for p in paths)} as artifact {artifact.name} ({kind}), {where}")
    return artifact.name

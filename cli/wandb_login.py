"""Whether W&B can log online, asked without prompting anyone."""


def wandb_logged_in() -> bool:
    """Whether W&B finds an API key (environment or netrc), asking no one and leaving W&B's settings unset."""
    import wandb

    try:
        return wandb.login(prompt=False, verify=False)
    finally:
        # login() freezes W&B's settings; without this the offline mode the logger asks for later is
        # ignored and wandb.init() fails with "No API key configured".
        wandb.teardown()

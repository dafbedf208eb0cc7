"""Hides the library messages that are false alarms for every run of this project, each by its text.

Most false alarms are gone at their cause: ``PixelLM`` compiles outside ``configure_model`` (which
made ``WeightAveraging`` warn of running out of memory) and gives the model summary an example
input (it printed ``Total FLOPs: 0``); a moved run folder keeps its checkpoint bookkeeping
(``checkpointing.moved_run``); ``callbacks.WandbLogger`` passes W&B no ``anonymous`` setting.
What is left comes from inside the libraries, out of reach of any setting:

- torch deprecates ``LeafSpec``, which Lightning 2.6's own code still uses: a ``FutureWarning``
  addressed to Lightning's developers, at every fit and predict;
- ``WeightAveraging`` warns at every prediction that its state is not restored outside ``fit``
  (prediction needs none: a checkpoint's weights are the average already). Without the callback,
  Lightning warns instead that the checkpoint names a callback the trainer lacks;
- Lightning advertises its ``litlogger`` package whenever a Trainer is made without it;
- ``ModelCheckpoint`` warns that its folder "exists and is not empty" when a run resumes, which
  continues in its own folder by design (:func:`resuming_from`); a new run writing into a full
  folder still gets the warning.

Each is matched by its category (or logger) and the start of its text, so any other warning, and
above all one about the user's own input or config, still shows.
"""

import logging
import os
import re
import warnings

# (category, message regex): Python warnings raised inside the libraries on every run.
WARNINGS = (
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
    (UserWarning, r"You're using the WeightAveraging callback, but loading a checkpoint outside the 'fit' stage"),
)

# (logger name, message regex): log lines. Lightning's rank_zero_info logs through this logger.
LOG_LINES = (("lightning.pytorch.utilities.rank_zero", r"💡 Tip: For seamless cloud logging .*litlogger"),)


class DropMatching(logging.Filter):
    """Drops the log records whose message matches ``pattern``."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.search(record.getMessage())


def install() -> None:
    """Hides :data:`WARNINGS` and :data:`LOG_LINES` in this process; calling it again adds nothing."""
    for category, message in WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)  # replaces an equal filter
    for name, pattern in LOG_LINES:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropMatching) and f.pattern.pattern == pattern for f in logger.filters):
            logger.addFilter(DropMatching(pattern))


def resuming_from(checkpoint: str | os.PathLike) -> None:
    """Hides ModelCheckpoint's "exists and is not empty" for the folder of ``checkpoint``, which a resumed run
    writes into again; another folder still warns."""
    folder = os.path.realpath(os.path.dirname(checkpoint))  # as ModelCheckpoint names its dirpath
    warnings.filterwarnings("ignore", message=f"Checkpoint directory {re.escape(folder)} exists and is not empty")

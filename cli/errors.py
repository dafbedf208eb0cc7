"""One error and exit-code policy for every entry point.

- A user's error (bad data, a bad config value or key, a missing file, a checkpoint that does not fit,
  a diverged run) prints one line on stderr, ``error: <message>``, and exits with status 2, as argparse
  does for a bad option: a traceback would only bury the line that says what to fix.
- SIGTERM prints ``error: stopped by SIGTERM`` and exits with 143, Ctrl-C (SIGINT) ``error: interrupted``
  and 130: the statuses of a process killed by those signals, so shells and schedulers see a stop, not a
  success (Lightning itself would exit 0 after SIGTERM and 1 after Ctrl-C).
- Anything else is a bug and keeps its traceback.

Entry points apply it to ``main`` itself, so that ``train.main([...])`` called in a test exits as the
command does::

    @reported_errors()
    def main(args: list[str] | None = None) -> None: ...
"""

import signal
import sys
import threading
from argparse import ArgumentError
from collections.abc import Iterator
from contextlib import contextmanager

STOPPED = {signal.SIGTERM: "error: stopped by SIGTERM", signal.SIGINT: "error: interrupted"}


class ConfigError(ValueError):
    """A config value or file that cannot be used; the message names the key or file and what to do."""


class Stopped(SystemExit):
    """SIGTERM or Ctrl-C; a SystemExit, so that no ``except Exception`` on the way keeps it."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that are the user's to fix, imported only when an error is to be judged: a light
    entry point (``bench/report.py``) does not load torch just to report a bad file."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException  # a bad trainer setting

    from callbacks.time_budget import TimeBudgetError
    from callbacks.train_reranker import RerankerError
    from checkpointing.checkpoint_check import CheckpointMismatchError
    from checkpointing.io import CheckpointReadError
    from checkpointing.loading import CheckpointError
    from datamodules.pixel_files import PixelFormatError
    from evaluation.inception import FeaturesUnavailable
    from files.atomic_write import WriteError
    from generation.decoding import DecodingError
    from lightning_modules.pixel_lm import NonFiniteLossError

    return (
        ConfigError,
        FileNotFoundError,
        PixelFormatError,
        CheckpointError,
        CheckpointMismatchError,
        CheckpointReadError,
        NonFiniteLossError,
        RerankerError,
        WriteError,
        FeaturesUnavailable,
        DecodingError,
        TimeBudgetError,
        MisconfigurationException,
    )


@contextmanager
def reported_errors(*more: type[BaseException]) -> Iterator[None]:
    """Applies the policy above to the code it wraps (a ``with`` block, or a function it decorates).

    Args:
        more: Further exceptions that are the user's to fix in this entry point (``bench/report.py``'s
            ``ReportError``), reported as one line and status 2 like the project's own.
    """
    previous = _stop_on_signals()
    try:
        yield
    except Stopped as stopped:
        _exit(STOPPED[stopped.signum], stopped.code)
    except KeyboardInterrupt:  # Ctrl-C where Python's own handler was in place
        _exit(STOPPED[signal.SIGINT], 128 + signal.SIGINT)
    except SystemExit as exit:
        if type(exit).__name__ != "SIGTERMException":  # Lightning's, after it stopped training cleanly
            raise
        _exit(STOPPED[signal.SIGTERM], 128 + signal.SIGTERM)
    except ArgumentError as error:  # jsonargparse: a misspelt key or a value of the wrong type
        _exit(f"error: {short_argument_error(str(error))} (--help lists the options)", 2)
    except Exception as error:
        if not isinstance(error, (*more, *user_errors())):
            raise  # a bug: its traceback is what finds it
        _exit(f"error: {one_line(str(error))}", 2)
    finally:
        for signum, handler in previous.items():
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(signum, handler)


def _exit(line: str, status: int) -> None:
    print(line, file=sys.stderr)
    raise SystemExit(status) from None


def _stop_on_signals() -> dict[int, object]:
    """SIGTERM and Ctrl-C raise :class:`Stopped` (only the main thread may set handlers); returns the old ones.

    Lightning keeps this handler and calls it after its own, except while training, where
    ``FitCLI.fit`` leaves SIGTERM to Lightning, which stops after the current step.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}

    def stop(signum: int, frame) -> None:
        raise Stopped(signum)

    return {signum: signal.signal(signum, stop) for signum in STOPPED}


def one_line(message: str) -> str:
    """``message`` on one line: its lines joined by spaces."""
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


# jsonargparse's lines around the reason when a class rejects a key: true, but noise to a user.
_NOISE = (
    "Does not validate against", "Subtypes:", "Errors:", "- Expected a <class 'NoneType'>", "Given value",
    "- Not a valid subclass of", "Subclass types expect one of", "- a class path (str)", "- a dict with",
    "- a dict without class_path",
)  # fmt: skip


def short_argument_error(message: str) -> str:
    """jsonargparse's error on one line: the key and the reason, without its union bookkeeping."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    kept = [line.removeprefix("- ") for line in lines if not line.startswith(_NOISE)]
    return " ".join(kept).replace("Parser key ", "key ").replace(": Problem with given class_path", ": class_path")

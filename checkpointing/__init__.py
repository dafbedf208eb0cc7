"""Reading and writing checkpoint files: weights-only ``.ckpt`` loading (no file from elsewhere runs code),
exported folders, and saves that are atomic on the run folder's own filesystem (``io.py``).

Above the models (it builds them), below evaluation, callbacks and the entry points, which read
every checkpoint through it.
"""

from checkpointing.loading import CheckpointError, load_checkpoint, load_classifier, load_pixel_lm, load_weights

__all__ = ["CheckpointError", "load_checkpoint", "load_classifier", "load_pixel_lm", "load_weights"]

"""Reading checkpoints without running code from them: weights-only ``.ckpt`` loading, and exported folders.

Above the models (it builds them), below evaluation, callbacks and the entry points, which read
every checkpoint through it.
"""

from checkpointing.loading import CheckpointError, load_checkpoint, load_classifier, load_pixel_lm, load_weights

__all__ = ["CheckpointError", "load_checkpoint", "load_classifier", "load_pixel_lm", "load_weights"]

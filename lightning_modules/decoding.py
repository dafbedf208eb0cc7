"""How completions are decoded."""

from dataclasses import dataclass, replace


@dataclass
class Decoding:
    """Settings for completing image prefixes with ``transformers``' ``generate``.

    Args:
        do_sample: Sample from the model's distribution; False decodes greedily (the course's default).
        temperature: Softmax temperature when sampling; below 1 is more conservative.
        top_k: Sample only among the k likeliest colours; 0 turns the filter off.
        top_p: Sample only within the smallest set of colours whose probability reaches p; 1.0 turns it off.
        seed: Seed for sampling; the same seed gives the same completions.
        best_of: Sample this many completions of each prefix and keep the best: the one the module's
            ``reranker`` (a Pokémon classifier, ``predict.py --reranker``) scores highest, or without
            one, the one the model itself finds likeliest. 1 keeps the single sample.
    """

    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    best_of: int = 1

    def for_batch(self, first_index: int) -> "Decoding":
        """These settings for a batch starting at image ``first_index``: its seed advances by that index,
        so a file's sampled images are the same whichever entry point completes them."""
        return replace(self, seed=self.seed + first_index)

    def generate_kwargs(self) -> dict:
        """Keyword arguments for ``generate``."""
        if not self.do_sample:
            return {"do_sample": False}
        return {"do_sample": True, "temperature": self.temperature, "top_k": self.top_k or None, "top_p": self.top_p}

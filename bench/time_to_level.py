"""Minutes to each dev bits/pixel level: each recipe's validations summed up, and set against the reference's."""

import math

from bench.recipes import Recipe
from bench.validation_records import METRIC

DEFAULT_MARGINS = (1.10, 1.05, 1.02, 1.0)  # default levels: the reference's best times these


def validations(recipe: Recipe) -> list[dict]:
    return [record for record in recipe.records if "event" not in record and record.get(METRIC) is not None]


def summary(recipe: Recipe) -> dict:
    """Training minutes (the whole fit), the best bits/pixel, and the (minutes, bits/pixel) of each validation."""
    ends = [record for record in recipe.records if record.get("event") == "fit_end"]
    last = ends[-1] if ends else (recipe.records[-1] if recipe.records else None)
    points = [(record["elapsed_s"] / 60, record[METRIC]) for record in validations(recipe)]
    return {
        "training_minutes": last["elapsed_s"] / 60 if last else None,
        "best_bits_per_pixel": min((bits for _, bits in points), default=None),
        "points": points,
    }


def default_levels(reference_best: float | None) -> list[float]:
    """The reference's best and a few levels above it, rounded up so that the best itself reaches its own."""
    if reference_best is None:
        return []
    # round() first: 2.0 * 1.1 is 2.2000000000000006, which would round up to 2.201
    return [math.ceil(round(reference_best * margin * 1000, 6)) / 1000 for margin in DEFAULT_MARGINS]


def minutes_to(points: list[tuple[float, float]], level: float) -> float | None:
    """Minutes at the first validation at or below ``level`` bits/pixel, or None."""
    return next((minutes for minutes, bits in points if bits <= level), None)


def analyse(recipes: list[Recipe], levels: list[float] | None) -> dict:
    summaries = {recipe.name: summary(recipe) for recipe in recipes}
    reference = summaries[recipes[0].name]
    levels = levels or default_levels(reference["best_bits_per_pixel"])
    rows = []
    for recipe in recipes:
        s = summaries[recipe.name]
        reached = {f"{level:g}": minutes_to(s["points"], level) for level in levels}
        ratios = {
            key: ratio(minutes, minutes_to(reference["points"], level))
            for (key, minutes), level in zip(reached.items(), levels, strict=True)
        }
        rows.append({
            "recipe": recipe.name, "config": recipe.config, "args": recipe.args, "cores": recipe.cores,
            "run_dir": str(recipe.run_dir) if recipe.run_dir else None, "returncode": recipe.returncode,
            "process_minutes": recipe.wall_s / 60 if recipe.wall_s is not None else None,
            "training_minutes": s["training_minutes"], "best_bits_per_pixel": s["best_bits_per_pixel"],
            "training_minutes_ratio": ratio(s["training_minutes"], reference["training_minutes"]),
            "minutes_to_level": reached, "ratio_to_reference": ratios,
            "validations": validations(recipe),
        })  # fmt: skip
    return {"reference": recipes[0].name, "metric": METRIC, "levels": levels, "recipes": rows}


def ratio(minutes: float | None, reference: float | None) -> float | None:
    return minutes / reference if minutes is not None and reference else None

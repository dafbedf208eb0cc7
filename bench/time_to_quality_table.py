"""The time-to-quality bench's table: each recipe's minutes to each level, and its ratio to the reference's."""


def time_to_quality_table(report: dict, shared: bool) -> str:
    """``report`` (``analyse``'s, with the machine and, after ``--judge``, each row's ``quality``) as Markdown."""
    levels = [f"{level:g}" for level in report["levels"]]
    quality = any("quality" in row for row in report["recipes"])
    header = ["recipe", "training min", "best dev bits/pixel", *(f"min to <= {level}" for level in levels)]
    header += ["dev FID", "dev PDR"] if quality else []
    cores = "; ".join(f"{row['recipe']} on cores {','.join(map(str, row['cores']))}" for row in report["recipes"])
    lines = [
        f"{report['cpu']}; load average {report['load_average_before']:.1f} before the run. Reference: "
        f"{report['reference']}; in brackets each recipe's minutes / the reference's. {report['threads']} thread(s) "
        f"per recipe; {cores}" + ("; recipes shared cores, so each one's minutes are inflated" if shared else "") + ".",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for index, row in enumerate(report["recipes"]):
        total = row["training_minutes"]  # None: the run wrote no validation (it failed early)
        cells = [row["recipe"], minutes_cell(total, row["training_minutes_ratio"], index) if total is not None else "-"]
        best = row["best_bits_per_pixel"]
        cells.append(f"{best:.4f}" if best is not None else "-")
        cells += [
            minutes_cell(row["minutes_to_level"][level], row["ratio_to_reference"][level], index) for level in levels
        ]
        if quality:
            scores = row.get("quality") or {}
            cells += [f"{scores['fid']:.1f}" if scores else "-", f"{scores['pdr']:.2f}" if scores else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def minutes_cell(minutes: float | None, ratio_to_reference: float | None, index: int) -> str:
    if minutes is None:
        return "not reached"
    shown = f"{minutes:.2f}"
    return shown if index == 0 or ratio_to_reference is None else f"{shown} ({ratio_to_reference:.2f}x)"

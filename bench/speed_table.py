"""The speed bench's table: the project against the course code per config, with each repeat's ratio range."""

from pathlib import Path


def speed_table(results: list[dict], args) -> str:
    """Training tokens/s and generation seconds, project and course code, medians of the repeats, as Markdown."""
    rows = [
        f"Device: {args.device_name}; threads: {args.threads}; repeats: {args.repeats} (medians); warm-up "
        f"{args.warmup} + {args.steps} timed training steps; load average {args.load:.1f} before the run (above 0.5: "
        "other jobs were running, and the ratios are noisier).",
        "",
        "| config | measure | project | course code | project / course (range of the repeats' own ratios) "
        "| peak memory project | peak memory course |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        m, raw, name = result["median"], result["raw"], Path(result["config"]).stem
        tp, tc = m["train_project"], m["train_course"]
        gp, gc = m["generate_project"], m["generate_course"]
        spread = paired_range(raw["train_project"], raw["train_course"], "tokens_per_s")
        rows.append(
            f"| {name} | training tokens/s | {tp['tokens_per_s']:,.0f} | {tc['tokens_per_s']:,.0f} | "
            f"{tp['tokens_per_s'] / tc['tokens_per_s']:.2f}x{spread} | {memory(tp)} | {memory(tc)} |"
        )
        for mode in ("greedy", "sampled"):
            key = f"{mode}_s"
            same = f" (outputs identical: {result['greedy_identical']})" if mode == "greedy" else ""
            spread = paired_range(raw["generate_course"], raw["generate_project"], key)
            rows.append(
                f"| {name} | generate 80, {mode}{same} | {gp[key]:.2f} s | {gc[key]:.2f} s | "
                f"{gc[key] / gp[key]:.2f}x faster{spread} | {memory(gp)} | {memory(gc)} |"
            )
    return "\n".join(rows)


def memory(result: dict) -> str:
    """Peak RSS of a worker, and its peak GPU memory when it ran on one."""
    gpu = f", GPU {result['peak_gpu_mb']:.0f} MB" if "peak_gpu_mb" in result else ""
    return f"RSS {result['peak_rss_mb']:.0f} MB{gpu}"


def paired_range(numerators: list[dict], denominators: list[dict], key: str) -> str:
    """`` (lowest-highest)`` of the ratio within each repeat: how far one measurement can be trusted."""
    ratios = [n[key] / d[key] for n, d in zip(numerators, denominators, strict=True)]
    return f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""

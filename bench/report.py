"""Renders docs/results.md, and README.md's configs table, from the measurements in docs/results/*.json.

    python bench/report.py            # rewrite docs/results.md and the block between README.md's markers
    python bench/report.py --check    # exit 1 if either file is not what the JSON renders (for CI)

So no figure is typed by hand: a bench writes JSON, this script turns it into tables. Each JSON file
becomes one section of docs/results.md (anchor: the file's name without ``.json``). A file is either

- a list of row dicts, exactly as ``bench/quality.py --json`` writes it, or
- an object with ``rows`` and its provenance: ``title``, ``description``, ``source``, ``command``,
  ``machine``, ``date``, ``per_seed_note`` (say so when the seeds' own values are not known), ``order``
  (sections sort by it, then by name), ``columns`` (``[key, header, digits]`` or ``[key, header, digits,
  true]`` for a confidence-interval column; default: bench/quality.py's) and ``kind: "configs"``.

A row holds a figure as ``key`` (the mean) and, optionally, ``key_range`` (``[lowest, highest]``) and
``per_seed`` (one dict per seed with the same keys); a dict value (``pdr: {judge: value}``) gives one
column per entry. Where a row has two or more per-seed values, a column marked for it gets the 95 %
confidence interval of the mean (Student's t, ``scipy.stats.t``). An integer is printed as it is, a
float to the column's digits, a missing figure as ``-``.

The ``configs`` file holds one row per config: training minutes, and in ``quality`` the row of another
file (``{"file": ..., "run": ..., "decoding": ...}``) whose dev bits/pixel, FID and PDR describe it. It
also fills README.md's block between ``<!-- results:configs -->`` and ``<!-- /results:configs -->``,
each row linking to its anchor in docs/results.md.
"""

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.errors import reported_errors  # noqa: E402 (light: no torch unless a bug is to be judged)

BEGIN, END = "<!-- results:configs -->", "<!-- /results:configs -->"
QUALITY_COLUMNS = [  # bench/quality.py's row keys, in its table's order
    ["run", "run", None],
    ["train_min", "train min", 1],
    ["decoding", "decoding", None],
    ["bits_per_pixel", "dev bits/pixel", 3],
    ["recon_acc", "recon acc", 3],
    ["fid", "Inception FID", 1, True],
    ["fid_classifier", "classifier FID", 1],
    ["fid_spread", "FID seed vs seed", 1],
    ["pdr", "PDR ({})", 2, True],
    ["decode_s", "decode s", 1],
]
CONFIG_COLUMNS = [
    ["config", "config", None],
    ["what", "what", None],
    ["budget", "budget", None],
    ["train_min", "training min", 1],
    ["threads", "threads", None],
    ["epochs", "epochs", None],
    ["decoding", "decoding", None],
    ["bits_per_pixel", "dev bits/pixel", 3],
    ["fid", "Inception FID", 1, True],
    ["pdr", "PDR ({})", 2, True],
    ["date", "date", None],
    ["measured", "FID and PDR measured in", None],
]
README_SKIPS = {"epochs", "date", "measured"}  # the README's table: the configs table, shorter, its ranges in docs/
README_COLUMNS = [column[:3] for column in CONFIG_COLUMNS if column[0] not in README_SKIPS]
COPIED = ("decoding", "bits_per_pixel", "fid", "pdr", "per_seed", "seeds")  # from a configs row's quality row
HEADER = "<!-- Rendered by bench/report.py from docs/results/*.json: edit those files and rerun it, not this one. -->"


class ReportError(Exception):
    """Input the report cannot render (bad JSON, a missing marker, a dangling reference): one line."""


def load(folder: Path) -> list[dict]:
    """Each ``*.json`` under ``folder`` as a section dict (``name`` = the file's stem), in report order."""
    sections = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ReportError(f"{shown(path)}: not valid JSON ({error})") from None
        section = {"rows": data, "source": "bench/quality.py --json"} if isinstance(data, list) else data
        if not isinstance(section, dict) or not isinstance(section.get("rows"), list):
            raise ReportError(f"{shown(path)}: expected a list of rows or an object with a 'rows' list")
        sections.append({"title": path.stem, **section, "name": path.stem, "path": path})
    if not sections:
        raise ReportError(f"{shown(folder)}: no results (*.json) to render")
    for section in sections:
        if section.get("kind") == "configs":
            resolve_configs(section, {s["name"]: s for s in sections})
    return sorted(sections, key=lambda s: (s.get("order", 50), s["name"]))


def resolve_configs(section: dict, by_name: dict) -> None:
    """Fills each configs row with the figures of the quality row it names, and a link to that section."""
    for row in section["rows"]:
        row["id"] = f"config-{row['config']}"
        ref = row.get("quality")
        if not ref:
            row.setdefault("measured", "not measured")
            continue
        rows = by_name[ref["file"]]["rows"] if ref.get("file") in by_name else []
        found = [r for r in rows if r.get("run") == ref.get("run") and r.get("decoding") == ref.get("decoding")]
        if len(found) != 1:
            raise ReportError(f"{shown(section['path'])}: {row['config']}: no single row {ref} among the results")
        row.update({key: found[0][key] for key in COPIED if key in found[0]})
        row.update({f"{key}_range": found[0][f"{key}_range"] for key in COPIED if f"{key}_range" in found[0]})
        row["measured"] = f"[{by_name[ref['file']].get('title', ref['file'])}](#{ref['file']})"


def columns(rows: list[dict], spec: list[list]) -> list[tuple]:
    """``(key, entry, header, digits, is_ci)`` for each column that some row fills, dict keys expanded."""
    out = []
    for key, header, digits, *ci in spec:
        values = [row.get(key) for row in rows if row.get(key) is not None]
        if not values:
            continue
        entries = list(dict.fromkeys(k for v in values if isinstance(v, dict) for k in v)) or [None]
        for entry in entries:
            name = header.format(entry) if entry is not None else header
            out.append((key, entry, name, digits, False))
            if ci and ci[0] and any(len(seed_values(row, key, entry)) > 1 for row in rows):
                out.append((key, entry, f"{name} 95 % CI", digits, True))
    return out


def pick(value, entry):
    return value.get(entry) if isinstance(value, dict) and entry is not None else value


def number(value, digits: int | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and digits is not None:
        return f"{value:.{digits}f}"
    return str(value)


def seed_values(row: dict, key: str, entry) -> list[float]:
    """The figure's value at each seed, when the row keeps them (bench/quality.py's ``per_seed``)."""
    seeds = row.get("per_seed") or []
    return [v for v in (pick(seed.get(key), entry) for seed in seeds) if v is not None]


def confidence_interval(values: list[float]) -> tuple[float, float]:
    """The 95 % confidence interval of the mean of ``values`` (two or more), by Student's t."""
    mean, sem = statistics.fmean(values), stats.sem(values)
    if sem == 0:  # every seed the same: scipy's interval would be nan
        return mean, mean
    low, high = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=sem)
    return float(low), float(high)


def cell(row: dict, key: str, entry, digits: int | None, is_ci: bool) -> str:
    if is_ci:
        values = seed_values(row, key, entry)
        if len(values) < 2:
            return "-"
        low, high = confidence_interval(values)
        return f"[{number(low, digits)}, {number(high, digits)}]"
    text = number(pick(row.get(key), entry), digits)
    span = pick(row.get(f"{key}_range"), entry)
    if text != "-" and span and span[0] != span[1]:  # as bench/quality.py: no range when every seed agrees
        text += f" [{number(span[0], digits)}, {number(span[1], digits)}]"
    return text


def table(rows: list[dict], spec: list[list], anchors: bool = False) -> str:
    cols = columns(rows, spec)
    lines = ["| " + " | ".join(name for _, _, name, _, _ in cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        cells = [cell(row, key, entry, digits, is_ci) for key, entry, _, digits, is_ci in cols]
        if anchors and row.get("id"):
            cells[0] = f'<a id="{row["id"]}"></a>{cells[0]}'
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_section(section: dict) -> str:
    spec = section.get("columns") or (CONFIG_COLUMNS if section.get("kind") == "configs" else QUALITY_COLUMNS)
    parts = [f'<a id="{section["name"]}"></a>\n\n## {section["title"]}']
    if section.get("description"):
        parts.append(section["description"])
    facts = [("Command", section.get("command")), ("Machine", section.get("machine")), ("Date", section.get("date"))]
    facts += [("Source", section.get("source")), ("Per-seed values", section.get("per_seed_note"))]
    listed = [f"- {label}: {f'`{value}`' if label == 'Command' else value}" for label, value in facts if value]
    if not section.get("command") and not section.get("machine"):
        listed.append("- Command and machine: not recorded in the file")
    parts.append("\n".join(listed))
    parts.append(table(section["rows"], spec, anchors=section.get("kind") == "configs"))
    if section.get("notes"):
        parts.append(section["notes"])
    return "\n\n".join(parts)


def render_results(sections: list[dict]) -> str:
    contents = "\n".join(f"- [{s['title']}](#{s['name']})" for s in sections)
    intro = (
        "# Results\n\nEvery measurement of the project, one section per file of `docs/results/`. A figure is the "
        "mean over the sampling seeds, in brackets the lowest and highest seed; where the seeds' own values "
        "are kept, a 95 % confidence interval of the mean (Student's t) beside it."
    )
    return "\n\n".join([HEADER, intro, contents, *map(render_section, sections)]) + "\n"


def render_readme_block(sections: list[dict], link: str) -> str:
    configs = [s for s in sections if s.get("kind") == "configs"]
    if len(configs) != 1:
        raise ReportError(f"docs/results: expected one file with kind 'configs', found {len(configs)}")
    section = configs[0]
    rows = [{**row, "config": f"[`{row['config']}`]({link}#{row['id']})"} for row in section["rows"]]
    lead = section.get("readme_lead", "")
    return "\n".join([BEGIN, HEADER, "", lead, "", table(rows, README_COLUMNS), END])


def replace_block(text: str, block: str, path: Path) -> str:
    """``text`` with the part from the begin marker to the end marker replaced by ``block``; the rest untouched."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ReportError(f"{path}: no {BEGIN} ... {END} block to fill")
    return text[:start] + block + text[end + len(END) :]


def shown(path: Path) -> Path:
    """``path`` relative to the working folder when it lies below it: the name a user typed or sees."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


@reported_errors(ReportError, OSError)  # bad input: one line "error: ...", status 2
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "results", help="folder of the JSON files")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results.md", help="the page to render")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md", help="the file whose block to fill")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    sections = load(args.results)
    link = Path(os.path.relpath(args.out.resolve(), args.readme.resolve().parent)).as_posix()
    readme = args.readme.read_text(encoding="utf-8")
    wanted = {
        args.out: render_results(sections),
        args.readme: replace_block(readme, render_readme_block(sections, link), shown(args.readme)),
    }
    for path, text in wanted.items():
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        if args.check:
            source = f"{shown(args.results)}/*.json"
            print(
                f"error: {shown(path)} is not what {source} render; run python bench/report.py",
                file=sys.stderr,
            )
            return 1
        path.write_text(text, encoding="utf-8")
        print(f"wrote {shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

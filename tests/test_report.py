"""bench/report.py: docs/results.md and README.md's configs table rendered from results JSON, and --check."""

import json
import statistics

import pytest

from bench.report import main

T_975_2DF = 4.302652729911275  # Student's t, 97.5th percentile, 2 degrees of freedom (any t table)
JUDGES = ("classifier", "judge")


def bench_row(run: str, decoding: str, seeds: list[dict]) -> dict:
    """A row as bench/quality.py --json writes it: each figure's mean and [lowest, highest], and every seed's."""
    row = {"run": run, "train_min": 10.4, "decoding": decoding, "seeds": [0, 1, 2], "per_seed": seeds}
    for key in ("bits_per_pixel", "recon_acc", "fid", "fid_classifier", "decode_s"):
        values = [seed[key] for seed in seeds]
        row[key], row[f"{key}_range"] = statistics.fmean(values), [min(values), max(values)]
    row["pdr"] = {j: statistics.fmean(s["pdr"][j] for s in seeds) for j in JUDGES}
    row["pdr_range"] = {j: [min(s["pdr"][j] for s in seeds), max(s["pdr"][j] for s in seeds)] for j in JUDGES}
    return row


def seed(fid: float, judge: float) -> dict:
    return {
        "bits_per_pixel": 1.918,
        "recon_acc": 0.35,
        "fid": fid,
        "fid_classifier": 14.0,
        "decode_s": 3.9,
        "pdr": {"classifier": 0.9, "judge": judge},
    }


BENCH_ROWS = [
    {
        "run": "(80 real dev images)",
        "train_min": None,
        "decoding": None,
        "bits_per_pixel": None,
        "recon_acc": None,
        "fid": 0.0,
        "fid_classifier": 0.0,
        "decode_s": None,
        "seeds": None,
        "pdr": {"classifier": 0.96, "judge": 0.99},
    },
    bench_row("llama", "sampled", [seed(54.3, 0.80), seed(55.7, 0.85), seed(56.2, 0.82)]),
]
TRANSCRIBED = {
    "title": "Old measurements",
    "source": "transcribed from README.md at 6765bde",
    "command": "python bench/x.py",
    "machine": "2-core AMD EPYC, AVX2",
    "date": "2026-12-03",
    "per_seed_note": "not known (raw JSON not kept)",
    "rows": [
        {
            "run": "quick",
            "decoding": "best-of-16",
            "bits_per_pixel": 2.061,
            "fid": 57.4,
            "fid_range": [55.6, 60.7],
            "pdr": {"classifier": 0.98, "judge": 0.93},
            "pdr_range": {"classifier": [0.95, 1.0]},
            "per_seed": None,
        }
    ],
}
CONFIGS = {
    "kind": "configs",
    "title": "Configs",
    "readme_lead": "Minutes on a 2-core AMD EPYC.",
    "rows": [
        {
            "config": "llama",
            "train_min": 10.4,
            "threads": 2,
            "quality": {"file": "bench", "run": "llama", "decoding": "sampled"},
        },
        {
            "config": "quick",
            "train_min": 4.6,
            "threads": 2,
            "quality": {"file": "old", "run": "quick", "decoding": "best-of-16"},
        },
        {"config": "gpt2", "quality": None},
    ],
}
BEFORE = "# Project\n\nHand-written manual text, 1.918 included.\n\n"
AFTER = "\n\nMore manual text *after* the block.\n"


@pytest.fixture
def project(tmp_path):
    results = tmp_path / "docs" / "results"
    results.mkdir(parents=True)
    for name, data in (("bench", BENCH_ROWS), ("old", TRANSCRIBED), ("configs", CONFIGS)):
        (results / f"{name}.json").write_text(json.dumps(data))
    readme = tmp_path / "README.md"
    readme.write_text(BEFORE + "<!-- results:configs -->\nstale table\n<!-- /results:configs -->" + AFTER)
    args = ["--results", str(results), "--out", str(tmp_path / "docs" / "results.md"), "--readme", str(readme)]
    return tmp_path, args


def table_row(text: str, first_cells: str) -> list[str]:
    """The cells of the table row of ``text`` that starts with ``first_cells``."""
    (line,) = [line for line in text.splitlines() if line.startswith(f"| {first_cells} |")]
    return [cell.strip() for cell in line.strip("|").split("|")]


def section(page: str, name: str) -> str:
    """The part of docs/results.md that renders ``<name>.json``."""
    return page.split(f'<a id="{name}"></a>')[1].split("\n<a id=")[0]


def test_bench_rows_render_with_mean_range_and_confidence_interval(project):
    root, args = project
    assert main(args) == 0
    page = section((root / "docs" / "results.md").read_text(), "bench")
    columns = table_row(page, "run")
    assert columns[:4] == ["run", "train min", "decoding", "dev bits/pixel"]
    row = dict(zip(columns, table_row(page, "llama | 10.4 | sampled"), strict=True))
    assert row["Inception FID"] == "55.4 [54.3, 56.2]"
    assert row["PDR (judge)"] == "0.82 [0.80, 0.85]"
    assert row["dev bits/pixel"] == "1.918"  # every seed the same: no range, as bench/quality.py prints it
    fids = [54.3, 55.7, 56.2]
    half = T_975_2DF * statistics.stdev(fids) / len(fids) ** 0.5
    mean = statistics.fmean(fids)
    assert row["Inception FID 95 % CI"] == f"[{mean - half:.1f}, {mean + half:.1f}]"
    judges = [0.80, 0.85, 0.82]
    half = T_975_2DF * statistics.stdev(judges) / 3**0.5
    assert (
        row["PDR (judge) 95 % CI"] == f"[{statistics.fmean(judges) - half:.2f}, {statistics.fmean(judges) + half:.2f}]"
    )
    assert row["PDR (classifier) 95 % CI"] == "[0.90, 0.90]"  # every seed agrees: an interval of zero width
    reference = dict(zip(columns, table_row(page, "(80 real dev images)"), strict=True))
    assert reference["Inception FID 95 % CI"] == "-" and reference["decoding"] == "-"
    assert "- Command and machine: not recorded in the file" in page  # the bench's own list has no provenance


def test_transcribed_entries_keep_their_provenance_and_have_no_interval(project):
    root, args = project
    main(args)
    old = section((root / "docs" / "results.md").read_text(), "old")
    assert "## Old measurements" in old
    for line in (
        "- Command: `python bench/x.py`",
        "- Machine: 2-core AMD EPYC, AVX2",
        "- Date: 2026-12-03",
        "- Source: transcribed from README.md at 6765bde",
        "- Per-seed values: not known (raw JSON not kept)",
    ):
        assert line in old
    columns = table_row(old, "run")
    assert not [column for column in columns if "CI" in column]  # no per-seed values, no invented interval
    row = dict(zip(columns, table_row(old, "quick"), strict=True))
    assert row == {
        "run": "quick",
        "decoding": "best-of-16",
        "dev bits/pixel": "2.061",
        "Inception FID": "57.4 [55.6, 60.7]",
        "PDR (classifier)": "0.98 [0.95, 1.00]",
        "PDR (judge)": "0.93",
    }


def test_readme_block_is_replaced_and_the_rest_untouched(project):
    root, args = project
    main(args)
    text = (root / "README.md").read_text()
    assert text.startswith(BEFORE + "<!-- results:configs -->") and text.endswith("<!-- /results:configs -->" + AFTER)
    assert "stale table" not in text and "Minutes on a 2-core AMD EPYC." in text
    columns = table_row(text, "config")
    llama = dict(zip(columns, table_row(text, "[`llama`](docs/results.md#config-llama)"), strict=True))
    assert llama["training min"] == "10.4" and llama["Inception FID"] == "55.4 [54.3, 56.2]"
    assert llama["PDR (classifier)"] == "0.90" and llama["PDR (judge)"] == "0.82 [0.80, 0.85]"
    quick = dict(zip(columns, table_row(text, "[`quick`](docs/results.md#config-quick)"), strict=True))
    assert quick["dev bits/pixel"] == "2.061" and quick["PDR (classifier)"] == "0.98 [0.95, 1.00]"
    assert table_row(text, "[`gpt2`](docs/results.md#config-gpt2)")[1:] == ["-"] * (len(columns) - 1)
    page = (root / "docs" / "results.md").read_text()
    assert '<a id="config-llama"></a>llama' in page  # the anchor the README links to
    assert main(args) == 0 and (root / "README.md").read_text() == text  # rendering twice changes nothing


@pytest.mark.parametrize("edited", ["docs/results.md", "README.md"])
def test_check_fails_on_a_hand_typed_figure_and_passes_after_rendering(project, capsys, edited):
    root, args = project
    assert main([*args, "--check"]) == 1  # nothing rendered yet
    main(args)
    capsys.readouterr()
    assert main([*args, "--check"]) == 0
    path = root / edited
    path.write_text(path.read_text().replace("55.4 [54.3, 56.2]", "54.0 [54.3, 56.2]", 1))
    assert main([*args, "--check"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ") and edited.split("/")[-1] in error
    main(args)
    assert main([*args, "--check"]) == 0


def test_bad_input_is_one_line_naming_the_file(project, capsys):
    root, args = project
    (root / "docs" / "results" / "bench.json").write_text("[{")
    with pytest.raises(SystemExit, match="^2$"):  # the entry points' policy (cli/errors.py): one line, status 2
        main(args)
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "bench.json: not valid JSON" in error
    (root / "docs" / "results" / "bench.json").write_text(json.dumps(BENCH_ROWS))
    (root / "README.md").write_text("no markers here\n")
    with pytest.raises(SystemExit, match="^2$"):
        main(args)
    assert "README.md: no <!-- results:configs -->" in capsys.readouterr().err


def test_the_projects_results_are_rendered():
    """CI's guard: README.md's configs table and docs/results.md are what docs/results/*.json render."""
    assert main(["--check"]) == 0

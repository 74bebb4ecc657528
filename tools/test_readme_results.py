"""README.md stays a short page for users whose figures come from `results/`.

Run with:  .venv/bin/python -m pytest tools/ -q

* The Results block between the `results:begin` / `results:end` markers must be exactly what
  `tools/results_readme.py` makes of the committed `results/` (bench.json, eval.json): a figure
  typed by hand, or a results file changed without `scripts/bench.sh` rewriting README, fails.
* README.md is at most 300 lines and speaks of the project, not of its history: no "this
  round", no machine names (those belong in `results/`).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
sys.path.insert(0, str(TOOLS))
import results_readme  # noqa: E402

README = ROOT / "README.md"
MAX_LINES = 300
HISTORY_PHRASES = [
    "this round",
    "earlier today",
    "previous machine",
    "this session",
    "AMD EPYC",
    "Intel Xeon",
]


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def test_results_block_matches_results_folder():
    blocks = results_readme.MARKERS.findall(readme_text())
    assert len(blocks) == 1, "README.md must hold exactly one results:begin/results:end block"
    expected = results_readme.readme_block(ROOT / "results")
    assert blocks[0] == expected, (
        "README.md's Results block differs from what tools/results_readme.py makes of results/; "
        "rerun `.venv/bin/python tools/results_readme.py results` (or scripts/bench.sh)"
    )


def test_results_block_figures_are_in_the_sources():
    """Every number of the block's table is a value of eval.json or bench.json (rounded as
    printed) or a ratio of two bench.json frame rates: a second line of defence that names the
    figure when the first test fails."""
    bench, ev = results_readme.load(ROOT / "results")
    sources = set()
    for s in ev["summary"]:
        sources.add(f"{s['sad']:.2f}")
    means, _ = results_readme.mean_dtssd(ev)
    sources |= {f"{v:.2f}" for v in means.values()}
    fps = {}
    for r in bench["runs"]:
        sources.add(f"{r['fps']:.1f}")
        fps.setdefault((r["width"], r["height"]), []).append(r["fps"])
    for runs in fps.values():
        sources |= {f"{a / b:.2f}×" for a in runs for b in runs}
    block = results_readme.MARKERS.search(readme_text()).group(0)
    rows = [line for line in block.splitlines() if line.startswith("| `")]
    assert rows, "the Results block has no table rows"
    for row in rows:
        for cell in row.strip("|").split("|")[3:]:
            for figure in re.findall(r"\d+\.\d+×?", cell):
                assert figure in sources, f"{figure} in README row {row!r} is in no results file"


def test_results_block_has_one_table_and_two_plots():
    block = results_readme.MARKERS.search(readme_text()).group(0)
    rules = [line for line in block.splitlines() if line.startswith("|---")]
    plots = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", block)
    assert len(rules) == 1, "the Results block holds one table"
    assert len(plots) == 2, "the Results block holds two plots"
    for plot in plots:
        assert (ROOT / plot).is_file(), f"{plot} is missing"


def test_readme_is_short():
    lines = readme_text().count("\n")
    assert lines <= MAX_LINES, f"README.md has {lines} lines (at most {MAX_LINES})"


@pytest.mark.parametrize("phrase", HISTORY_PHRASES)
def test_readme_speaks_of_the_project_not_its_history(phrase):
    text = readme_text().lower()
    assert phrase.lower() not in text, f"README.md says {phrase!r}: history and machine names belong in results/"

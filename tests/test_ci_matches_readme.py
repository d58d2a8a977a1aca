"""CI runs exactly the test command the README gives: the README's second quick-start line is the last line of
``.ci/run``, verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```\n(.*?)\n```", quick_start, re.S)
    assert len(blocks) == 2, "the quick start gives two commands: the demo and the tests"
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci_lines[-1] == blocks[1], ".ci/run must end with the README's test command, verbatim"
    assert blocks[1].endswith("&& pytest")

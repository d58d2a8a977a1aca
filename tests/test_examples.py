"""The instructors' walk-through (examples/) quotes figures from running its script; this fails when a figure
in the text disagrees with the run, so the walk-through cannot go stale."""

from __future__ import annotations

import importlib.util
import json

from tests.conftest import REPO
from tests.test_readme_figures import disagreement, markers

EXAMPLES = REPO / "examples"


def _script():
    spec = importlib.util.spec_from_file_location("classroom_walkthrough", EXAMPLES / "classroom_walkthrough.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_walkthrough_quotes_its_run(tmp_path, capsys):
    assert _script().main(["--out", str(tmp_path)]) == 0
    assert f"figures in {tmp_path / 'figures.json'}" in capsys.readouterr().out
    figures = json.loads((tmp_path / "figures.json").read_text())
    found = markers((EXAMPLES / "classroom-walkthrough.md").read_text())
    assert len(found) >= 60 and {m["run"] for m in found} == {"walkthrough"}
    problems = [p for m in found if (p := disagreement(m, lambda run: figures))]
    assert not problems, "\n".join(problems)
    # what the text says in words: ResNet-50 below every ridge point, the other models above
    chips = ("h100-sxm", "tpu-v6e", "mtia-v2")
    ridges = [figures["chip"][c]["ridge_native"] for c in chips]
    assert figures["model"]["resnet50"]["intensity"] < min(ridges)
    assert all(figures["model"][m]["intensity"] > max(ridges) for m in ("dlrm-dcnv2", "bert-large", "llama3-8b"))
    assert all(figures["roofline"]["resnet50"][c]["bound"] == "memory" for c in chips)
    assert figures["network"]["llama3-8b"]["h100-sxm"]["crosses_domain"] == 1

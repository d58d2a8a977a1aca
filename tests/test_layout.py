"""The layout's promises: packages import one way (downward), nothing imports in a circle, and the
heavy libraries stay where the README says."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

from tests.conftest import REPO

SIM = REPO / "sim"
# lower layers first; a package may import only from its own layer or below
# (``facility``, ``money`` and ``sweep`` are the packages the next capabilities add, in their places)
LAYERS = [
    {"kernels", "catalog", "scenario", "rng", "stats", "progress"},
    {"fleet", "workload", "policies"},
    {"serving", "training"},
    {"facility", "money"},
    {"validation"},
    {"results"},
    {"runner"},
    {"sweep"},
    {"cli", "__init__", "__main__"},
]
RANK = {package: rank for rank, layer in enumerate(LAYERS) for package in layer}


def _package(path: Path) -> str:
    return path.relative_to(SIM).parts[0].removesuffix(".py")


def _imported_names(path: Path) -> list[str]:
    """Every dotted name a module imports, at the top or inside a function (``from a import b`` gives
    ``a`` and ``a.b``, since ``b`` may be a module)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def _imports(path: Path) -> set[str]:
    """Every ``sim.<package>`` a module imports."""
    return {parts[1] for parts in (name.split(".") for name in _imported_names(path))
            if parts[0] == "sim" and len(parts) > 1 and parts[1] in RANK}


def _graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    for path in SIM.rglob("*.py"):
        package = _package(path)
        for target in _imports(path) - {package}:
            graph.add_edge(package, target, module=str(path.relative_to(REPO)))
    return graph


def test_every_package_has_a_layer():
    packages = {_package(p) for p in SIM.rglob("*.py")}
    assert packages <= set(RANK), f"give these a layer in LAYERS: {sorted(packages - set(RANK))}"


def test_packages_import_downward_only():
    upward = [f"{data['module']} imports sim.{b} (layer {RANK[b]}) from layer {RANK[a]}"
              for a, b, data in _graph().edges(data=True) if RANK[b] > RANK[a]]
    assert not upward, "\n".join(upward)


def test_no_import_circles_between_packages():
    cycles = list(nx.simple_cycles(_graph()))
    assert not cycles, f"import circles: {cycles}"


def test_simpy_and_matplotlib_stay_in_their_packages():
    for path in SIM.rglob("*.py"):
        text = path.read_text()
        where = str(path.relative_to(SIM))
        if "import simpy" in text:
            assert where.startswith("training/"), f"{where} imports SimPy"
        if "import matplotlib" in text or "from matplotlib" in text:
            assert where.startswith("results/"), f"{where} imports matplotlib"


def test_no_import_circles_between_modules():
    """Inside a package too: e.g. a registry that imports its members, or the schema importing its loader."""
    modules = {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
               for p in SIM.rglob("*.py")}
    graph = nx.DiGraph()
    for name, path in modules.items():
        for target in _imported_names(path):
            if target in modules and target != name and not name.startswith(target + "."):
                graph.add_edge(name, target)
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, f"import circles: {cycles}"

"""Dependencies point one way: the adapters (``scrapers``, ``notifiers``) import the core
(``tracker``), never each other, and the core imports no adapter except in its one
composition root, ``tracker/compose.py`` (``KNOWN``, each import with why).

The core finds sources and channels through the plugin registry (``tracker.plugins``: entry
points, and for channels a table of built-in ``module:PLUGIN`` names, which are not imports).
The test is a ratchet: a new core→adapter import fails it, and so does a listed one that is
gone (take it off the list). It also fails on a cycle: between packages (``tracker``, its
subpackages, ``scrapers``, ``notifiers`` and ``notifiers.telegram``), and between modules
through the imports that run when a module is loaded.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping, Set
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ADAPTERS = ("scrapers", "notifiers")
PACKAGES = ("tracker", "scrapers", "notifiers")
COMPOSE = "tracker/compose.py"

#: (core module, adapter module it imports): only the composition root
KNOWN = {
    (COMPOSE, "notifiers"): "builds every enabled channel (create_notifiers)",
    (COMPOSE, "notifiers.console"): "the console channel on the stream the CLI gives",
    (COMPOSE, "notifiers.email"): "emails link the web app when web.public_url is set",
    (COMPOSE, "notifiers.telegram"): "Telegram's pacing is set on the channel after it is built",
    (COMPOSE, "notifiers.telegram.pacing"): "Telegram's pacing needs the database engine",
    (COMPOSE, "notifiers.telegram.bot"): "the daemon runs the bot",
    (COMPOSE, "scrapers._http"): "the shared HTTP client the sources fetch with",
}


def modules() -> dict[str, Path]:
    """Every module of the three packages by dotted name (migrations left out)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imports_in(path: Path, *, top_level_only: bool = False) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(module, names imported from it) for each import in ``path``, nested ones included
    unless ``top_level_only`` (the imports that run when the module is loaded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, ()
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, tuple(alias.name for alias in node.names)


def imports(package: str) -> Iterator[tuple[str, str]]:
    """(file, imported module) for every import in ``package``, nested ones included."""
    for path in sorted((REPO / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        name = path.relative_to(REPO).as_posix()
        for module, _names in _imports_in(path):
            yield name, module


def top(module: str) -> str:
    return module.split(".", 1)[0]


def package_of(module: str, known: Mapping[str, Path]) -> str:
    """The package a module belongs to: ``tracker.rules.store`` → ``tracker.rules``."""
    path = known[module]
    return ".".join(path.relative_to(REPO).parts[:-1])


def module_edges(*, top_level_only: bool) -> dict[str, set[str]]:
    """Module → the project modules it imports (``from a import b`` counts ``a.b`` when
    that is a module), leaving out the composition root's listed imports."""
    known = modules()
    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        file = path.relative_to(REPO).as_posix()
        for module, names in _imports_in(path, top_level_only=top_level_only):
            if (file, module) in KNOWN:
                continue
            for target in (module, *(f"{module}.{n}" for n in names)):
                if target in known and target != name:
                    edges[name].add(target)
    return edges


def cycles(edges: Mapping[str, Set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one node (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def package_edges() -> dict[str, set[str]]:
    """Package → the packages its modules import. A subpackage importing its own parent
    (``tracker.rules`` reading ``tracker.models``) builds on the layer around it and is
    not counted: the parent's upper modules (``tracker.delivery.outbox``) use the subpackage."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for module, targets in module_edges(top_level_only=False).items():
        source = package_of(module, known)
        graph.setdefault(source, set())
        for target in targets:
            other = package_of(target, known)
            if other != source and not source.startswith(other + "."):
                graph[source].add(other)
    return graph


def test_the_core_imports_no_adapter_beyond_the_known_ones() -> None:
    found = {(path, module) for path, module in imports("tracker") if top(module) in ADAPTERS}
    assert sorted(found - set(KNOWN)) == [], "the core must not import an adapter"
    assert sorted(set(KNOWN) - found) == [], "gone: take these off KNOWN"


def test_adapters_never_import_each_other() -> None:
    for package in ADAPTERS:
        others = {a for a in ADAPTERS if a != package}
        crossing = [(path, module) for path, module in imports(package) if top(module) in others]
        assert crossing == [], f"{package} imports another adapter"


def test_no_cycle_between_packages() -> None:
    graph = package_edges()
    assert {"tracker", "tracker.rules", "tracker.demo.fakes", "scrapers", "notifiers",
            "notifiers.telegram"} <= set(graph)
    assert cycles(graph) == []


def test_no_import_cycle_between_modules_when_they_load() -> None:
    """Imports inside functions are how a module defers one (the CLI's commands); the
    imports that run at load time must form no cycle."""
    assert cycles(module_edges(top_level_only=True)) == []


def test_the_cycle_checker_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    # the core's upper modules and tracker.rules do import each other: the parent rule
    # above is what keeps that from counting
    edges = module_edges(top_level_only=False)
    assert "tracker.rules.matcher" in edges["tracker.delivery.outbox"]
    assert any(target.startswith("tracker.") and not target.startswith("tracker.rules")
               for target in edges["tracker.rules.store"])


def test_the_checker_sees_nested_imports() -> None:
    """The pipeline's import of the composition root sits inside a function: a checker that
    read only the top of each file would miss it (and this whole test would be weaker than
    it looks)."""
    assert ("tracker/pipeline.py", "tracker.compose") in set(imports("tracker"))
    assert "tracker.compose" not in module_edges(top_level_only=True)["tracker.pipeline"]

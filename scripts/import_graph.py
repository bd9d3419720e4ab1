"""Measure a package's import graph: modules, layers, imports, imports pointing back up, cycles.

    .venv/bin/python scripts/import_graph.py [PACKAGE ...] [--root DIR] [--list]

Every `import` statement counts, a lazy one inside a function included (it is the same
dependency, only later). An import of a package's own module from inside that package
counts once per pair of modules. Figures, per package:

- modules: the package's modules, sub-packages' `__init__` included;
- imports: distinct (importer, imported) pairs of those modules;
- cycles: groups of modules that import each other round in a circle (strongly connected
  components of more than one module);
- back up: imports that point back up once the modules are laid out in layers (the fewest
  a greedy ordering finds to remove so that no cycle is left: zero exactly when there is
  no cycle);
- layers: the longest chain of imports, in modules, once those are removed.

`--packages` counts each sub-package (and top-level module) as one node, the package's own
`__init__` left out. `--list` prints the cycles' modules and the imports counted as back up. The layered
contracts themselves live in pyproject.toml and are checked by `lint-imports`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grimp


def internal_edges(graph, package: str) -> tuple[set[str], set[tuple[str, str]]]:
    modules = {m for m in graph.modules if m == package or m.startswith(package + ".")}
    edges = set()
    for m in modules:
        for imported in graph.find_modules_directly_imported_by(m):
            if imported in modules and imported != m:
                edges.add((m, imported))
    return modules, edges


def strongly_connected(modules: set[str], edges: set[tuple[str, str]]) -> list[set[str]]:
    """Tarjan's components, iteratively (no recursion limit)."""
    out: dict[str, list[str]] = {m: [] for m in modules}
    for a, b in edges:
        out[a].append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    counter = 0
    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, iter(sorted(out[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = set()
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.add(m)
                        if m == node:
                            break
                    components.append(comp)
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(out[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return components


def back_edges(modules: set[str], edges: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Eades-Lin-Smyth: order the modules so that few imports point backwards; those that
    do are the imports back up."""
    out = {m: {b for a, b in edges if a == m} for m in modules}
    inc = {m: {a for a, b in edges if b == m} for m in modules}
    left, right = [], []
    remaining = set(modules)
    while remaining:
        changed = True
        while changed:
            changed = False
            for m in sorted(remaining):
                if not (out[m] & remaining):  # imports nothing left: goes last
                    right.append(m)
                    remaining.discard(m)
                    changed = True
                elif not (inc[m] & remaining):  # imported by nothing left: goes first
                    left.append(m)
                    remaining.discard(m)
                    changed = True
        if remaining:
            m = max(sorted(remaining), key=lambda x: len(out[x] & remaining) - len(inc[x] & remaining))
            left.append(m)
            remaining.discard(m)
    order = {m: i for i, m in enumerate(left + right[::-1])}  # importers before what they import
    return {(a, b) for a, b in edges if order[a] > order[b]}


def layers(modules: set[str], edges: set[tuple[str, str]]) -> int:
    out = {m: [b for a, b in edges if a == m] for m in modules}
    depth: dict[str, int] = {}

    def deep(m: str) -> int:
        stack = [m]
        while stack:
            x = stack[-1]
            pending = [c for c in out[x] if c not in depth]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            depth[x] = 1 + max((depth[c] for c in out[x]), default=0)
        return depth[m]

    return max((deep(m) for m in modules), default=0)


def collapse(modules: set[str], edges: set[tuple[str, str]], package: str):
    """Each sub-package as one node (`package.X` for everything under it)."""
    top = {m: ".".join(m.split(".")[:2]) for m in modules}
    nodes = {top[m] for m in modules if m != package}
    return nodes, {(top[a], top[b]) for a, b in edges if top[a] != top[b] and package not in (a, b)}


def measure(package: str, root: Path, *, packages: bool = False) -> dict:
    sys.path.insert(0, str(root))
    graph = grimp.build_graph(package, include_external_packages=False, cache_dir=None)
    modules, edges = internal_edges(graph, package)
    if packages:
        modules, edges = collapse(modules, edges, package)
    cycles = [c for c in strongly_connected(modules, edges) if len(c) > 1]
    back = back_edges(modules, edges)
    return {
        "package": package,
        "modules": len(modules),
        "layers": layers(modules, edges - back),
        "imports": len(edges),
        "back_up": sorted(back),
        "cycles": sorted(sorted(c) for c in cycles),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("packages", nargs="*", default=["digits_core"])
    p.add_argument("--root", type=Path, default=Path.cwd(), help="the folder holding the packages")
    p.add_argument("--list", action="store_true", help="also name the cycles and the imports back up")
    p.add_argument("--packages", dest="by_package", action="store_true",
                   help="each sub-package (and top-level module) as one node, the package itself left out")
    args = p.parse_args(argv)
    for package in args.packages:
        m = measure(package, args.root.resolve(), packages=args.by_package)
        what = "modules-or-packages" if args.by_package else "modules"
        print(f"{package}: {m['modules']} {what}, {m['layers']} layers, {m['imports']} imports, "
              f"{len(m['back_up'])} back up, {len(m['cycles'])} cycles")
        if args.list:
            for c in m["cycles"]:
                print(f"  cycle of {len(c)}: {', '.join(x.rsplit('.', 1)[-1] for x in c)}")
            for a, b in m["back_up"]:
                print(f"  back up: {a} -> {b}")


if __name__ == "__main__":
    main()

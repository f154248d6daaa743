#!/usr/bin/env python3
"""Lists import cycles between the modules of each crate under crates/.

A module depends on another when its file names it: `use crate::m::…`, `crate::m::…`,
`super::m` (from a child), or `use crate::{m, …}` for a module `m` of the crate. Items
re-exported at the crate root (`crate::Name`) count as a dependency on lib.rs only, which is
how a crate's root is meant to be used. Exits 1 when any crate has a cycle.

    python3 scripts/module-cycles.py   # from the repository root
"""
import re
import sys
from pathlib import Path

ROOT = Path.cwd() / "crates"


def modules(src: Path) -> dict[str, Path]:
    """Module path (`a::b`) -> file, for every .rs file of a crate's src."""
    out = {}
    for f in src.rglob("*.rs"):
        rel = f.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "mod":
            parts = parts[:-1]
        if parts in (["lib"], ["main"]):
            parts = []
        out["::".join(parts)] = f
    return out


def deps(name: str, text: str, known: set[str]) -> set[str]:
    text = re.sub(r"#\[cfg\(test\)\]\s*mod tests \{.*", "", text, flags=re.S)
    text = re.sub(r"^\s*//.*$", "", text, flags=re.M)
    found = set()
    for m in re.finditer(r"crate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)", text):
        parts = m.group(1).split("::")
        for k in range(len(parts), 0, -1):
            cand = "::".join(parts[:k])
            if cand in known:
                found.add(cand)
                break
    for m in re.finditer(r"use crate::\{([^}]*)\}", text):
        for item in m.group(1).split(","):
            item = item.strip().split("::")[0]
            if item in known:
                found.add(item)
    parent = name.rsplit("::", 1)[0] if "::" in name else ""
    for m in re.finditer(r"super::([a-z_][a-z0-9_]*)", text):
        cand = f"{parent}::{m.group(1)}" if parent else m.group(1)
        if cand in known:
            found.add(cand)
    found.discard(name)
    found.discard("")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    seen, stack, out = set(), [], []

    def visit(n, path):
        if n in path:
            cyc = path[path.index(n):]
            key = tuple(sorted(cyc))
            if key not in seen:
                seen.add(key)
                out.append(cyc + [n])
            return
        for d in sorted(graph.get(n, ())):
            visit(d, path + [n])

    for n in sorted(graph):
        visit(n, [])
    return out


bad = False
for crate in sorted(p for p in ROOT.iterdir() if (p / "src").is_dir()):
    mods = modules(crate / "src")
    known = set(mods)
    graph = {n: deps(n, f.read_text(), known) for n, f in mods.items()}
    for cyc in cycles(graph):
        bad = True
        print(f"{crate.name}: " + " -> ".join(cyc))
if not bad:
    print("no import cycles between modules")
sys.exit(1 if bad else 0)

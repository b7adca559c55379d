#!/usr/bin/env python3
"""Fails if the modules of a crate import each other in a cycle.

    python3 scripts/check-module-cycles.py [CRATE_DIR ...]

Without arguments it checks every crate under host/ and sdk/ that has src/lib.rs or
src/main.rs. A module is a .rs file under src/, named by its path (`ingest`,
`voice::sip`, `transport::stream`); lib.rs/main.rs is `crate`. A file gets an edge to
the module that *defines* an item it names through `crate::...`, `super::...`,
`self::...` or the name of one of its own child modules (`use stream::connect;`) —
in `use` trees and in code alike, so spelling a path differently cannot hide a cycle.

Paths are resolved through `pub use` re-exports (`crate::Store` re-exported from
`store` leads to `store`); a re-export is a doorway, not a dependency, so it is not an
edge itself, nor is `mod x;`. Comments, strings, `#[cfg(test)] mod ... { }` blocks,
tests.rs files, tests/ directories and src/bin/ are ignored. Item definitions are
found by pattern, not by a Rust parser: an item named by a macro or a path the
script cannot place is attributed to the module where the lookup stopped.

Prints each cycle as `crate-dir: a -> b -> a (file:line of each edge)` and exits 1,
or prints `no module import cycles in N crates` and exits 0.
"""

import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
ITEM = re.compile(  # not after `'`: `&'static str` defines nothing
    r"(?<!['\w])(?:struct|enum|union|trait|type|fn|const|static|macro_rules!)\s+"
    r"(" + IDENT + ")")
MOD = re.compile(r"\bmod\s+(" + IDENT + r")\s*[;{]")
USE = re.compile(r"(?<![\w$])(pub(?:\s*\([^)]*\))?\s+)?use\s+([^;]+);")
CODE_PATH = re.compile(r"(?<![\w$:.])(" + IDENT + r"(?:\s*::\s*" + IDENT + r")+)")


def strip(text):
    """Blanks comments, strings and char literals, keeping newlines (line numbers)."""
    out, i, n = [], 0, len(text)
    pattern = re.compile(r"""//[^\n]*              # line comment
                             | /\*                 # block comment (nested, below)
                             | (?<!\w)[bc]?r(\#*)"  # raw string
                             | (?<!\w)[bc]?"       # string
                             | (?<!\w)b?'(?:\\u\{\w*\}|\\.|[^\\'\n])'  # char""", re.X)
    while i < n:
        m = pattern.search(text, i)
        if not m:
            out.append(text[i:])
            break
        out.append(text[i:m.start()])
        tok = m.group(0)
        if tok.startswith("/*"):
            depth, j = 1, m.end()
            while depth and j < n:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
        elif m.group(1) is not None:
            close = '"' + m.group(1)
            j = text.find(close, m.end())
            j = n if j < 0 else j + len(close)
        elif tok.endswith('"') and not tok.startswith("//"):
            j = m.end()
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
        else:
            j = m.end()
        out.append(re.sub(r"[^\n]", " ", text[m.start():j]))
        i = j
    return "".join(out)


def drop_test_modules(code):
    """Blanks `#[cfg(test)] mod name { ... }` blocks."""
    test_mod = r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*mod\s+\w+\s*\{"
    for m in reversed(list(re.finditer(test_mod, code))):
        depth, j = 1, m.end()
        while depth and j < len(code):
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            j += 1
        code = code[:m.start()] + re.sub(r"[^\n]", " ", code[m.start():j]) + code[j:]
    return code


def expand_use_tree(tree):
    """Each (path, name bound) of a use tree.

    `a::{b, c::{self, D as E}}` -> (a::b, b), (a::c, c), (a::c::D, E) as lists of segments.
    """
    tree = re.sub(r"\s+", "", re.sub(r"\s+as\s+", "@", tree))
    uses, stack, prefix, seg = [], [], [], ""
    for ch in tree + ",":
        if ch == "{":
            stack.append(prefix)
            prefix, seg = prefix + [s for s in seg.split("::") if s], ""
        elif ch in ",}":
            if seg:
                path, _, rename = seg.partition("@")
                path = prefix + path.split("::")
                if path[-1] == "self":
                    path = path[:-1]
                if path:
                    uses.append((path, rename or path[-1]))
            seg = ""
            if ch == "}":
                prefix = stack.pop()
        else:
            seg += ch
    return uses


class Crate:
    def __init__(self, crate_dir):
        self.dir = crate_dir
        self.code = {}  # module tuple -> (file, stripped code)
        self.children = defaultdict(set)  # module -> child module names
        self.items = defaultdict(set)  # module -> item names it defines
        self.aliases = defaultdict(dict)  # module -> name -> absolute path it imports
        self.globs = defaultdict(list)  # module -> absolute paths of its `use x::*`
        src = crate_dir / "src"
        for f in sorted(src.rglob("*.rs")):
            rel = f.relative_to(src).with_suffix("").parts
            if rel[0] == "bin" or f.name == "tests.rs" or "tests" in rel[:-1]:
                continue
            if rel in (("lib",), ("main",)):
                rel = ()
            elif rel[-1] == "mod":
                rel = rel[:-1]
            self.code[rel] = (f, drop_test_modules(strip(f.read_text())))
        for module, (_, code) in self.code.items():
            self.children[module] |= set(MOD.findall(code))
            self.items[module] |= set(ITEM.findall(code))
            for m in USE.finditer(code):
                for path, bound in expand_use_tree(m.group(2)):
                    absolute = self.absolute(module, path)
                    if absolute is not None:
                        if path[-1] == "*":
                            self.globs[module].append(absolute[:-1])
                        else:
                            self.aliases[module][bound] = absolute

    def absolute(self, module, path):
        """The path from the crate root, or None when it leaves the crate."""
        head, rest = path[0], list(path[1:])
        if head == "crate":
            return rest
        if head == "self":
            return list(module) + rest
        if head == "super":
            up = list(module)
            while True:
                if not up:
                    return None  # `super` above the crate root: malformed, ignore
                up.pop()
                if not rest or rest[0] != "super":
                    return up + rest
                rest.pop(0)
        if head in self.children[module]:
            return list(module) + list(path)
        return None

    def defining_module(self, path, depth=0):
        """The module that defines the item `path` (absolute) names."""
        module = ()
        for i, seg in enumerate(path):
            if seg in self.children[module] and module + (seg,) in self.code:
                module += (seg,)
            elif seg in self.items[module] or depth > 16:  # depth: a re-export loop
                return module
            elif seg in self.aliases[module]:
                return self.defining_module(self.aliases[module][seg] + path[i + 1:], depth + 1)
            else:
                for glob in self.globs[module]:
                    found = self.defining_module(glob + path[i:], depth + 1)
                    if found != tuple(glob):
                        return found
                return module
        return module

    def edges(self):
        """{(from, to): 'file:line'} with the first place each edge is made."""
        found = {}
        for module, (file, code) in self.code.items():
            refs = []
            for m in USE.finditer(code):
                if not m.group(1):
                    refs += [(m.start(), p) for p, _ in expand_use_tree(m.group(2))]
            uses = [(m.start(), m.end()) for m in USE.finditer(code)]
            for m in CODE_PATH.finditer(code):
                if not any(a <= m.start() < b for a, b in uses):
                    refs.append((m.start(), re.sub(r"\s+", "", m.group(1)).split("::")))
            for pos, path in sorted(refs, key=lambda r: r[0]):
                absolute = self.absolute(module, [s for s in path if s != "*"])
                if absolute is None:
                    continue
                target = self.defining_module(absolute)
                if target != module and (module, target) not in found:
                    line = code.count("\n", 0, pos) + 1
                    found[(module, target)] = f"{file.relative_to(self.dir)}:{line}"
        return found


def name(module):
    return "::".join(module) or "crate"


def cycles(edges):
    """One shortest cycle through each module that lies on a cycle, deduplicated."""
    graph = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    seen, result = set(), []
    for start in sorted(graph):
        paths, visited = [[start]], {start}
        while paths:
            path = paths.pop(0)
            for nxt in sorted(graph[path[-1]]):
                if nxt == start:
                    cycle = path
                    key = min(tuple(cycle[i:] + cycle[:i]) for i in range(len(cycle)))
                    if key not in seen:
                        seen.add(key)
                        result.append(list(key))
                    paths = []
                    break
                if nxt not in visited:
                    visited.add(nxt)
                    paths.append(path + [nxt])
    return result


def crate_dirs(args):
    """(label, path) of the crates to check: the arguments, or every crate of the repo."""
    if args:
        return [(arg.rstrip("/"), Path(arg)) for arg in args]
    found = [ROOT / "sdk", *(ROOT / "host").iterdir(), *(ROOT / "sdk").iterdir()]
    return sorted((str(d.relative_to(ROOT)), d) for d in found
                  if (d / "src/lib.rs").exists() or (d / "src/main.rs").exists())


def main(args):
    dirs = crate_dirs(args)
    failed = False
    for label, crate_dir in dirs:
        if not (crate_dir / "src").is_dir():
            sys.exit(f"{label}: no src/ directory, not a crate")
        edges = Crate(crate_dir).edges()
        for cycle in cycles(edges):
            failed = True
            steps = zip(cycle, cycle[1:] + cycle[:1])
            arrows = " -> ".join(name(m) for m in cycle + cycle[:1])
            where = ", ".join(edges[s] for s in steps)
            print(f"{label}: {arrows} ({where})")
    if failed:
        return 1
    print(f"no module import cycles in {len(dirs)} crates")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

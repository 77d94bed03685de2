#!/usr/bin/env python3
"""Fails on import cycles between a Rust crate's top-level modules.

    check_module_cycles.py [--allow FILE] [--explain] SRC_DIR...
    check_module_cycles.py --self-test

A top-level module is `src/x.rs` or `src/x/`; `lib.rs` and `main.rs` are the
assembly and are left out. Module `a` depends on `b` when a file of `a` names
`crate::b` (in a path or a `use crate::{b, ...}` group), names an item that
`lib.rs` / `main.rs` re-export from `b` (`crate::Item`), or climbs to the
crate root with `super::` and names `b`. Comments and unit-test modules
(`#[cfg(test)] mod tests { ... }`, `tests.rs` files) do not count: tests may
look anywhere. A strongly connected group of more than one module is a cycle.

The allow-list FILE names cycles that are known and being removed, one a
line, as `SRC_DIR: module module ...` (`#` starts a comment). The check
fails on any cycle not listed exactly, so also on a listed cycle that grew;
and on a listed cycle that shrank or is gone, so the list stays honest.
Exit 0 when clean, 1 on a finding, 2 on bad usage.
"""
import os
import re
import sys
import tempfile

CRATE_PATH = re.compile(r"\bcrate::([A-Za-z_][A-Za-z0-9_]*)")
CRATE_GROUP = re.compile(r"\bcrate::\{")
SUPER_PATH = re.compile(r"\b((?:super::)+)([A-Za-z_][A-Za-z0-9_]*)")
TEST_MOD = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{")
REEXPORT = re.compile(r"\bpub\s+use\s+(?:self::|crate::)?([a-z_][a-z0-9_]*)::([^;]*);")


def strip_comments(text):
    """Removes `//` and `/* */` comments, keeping string literals intact."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def block_end(text, open_brace):
    """The index just past the `}` matching the `{` at `open_brace`."""
    depth = 0
    for i in range(open_brace, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


def strip_test_modules(text):
    while True:
        m = TEST_MOD.search(text)
        if not m:
            return text
        text = text[: m.start()] + text[block_end(text, m.end() - 1) :]


def group_heads(group):
    """First path segment of each entry of a `{a, b::c, d::{e, f}}` group."""
    heads, depth, current = [], 0, ""
    for c in group[1:-1]:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if c == "," and depth == 0:
            heads.append(current)
            current = ""
        else:
            current += c
    heads.append(current)
    return {h.strip().split("::")[0].split(" as ")[0].strip() for h in heads if h.strip()}


def top_level_modules(src):
    mods = set()
    for entry in os.listdir(src):
        path = os.path.join(src, entry)
        if entry.endswith(".rs") and os.path.isfile(path):
            mods.add(entry[:-3])
        elif os.path.isdir(path) and entry != "bin":
            mods.add(entry)
    return mods - {"lib", "main"}


def reexports(src, mods):
    """Items the crate root re-exports, mapped to the module they come from."""
    items = {}
    for root in ("lib.rs", "main.rs"):
        path = os.path.join(src, root)
        if not os.path.exists(path):
            continue
        text = strip_comments(open(path, encoding="utf-8").read())
        for module, rest in REEXPORT.findall(text):
            if module not in mods:
                continue
            names = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", rest)
            for name in names:
                items.setdefault(name, module)
            # `pub use x::{A as B}` exports B; the `as` target is in names too.
    return items


def module_of(src, path):
    rel = os.path.relpath(path, src).replace(os.sep, "/").split("/")
    top = rel[0][:-3] if rel[0].endswith(".rs") else rel[0]
    depth = len(rel) - (1 if rel[-1] == "mod.rs" else 0)
    return top, depth


def edges_of(src):
    """{module: {dependency: set of names that made the edge}}."""
    mods = top_level_modules(src)
    items = reexports(src, mods)
    edges = {}
    for directory, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs") or name == "tests.rs":
                continue
            path = os.path.join(directory, name)
            if os.path.dirname(path) == src.rstrip("/") and name in ("lib.rs", "main.rs"):
                continue
            if "tests" in os.path.relpath(path, src).split(os.sep)[:-1]:
                continue
            module, depth = module_of(src, path)
            text = strip_test_modules(strip_comments(open(path, encoding="utf-8").read()))
            named = set(CRATE_PATH.findall(text))
            for m in CRATE_GROUP.finditer(text):
                named |= group_heads(text[m.end() - 1 : block_end(text, m.end() - 1)])
            for supers, head in SUPER_PATH.findall(text):
                if supers.count("super::") >= depth:
                    named.add(head)
            for head in named:
                target = head if head in mods else items.get(head)
                if target and target != module:
                    edges.setdefault(module, {}).setdefault(target, set()).add(head)
    return mods, edges


def cycles(edges):
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(frozenset(group))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def read_allow(path):
    allowed = {}
    for number, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        src, sep, modules = line.partition(":")
        if not sep or len(modules.split()) < 2:
            sys.exit(f"{path}:{number}: expected `SRC_DIR: module module ...`")
        allowed.setdefault(os.path.normpath(src.strip()), []).append(frozenset(modules.split()))
    return allowed


def check(srcs, allowed, explain=False, out=print):
    failed = False
    for src in srcs:
        key = os.path.normpath(src)
        mods, edges = edges_of(src)
        found = cycles(edges)
        allow = list(allowed.get(key, []))
        for group in found:
            names = " ".join(sorted(group))
            if group in allow:
                allow.remove(group)
                out(f"{key}: known cycle (allow-listed): {names}")
                continue
            failed = True
            out(f"{key}: import cycle: {names}")
            grown = [a for a in allow if a < group]
            if grown:
                allow = [a for a in allow if a not in grown]
                out(f"  it grew from the allow-listed {' '.join(sorted(grown[0]))}")
            for a in sorted(group):
                for b in sorted(edges.get(a, {})):
                    if b in group:
                        out(f"  {a} -> {b} ({', '.join(sorted(edges[a][b]))})")
        for group in allow:
            failed = True
            out(f"{key}: the allow-listed cycle {' '.join(sorted(group))} is gone or shrank: "
                "update the allow list")
        if explain:
            for a in sorted(edges):
                for b in sorted(edges[a]):
                    out(f"  {a} -> {b} ({', '.join(sorted(edges[a][b]))})")
        count = sum(len(e) for e in edges.values())
        out(f"{key}: {len(mods)} top-level modules, {count} edges, {len(found)} cycle(s)")
    stale = set(allowed) - {os.path.normpath(s) for s in srcs}
    for key in sorted(stale):
        failed = True
        out(f"{key}: in the allow list but not checked")
    return not failed


def self_test():
    """A synthetic crate: clean, then with a cycle, allowed, grown and gone."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src")
        os.makedirs(os.path.join(src, "c"))

        def write(rel, text):
            with open(os.path.join(src, rel), "w", encoding="utf-8") as f:
                f.write(text)

        write("lib.rs", "pub mod a;\npub mod b;\npub mod c;\npub mod d;\npub use c::inner::Thing;\n")
        # a -> b, c -> b (through super::super); comments and tests are no edges.
        write("a.rs", "use crate::b::B;\n// crate::c is only a comment\n"
              "#[cfg(test)]\npub(crate) mod tests {\n    use crate::c::X;\n}\n")
        write("b.rs", "pub struct B;\n")
        write("c/mod.rs", "pub mod inner;\n")
        write("c/inner.rs", "use super::super::b;\npub struct Thing;\n")
        write("c/tests.rs", "use crate::a;\n")
        write("d.rs", "pub struct D;\n")
        quiet = lambda *_: None
        assert check([src], {}, out=quiet), "clean crate reported a cycle"

        # b -> c closes b <-> c (the edge back is the super::super path).
        write("b.rs", "use crate::{c::{inner, X}, d as e};\npub struct B;\n")
        assert not check([src], {}, out=quiet), "b <-> c through super::super not found"
        allow = {os.path.normpath(src): [frozenset({"b", "c"})]}
        assert check([src], allow, out=quiet), "allow-listed cycle failed"

        # b -> d (named in b's group as `d as e`) and d -> c (through the
        # crate root's re-export of c's Thing): the cycle grows to b c d.
        write("d.rs", "use crate::Thing;\npub struct D;\n")
        assert not check([src], allow, out=quiet), "grown cycle passed"

        # The allow-listed cycle is gone: the list must be updated.
        write("d.rs", "pub struct D;\n")
        write("b.rs", "pub struct B;\n")
        assert not check([src], allow, out=quiet), "gone allow-listed cycle passed"
        assert check([src], {}, out=quiet), "clean again"
    print("check_module_cycles.py: self-test passed")


def main(argv):
    if argv == ["--self-test"]:
        self_test()
        return 0
    allowed, explain, srcs = {}, False, []
    args = iter(argv)
    for arg in args:
        if arg == "--allow":
            allowed = read_allow(next(args, None) or sys.exit("--allow needs a file"))
        elif arg == "--explain":
            explain = True
        elif arg.startswith("-"):
            print(__doc__, file=sys.stderr)
            return 2
        else:
            srcs.append(arg)
    if not srcs:
        print(__doc__, file=sys.stderr)
        return 2
    return 0 if check(srcs, allowed, explain) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Checks the module rules of docs/MODULES.md on every C++ and CUDA file.

The table in docs/MODULES.md (the one headed `| module | files | may include | libraries |`) is read
as the rules, so the document and the check cannot drift apart. It fails (exit 1, one line per
problem) when:
  - a file includes a header of a module its own module may not include;
  - a file includes a library header (Qt, CUDA, SQLite, ...) its module may not use;
  - an include climbs out of a folder ("../");
  - files include each other in a loop. Loops are looked for between components, a header and its
    source taken as one (x.h and x.cpp), so that x.cpp -> y.h and y.cpp -> x.h is a loop too: the two
    cannot be understood, tested or linked one without the other.
The build enforces the rest (a target reaches only the headers of the targets it links,
cmake/MoescopeModules.cmake), and tests/modules/include_roots_test.py shows it.

  scripts/check-includes.py [--root DIR]   check the tree at DIR (default: this repository)
  scripts/check-includes.py --self-test    plant each kind of violation in a scratch tree; fail unless
                                           every one is reported and a clean tree passes
"""

import fnmatch
import os
import re
import sys
import tempfile

from check_common import parse_args, self_test_result

SOURCE_SUFFIXES = (".h", ".hpp", ".cpp", ".cu", ".cuh")
TABLE_HEADER = ["module", "files", "may include", "libraries"]

# Library header families named in the table's last column. A header of no family (the standard
# library, POSIX) may be included anywhere.
LIBRARIES = {
    "Qt": r"Q[A-Za-z]*|Qt[A-Za-z]+/.*",
    "CUDA": r"cuda[A-Za-z0-9_]*\.h|cuda/.*|cublas.*|cudnn.*|curand.*|cub/.*|thrust/.*|cooperative_groups.*|mma\.h",
    "CUPTI": r"cupti.*",
    "NVTX": r"nvtx3/.*|nvToolsExt.*",
    "NCCL": r"nccl.*",
    "MPI": r"mpi\.h|mpi/.*",
    "SQLite": r"sqlite3\.h",
    "JSON": r"nlohmann/.*",
    "TOML": r"toml\+\+/.*",
    "PCRE2": r"pcre2\.h",
    "zlib": r"zlib\.h",
    "CLI11": r"CLI/.*",
    "GoogleTest": r"gtest/.*|gmock/.*",
    "benchmark": r"benchmark/.*",
}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


class Module:
    def __init__(self, name, patterns, may, libraries):
        self.name, self.patterns, self.may, self.libraries = name, patterns, may, libraries


def split_cell(cell):
    cell = re.sub(r"\([^)]*\)", "", cell)  # "(...)" in a cell is a note for the reader
    items = [x.strip().strip("`") for x in cell.split(",")]
    return [x for x in items if x and x not in ("-", "—", "nothing")]


def read_table(path):
    """The rules: [Module], from the table of MODULES.md."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    modules, in_table = [], False
    for number, line in enumerate(lines, 1):
        if not line.startswith("|"):
            if in_table:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not in_table:
            if [c.lower() for c in cells] == TABLE_HEADER:
                in_table = True
            continue
        if set("".join(cells)) <= set("-: "):
            continue  # the separator row
        if len(cells) != 4:
            raise ValueError(f"{path}:{number}: a row of the module table needs 4 cells, has {len(cells)}")
        name = cells[0].strip("`")
        libraries = split_cell(cells[3])
        for lib in libraries:
            if lib != "all" and lib not in LIBRARIES:
                raise ValueError(f"{path}:{number}: unknown library '{lib}' (known: {', '.join(LIBRARIES)})")
        modules.append(Module(name, split_cell(cells[1]), split_cell(cells[2]), libraries))
    if not modules:
        raise ValueError(f"{path}: no module table (a table headed | {' | '.join(TABLE_HEADER)} |)")
    names = {m.name for m in modules}
    for m in modules:
        for other in m.may:
            if other != "all" and other not in names:
                raise ValueError(f"{path}: module '{m.name}' may include '{other}', which is no module")
    return modules


def module_of(path, modules):
    """The module a file belongs to: the most specific pattern wins (a file over its folder, a deeper
    folder over its parent)."""
    best, best_score = None, -1
    for m in modules:
        for pattern in m.patterns:
            if pattern.endswith("/"):
                score = len(pattern) if path.startswith(pattern) else -1
            else:
                score = 10000 + len(pattern) if fnmatch.fnmatchcase(path, pattern) else -1
            if score > best_score:
                best, best_score = m, score
    return best


def source_files(root, modules):
    folders = sorted({p.split("/")[0] for m in modules for p in m.patterns})
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, folder)):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.endswith(SOURCE_SUFFIXES):
                    yield os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")


def component(path):
    return os.path.splitext(path)[0]


def find_loops(edges):
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index, low, on_stack, stack, loops, counter = {}, {}, set(), [], [], [0]
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == node:
                        break
                if len(members) > 1:
                    loops.append(sorted(members))
    return loops


def check(root, counts=None):
    """Returns the problems found under root, one line each; counts (a dict) gets the files and
    includes looked at."""
    modules = read_table(os.path.join(root, "docs", "MODULES.md"))
    files = list(source_files(root, modules))
    known = set(files)
    problems, edges = [], {}
    for path in files:
        mine = module_of(path, modules)
        if mine is None:
            continue
        allowed = {n for n in mine.may if n != "all"} | {mine.name}
        libraries = set(mine.libraries)
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
        for number, line in enumerate(lines, 1):
            match = INCLUDE.match(line)
            if not match:
                continue
            quote, header = match.groups()
            where = f"{path}:{number}"
            if ".." in header.split("/"):
                problems.append(f"{where}: includes \"{header}\": name headers from the source root, never with ../")
                continue
            if quote == "<":
                family = next((n for n, rx in LIBRARIES.items() if re.fullmatch(rx, header)), None)
                if family and "all" not in libraries and family not in libraries:
                    problems.append(f"{where}: includes <{header}>, but {mine.name} may not use {family}")
                continue
            if header in known:
                target = header
            else:
                sibling = os.path.normpath(os.path.join(os.path.dirname(path), header)).replace(os.sep, "/")
                if sibling not in known:
                    continue  # generated (Qt's .moc) or not ours
                target = sibling
            theirs = module_of(target, modules)
            if theirs is not None and "all" not in mine.may and theirs.name not in allowed:
                problems.append(f"{where}: includes {target} of {theirs.name}, which {mine.name} may not include "
                                f"(it may include: {', '.join(sorted(mine.may)) or 'nothing of ours'})")
            if component(target) != component(path):
                edges.setdefault(component(path), set()).add(component(target))
    if counts is not None:
        counts["files"] = len(files)
        counts["includes"] = sum(len(e) for e in edges.values())
    for loop in find_loops(edges):
        problems.append("include loop between " + ", ".join(loop) +
                        " (a header and its source count as one; break it with a forward declaration or a callback)")
    return problems


def self_test():
    """Plants each kind of violation in a scratch tree and checks that it is reported."""
    table = """# Modules

| module | files | may include | libraries |
|---|---|---|---|
| vocabulary | low/words.h, low/words.cpp | — | — |
| low | low/ | vocabulary | SQLite |
| high | high/ | low, vocabulary | Qt |
| tests | tests/ | all | all |
"""
    clean = {
        "docs/MODULES.md": table,
        "low/words.h": "#pragma once\n#include <cstdint>\n",
        "low/store.h": '#pragma once\n#include "low/words.h"\n',
        "low/store.cpp": '#include "low/store.h"\n#include <sqlite3.h>\n',
        "high/view.h": '#pragma once\n#include <QWidget>\n#include "low/store.h"\n',
        "high/view.cpp": '#include "high/view.h"\n#include "high/panel.h"\n',
        "high/panel.h": '#pragma once\n#include "low/words.h"\n',
        "high/panel.cpp": '#include "high/panel.h"\n',
        "tests/view_test.cpp": '#include "high/view.h"\n#include <gtest/gtest.h>\n#include "view_test.moc"\n',
    }
    planted = [
        ("a module it may not include", {"low/store.cpp": '#include "low/store.h"\n#include "high/view.h"\n'},
         "low/store.cpp:2: includes high/view.h of high, which low may not include"),
        ("the vocabulary reaching into its host folder", {"low/words.h": '#pragma once\n#include "low/store.h"\n'},
         "low/words.h:2: includes low/store.h of low, which vocabulary may not include"),
        ("a library it may not use", {"low/store.cpp": '#include "low/store.h"\n#include <QString>\n'},
         "low/store.cpp:2: includes <QString>, but low may not use Qt"),
        ("a path out of its folder", {"high/panel.cpp": '#include "../low/store.h"\n'},
         'high/panel.cpp:1: includes "../low/store.h"'),
        ("a loop between headers", {"high/panel.h": '#pragma once\n#include "high/view.h"\n'},
         "include loop between high/panel, high/view"),
        ("a loop between components", {"high/panel.cpp": '#include "high/panel.h"\n#include "high/view.h"\n'},
         "include loop between high/panel, high/view"),
    ]
    failures = []
    with tempfile.TemporaryDirectory(prefix="check-includes-") as scratch:
        def write(files):
            for rel, text in files.items():
                full = os.path.join(scratch, rel)
                os.makedirs(os.path.dirname(full), exist_ok=True)
                with open(full, "w", encoding="utf-8") as f:
                    f.write(text)
        write(clean)
        problems = check(scratch)
        if problems:
            failures.append("the clean tree was refused: " + "; ".join(problems))
        for what, change, expected in planted:
            write(change)
            problems = check(scratch)
            if not any(expected in p for p in problems):
                failures.append(f"{what}: expected '{expected}', got {problems or 'no problem'}")
            else:
                print(f"check-includes self-test: {what}: refused: {next(p for p in problems if expected in p)}")
            write({rel: clean[rel] for rel in change})
        if check(scratch):
            failures.append("the tree restored to clean was refused")
    return self_test_result("check-includes", failures)


def main():
    args = parse_args(__doc__)
    if args.self_test:
        return self_test()
    try:
        counts = {}
        problems = check(args.root, counts)
    except (OSError, ValueError) as e:
        print(f"check-includes: {e}")
        return 2
    for p in problems:
        print(p)
    if problems:
        print(f"check-includes: {len(problems)} problem(s); the rules are the table of docs/MODULES.md")
        return 1
    print(f"check-includes: ok ({counts['files']} files, {counts['includes']} includes between components)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

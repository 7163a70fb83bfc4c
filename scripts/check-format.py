#!/usr/bin/env python3
"""Checks that every C++ and CUDA file of the repository is as clang-format (.clang-format at the
root) would write it. Fails (exit 1) naming each file that differs; `clang-format -i FILE` fixes one.

  scripts/check-format.py [--root DIR]   check the files git tracks under DIR (default: this repository)
  scripts/check-format.py --self-test    plant a badly formatted file in a scratch tree; fail unless it
                                         is reported and the well formatted one passes

The clang-format program is $CLANG_FORMAT, or clang-format (Debian 12's is version 14; another
version may format some lines differently).
"""

import os
import shutil
import subprocess
import sys
import tempfile

from check_common import parse_args, self_test_result

SUFFIXES = (".h", ".hpp", ".cpp", ".cc", ".cu", ".cuh")


def clang_format():
    program = os.environ.get("CLANG_FORMAT", "clang-format")
    if not shutil.which(program):
        raise OSError(f"{program} not found (Debian package clang-format; scripts/install-deps.sh installs it)")
    return program


def tracked_files(root):
    """The C++ and CUDA files git knows (tracked, or new and not ignored); every such file below root
    where root is no git work tree (the self-test's scratch tree)."""
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard"],
                             check=True, capture_output=True, text=True).stdout
        files = out.splitlines()
    except (OSError, subprocess.CalledProcessError):
        files = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            files += [os.path.relpath(os.path.join(dirpath, f), root) for f in filenames]
    return sorted(f for f in files if f.endswith(SUFFIXES) and os.path.isfile(os.path.join(root, f)))


def check(root):
    """Returns the files under root that clang-format would change."""
    program = clang_format()
    files = tracked_files(root)
    differ = set()
    # One clang-format for many files: a process per file took 2 minutes for 330 files here.
    for start in range(0, len(files), 200):
        batch = files[start:start + 200]
        result = subprocess.run([program, "--dry-run", "--Werror", "--style=file", *batch], cwd=root,
                                capture_output=True, text=True, check=False)
        for line in result.stderr.splitlines():
            if "[-Wclang-format-violations]" in line:
                differ.add(line.split(":", 1)[0])
        if result.returncode != 0 and not differ.intersection(batch):
            raise OSError(f"{program} failed: {result.stderr.strip()}")
    return sorted(differ)


def self_test():
    good = "int add(int a, int b) {\n  return a + b;\n}\n"
    bad = "int  add( int a,int b ){return a+b;}\n"
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    failures = []
    with tempfile.TemporaryDirectory(prefix="check-format-") as scratch:
        shutil.copy(os.path.join(here, ".clang-format"), scratch)
        os.makedirs(os.path.join(scratch, "storage"))
        with open(os.path.join(scratch, "storage", "good.cpp"), "w") as f:
            f.write(good)
        if check(scratch):
            failures.append(f"a well formatted file was refused: {check(scratch)}")
        with open(os.path.join(scratch, "storage", "bad.cpp"), "w") as f:
            f.write(bad)
        differ = check(scratch)
        if differ != ["storage/bad.cpp"]:
            failures.append(f"expected storage/bad.cpp to be reported, got {differ or 'nothing'}")
        else:
            print("check-format self-test: a badly formatted file: refused: storage/bad.cpp")
    return self_test_result("check-format", failures)


def main():
    args = parse_args(__doc__)
    try:
        if args.self_test:
            return self_test()
        differ = check(args.root)
    except OSError as e:
        print(f"check-format: {e}")
        return 2
    for rel in differ:
        print(f"{rel}: not clang-format clean (clang-format -i {rel})")
    if differ:
        print(f"check-format: {len(differ)} file(s) differ from .clang-format")
        return 1
    print("check-format: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

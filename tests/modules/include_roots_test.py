#!/usr/bin/env python3
"""A module's users reach the headers it offers and nothing else.

For each module target, reruns the build's own compile command of tests/modules/include_probe.cpp
(from compile_commands.json) on a file holding one include: an allowed header must compile, a header of
a module the target does not link, or a private header, must fail with "<header>: No such file".

  include_roots_test.py build/compile_commands.json TARGET...
"""

import json
import os
import shlex
import subprocess
import sys
import tempfile

# (module target, header, whether a user of the target may include it)
CASES = [
    ("moescope_trace_model", "storage/trace_model.h", True),
    ("moescope_trace_model", "storage/trace.h", False),  # the vocabulary sees nothing of storage
    ("moescope_storage", "storage/run_reader.h", True),
    ("moescope_storage", "storage/sqlite_util.h", False),  # private to storage
    ("moescope_storage", "storage/schema.h", False),  # private to storage
    ("moescope_storage", "tracer/tracer.h", False),
    ("moescope_tracer", "tracer/tracer.h", True),
    ("moescope_tracer", "storage/trace_model.h", True),
    ("moescope_tracer", "storage/run_writer.h", False),  # the tracer links storage privately
    ("moescope_engine", "engine/trainer.h", True),
    ("moescope_engine", "tracer/span.h", True),
    ("moescope_engine", "storage/run_reader.h", False),  # the engine never sees storage
    ("moescope_engine", "engine/cuda/cuda_backend.h", False),  # the CUDA backend links the engine, not back
    ("moescope_engine", "engine/random.h", False),  # private to the engine
    ("moescope_ui_models", "ui/span_search.h", True),
    ("moescope_ui_models", "storage/trace.h", True),
    ("moescope_ui_models", "ui/timeline_widget.h", False),  # widgets are moescope_ui's
    ("moescope_ui_models", "engine/config.h", False),
]


def probe_command(entries, target):
    marker = f"/include_probe_{target}.dir/"
    for e in entries:
        if e["file"].endswith("include_probe.cpp") and marker in e["command"]:
            return e
    raise SystemExit(f"include_roots: no compile command for include_probe_{target} in compile_commands.json")


def compile_with(entry, source):
    """The entry's command on source, checking only (no object, no dependency file)."""
    args = shlex.split(entry["command"])
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("-o", "-MF", "-MT", "-MQ"):
            skip = True
            continue
        if a in ("-c", "-MD", "-MMD") or a.endswith("include_probe.cpp"):
            continue
        out.append(a)
    return subprocess.run(out + ["-fsyntax-only", source], cwd=entry["directory"], capture_output=True,
                          text=True, check=False)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        entries = json.load(f)
    targets = set(sys.argv[2:])
    failures, ran = [], 0
    with tempfile.TemporaryDirectory(prefix="include-roots-") as scratch:
        for target, header, allowed in CASES:
            if target not in targets:
                continue  # not built here (the GUI is off)
            entry = probe_command(entries, target)
            source = os.path.join(scratch, "probe.cpp")
            with open(source, "w", encoding="utf-8") as f:
                f.write(f'#include "{header}"\n')
            result = compile_with(entry, source)
            ran += 1
            missing = f"{header}: No such file" in result.stderr
            if allowed and result.returncode != 0:
                failures.append(f"{target}: {header} should compile for its users:\n{result.stderr}")
            elif not allowed and (result.returncode == 0 or not missing):
                failures.append(f"{target}: {header} should be out of its users' reach, got exit "
                                f"{result.returncode}:\n{result.stderr}")
            else:
                print(f"{target}: {header}: {'compiles' if allowed else 'no such file, as it should be'}")
    for f in failures:
        print(f"FAILED {f}")
    if ran == 0:
        print("include_roots: no case ran")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Checks a run that `moescope-cli record` made of gpt_nvtx.py against torch.profiler's trace of the
same steps of the same (deterministic) script:
  - every kernel torch.profiler reports for steps A..B is in the run, for those steps (count and names);
  - NVTX ranges nest as pushed: every layer range lies inside a pass range of its thread;
  - the run has a stage per rank and micro-batch numbers on its passes (the rows the GUI draws).
  python3 check_record.py RUN.moescope PROFILE.json A B [RANKS]
Exit 0 when all hold; prints what differs otherwise.
"""
import collections
import json
import sqlite3
import sys


def short(name):
    """A kernel name without its parameter list, "void " and anonymous namespaces (as moescope keeps them)."""
    name = name.replace("(anonymous namespace)::", "")
    if name.startswith("void "):
        name = name[5:]
    if name.endswith(")"):
        depth = 0
        for i in range(len(name) - 1, -1, -1):
            if name[i] == ")":
                depth += 1
            elif name[i] == "(":
                depth -= 1
                if depth == 0:
                    name = name[:i]
                    break
    return name


def main():
    run, profile, first, last = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    ranks = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    ok = True
    with open(profile) as f:
        events = json.load(f)["traceEvents"]
    expected = collections.Counter(short(e["name"]) for e in events if e.get("cat") == "kernel")
    db = sqlite3.connect(run)
    rows = db.execute(
        "SELECT s.text, sp.step FROM gpu_activity g JOIN strings s ON s.id = g.name "
        "LEFT JOIN span sp ON sp.id = g.span JOIN track t ON t.id = g.track "
        "WHERE g.kind = 0 AND t.rank = 0").fetchall()
    got = collections.Counter(short(n) for n, step in rows if step is not None and first <= step <= last)
    missing = expected - got
    extra = got - expected
    print(f"kernels in steps {first}..{last}: torch.profiler {sum(expected.values())}, "
          f"run {sum(got.values())} ({len(rows)} kernels recorded in all)")
    if missing:
        ok = False
        print("MISSING from the run:", dict(missing.most_common(10)))
    if extra:
        print("in the run, not in torch.profiler's trace:", dict(extra.most_common(10)))

    # Nesting: each layer range inside a pass range on the same track.
    spans = db.execute(
        "SELECT sp.track, sp.start, sp.\"end\", s.text, sp.microbatch, sp.phase FROM span sp "
        "JOIN strings s ON s.id = sp.name").fetchall()
    passes = [x for x in spans if x[3].endswith("_step") and "schedules" in x[3]]
    layers = [x for x in spans if x[3].endswith(("core_attention", "linear_fc1", "linear_fc2"))]
    outside = [x for x in layers
               if not any(p[0] == x[0] and p[1] <= x[1] and x[2] <= p[2] for p in passes)]
    print(f"nesting: {len(layers)} layer ranges, {len(outside)} outside a pass of their thread")
    ok = ok and not outside and len(layers) > 0
    numbered = sum(1 for p in passes if p[4] is not None and p[4] >= 0)
    print(f"passes: {len(passes)}, {numbered} with a micro-batch")
    ok = ok and len(passes) > 0 and numbered == len(passes)
    stages = db.execute("SELECT rank, stage FROM rank ORDER BY rank").fetchall()
    print("ranks (rank, stage):", stages)
    ok = ok and len(stages) == ranks
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Predictions against real CPU runs over the acceptance grid (docs/PLANNER.md has the table).

  bench/planner/grid.py CLI OUTDIR [--steps N] [--repeat R]

Calibrates on one run (samples/schedules-pp4.toml at 1F1B, pp 2, 4 micro-batches), predicts GPipe,
1F1B, interleaved (v 2) and ZB-H1 at pp 2 and 4 with 2 and 8 micro-batches, runs each for real R
times (interleaved with the others, so a change in the machine's load spreads over all of them), and
prints predicted and measured step time (median of the steps after the first, pooled over the
repeats) and bubble share, with whether each is within 15% and 5 points.
"""
import json, os, subprocess, sys, statistics

cli, out = sys.argv[1], sys.argv[2]
steps = int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else 4
repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 1
config = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "samples", "schedules-pp4.toml")
os.makedirs(out, exist_ok=True)

def train(path, schedule, pp, m):
    args = [cli, "train", "--config", config, "--steps", str(steps), "--out", path,
            "--set", f"parallel.schedule={schedule}", "--set", f"parallel.pp={pp}", "--set", f"parallel.microbatches={m}",
            "--set", f"parallel.virtual_stages={2 if schedule == 'interleaved' else 1}"]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def summary(paths):
    j = json.loads(subprocess.run([cli, "compare", "--json"] + paths + paths[:1] * (len(paths) < 2),
                                  check=True, capture_output=True, text=True).stdout)
    runs = j["runs"][:len(paths)]
    return statistics.median(r["step_ns"] for r in runs), statistics.median(r["bubble_share"] for r in runs)

cal = os.path.join(out, "calibration.moescope")
train(cal, "1f1b", 2, 4)
grid = [(s, pp, m) for s in ("gpipe", "1f1b", "interleaved", "zb-h1") for pp in (2, 4) for m in (2, 8)
        if not (s == "interleaved" and m % pp)]
measured = {g: [] for g in grid}
for r in range(repeat):
    for g in grid:
        path = os.path.join(out, f"{g[0]}-pp{g[1]}-m{g[2]}-{r}.moescope")
        train(path, *g)
        measured[g].append(path)
ok = 0
print(f"{'schedule':12} {'pp':>3} {'m':>3} {'pred ms':>9} {'real ms':>9} {'err':>7} {'pred bub':>9} {'real bub':>9} {'pts':>6}  ok")
for g in grid:
    pred = os.path.join(out, f"pred-{g[0]}-pp{g[1]}-m{g[2]}.moescope")
    subprocess.run([cli, "plan", cal, "--schedule", g[0], "--pp", str(g[1]), "--microbatches", str(g[2]),
                    "--steps", str(steps), "--out", pred, "-q"], check=True, stdout=subprocess.DEVNULL)
    ps, pb = summary([pred])
    rs, rb = summary(measured[g])
    err = ps / rs - 1
    good = abs(err) <= 0.15 and abs(pb - rb) <= 0.05
    ok += good
    print(f"{g[0]:12} {g[1]:3} {g[2]:3} {ps/1e6:9.1f} {rs/1e6:9.1f} {100*err:6.1f}% {100*pb:8.1f}% {100*rb:8.1f}% {100*(pb-rb):6.1f}  {'yes' if good else 'no'}")
print(f"{ok}/{len(grid)} within 15% and 5 points")

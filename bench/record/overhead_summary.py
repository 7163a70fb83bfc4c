"""The overhead table of run_h200_record.sh, part 3, from the step times its runs wrote.

  python3 overhead_summary.py DIR

DIR holds CONFIG.MODE.ROUND.txt (a run's step times in seconds, one a line, warm-up left out) and, from
each recorded mode's first run, CONFIG.MODE.counts (kernels, kernels tied to a range through their
launch call, launch calls, in the run file). A run's step time is the median of its steps; a round's ratio for a mode is that mode's
run over the plain run of the same round (alternated in one session, so clock and thermal drift stay
out of the ratio); a mode's result is the median of its rounds' ratios. A run that failed (no times
file) is left out and named.
"""
import collections
import os
import re
import statistics
import sys

LIMIT = 1.03
MODES = {
    "nvtx": "NVTX ranges only (--no-kernels: no CUPTI)",
    "kernels": "NVTX + CUPTI kernels, copies, memsets (--launch-calls off)",
    "full": "NVTX + kernels + launch calls, CUPTI activity records (default)",
    "callbacks": "NVTX + kernels + launch calls, callbacks (--launch-calls callbacks)",
}
CONFIGS = {
    "tiny": "d 256, 4 layers, seq 128, batch 8, fp32: launch-bound, every per-launch cost shows",
    "gpt": "d 1024, 8 layers, seq 1024, batch 8, vocab 32768, bf16: kernels outlast launches",
}


def median_step(path):
    with open(path) as f:
        times = [float(x) for x in f if x.strip()]
    return statistics.median(times) if times else None


def main():
    folder = sys.argv[1]
    runs = collections.defaultdict(dict)  # (config, mode) -> round -> median step (s)
    for name in os.listdir(folder):
        m = re.fullmatch(r"(\w+)\.(\w+)\.(\d+)\.txt", name)
        if m:
            t = median_step(os.path.join(folder, name))
            if t:
                runs[(m[1], m[2])][int(m[3])] = t
    failed = sorted(n[:-4] for n in os.listdir(folder)
                    if n.endswith(".log") and not os.path.exists(os.path.join(folder, n[:-4] + ".txt")))
    lines = []
    say = lines.append
    say("Overhead of `moescope-cli record` on bench/record/gpt_nvtx.py (one process, one GPU).")
    say("step: the median step time of a run (warm-up steps left out); ratio: a mode's run over the plain")
    say("run of the same round; median: of the rounds' ratios. Limit of the acceptance: 1.03.")
    verdicts = []
    for config in [c for c in CONFIGS if any(k[0] == c for k in runs)] + sorted(
            {k[0] for k in runs} - set(CONFIGS)):
        plain = runs.get((config, "plain"), {})
        say("")
        say(f"{config}: {CONFIGS.get(config, '')}")
        if plain:
            say(f"  plain step by round (ms): " + " ".join(f"{r}:{plain[r] * 1e3:.2f}" for r in sorted(plain)) +
                f"  (median {statistics.median(plain.values()) * 1e3:.2f})")
        say(f"  {'mode':<10} {'rounds':>6} {'step ms':>9} {'median':>7} {'min':>6} {'max':>6}  "
            f"{'kernels':>8} {'in range':>8} {'launches':>8}  what is recorded")
        for mode in [m for m in MODES if (config, m) in runs] + sorted(
                {k[1] for k in runs if k[0] == config} - set(MODES) - {"plain"}):
            got = runs[(config, mode)]
            ratios = [got[r] / plain[r] for r in sorted(got) if r in plain]
            counts = ["-", "-", "-"]
            counts_file = os.path.join(folder, f"{config}.{mode}.counts")
            if os.path.exists(counts_file):
                with open(counts_file) as f:
                    counts = (f.read().split() + ["?"] * 3)[:3]
            if not ratios:
                say(f"  {mode:<10} {0:>6}  no round with both a plain and a {mode} run")
                continue
            med = statistics.median(ratios)
            say(f"  {mode:<10} {len(ratios):>6} {statistics.median(got.values()) * 1e3:>9.2f} {med:>7.4f} "
                f"{min(ratios):>6.3f} {max(ratios):>6.3f}  {counts[0]:>8} {counts[1]:>8} {counts[2]:>8}  "
                f"{MODES.get(mode, '')}")
            if mode == "full":
                verdicts.append((config, med, len(ratios)))
    say("")
    for config, med, n in verdicts:
        say(f"record (full) over plain, {config}: median of {n} rounds {med:.4f}: "
            f"{'within' if med <= LIMIT else 'OVER'} the limit {LIMIT}")
    if failed:
        say("runs that failed (see their .log): " + " ".join(failed))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Minimises fuzz/corpus/<target>/ to a small set of files covering the same
edges: libFuzzer's merge pass records which edges each file reaches, then a
greedy set cover keeps the file adding the most new edges, again and again,
up to --max files (the last few edges may be lost at the cap; it says how
many). `cargo fuzz cmin` keeps every file that adds a feature in size order,
which leaves hundreds.

    fuzz/minimize.py [--max 200] TARGET...

Needs the target built (`cargo fuzz build -O`) in $CARGO_TARGET_DIR
(default fuzz/target)."""
import argparse, os, subprocess, sys, tempfile

FUZZ = os.path.dirname(os.path.abspath(__file__))

def coverage(binary, corpus, max_len):
    with tempfile.TemporaryDirectory() as tmp:
        control = os.path.join(tmp, "control")
        empty = os.path.join(tmp, "empty")
        os.mkdir(empty)
        subprocess.run([binary, "-merge=1", f"-merge_control_file={control}", f"-max_len={max_len}",
                        "-rss_limit_mb=2048", "-timeout=10", empty, corpus],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lines = open(control).read().splitlines()
    n = int(lines[0])
    files = lines[2:2 + n]
    cov = {}
    for line in lines[2 + n:]:
        parts = line.split()
        if parts and parts[0] == "COV":
            cov[files[int(parts[1])]] = set(parts[2:])
    return cov

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max", type=int, default=200)
    ap.add_argument("targets", nargs="+")
    args = ap.parse_args()
    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(FUZZ, "target"))
    for t in args.targets:
        binary = os.path.join(target_dir, "x86_64-unknown-linux-gnu", "release", t)
        corpus = os.path.join(FUZZ, "corpus", t)
        cov = coverage(binary, corpus, 1 << 20)
        edges = set().union(*cov.values()) if cov else set()
        kept, covered = [], set()
        remaining = dict(cov)
        while remaining and len(kept) < args.max:
            # Most new edges; the smaller file on a tie.
            best = max(remaining, key=lambda f: (len(remaining[f] - covered), -os.path.getsize(f)))
            gain = remaining.pop(best) - covered
            if not gain:
                break
            kept.append(best)
            covered |= gain
        keep = set(kept)
        for f in os.listdir(corpus):
            p = os.path.join(corpus, f)
            if p not in keep:
                os.remove(p)
        print(f"{t}: kept {len(kept)} files covering {len(covered)} of {len(edges)} edges")

if __name__ == "__main__":
    sys.exit(main())

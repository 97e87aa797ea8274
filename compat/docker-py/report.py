#!/usr/bin/env python3
"""Summarises docker-py's junit reports and checks berth's against
expected.txt: every test that fails on berth must be listed there with a
reason; a listed test that passes is reported so the list can shrink.
Exit status 1 when a test fails on berth that is not listed."""

import argparse
import collections
import sys
import xml.etree.ElementTree as ET


def outcomes(path):
    """{test id: 'passed'|'failed'|'skipped'} from a junit (xunit2) file."""
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        cls = case.get("classname", "")
        parts = cls.split(".")
        # tests.integration.api_container_test.CreateContainerTest
        module = next((p for p in parts if p.endswith("_test")), parts[-1])
        klass = parts[-1] if parts[-1] != module else ""
        tid = f"{module}.py::{klass + '::' if klass else ''}{case.get('name')}"
        kinds = {child.tag for child in case}
        if "failure" in kinds or "error" in kinds:
            out[tid] = "failed"
        elif "skipped" in kinds:
            out[tid] = "skipped"
        else:
            out[tid] = "passed"
    return out


def expected(path):
    """{test id: reason} from expected.txt (`id  # reason`; # comments)."""
    exp = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            tid, _, reason = line.partition("#")
            tid, reason = tid.strip(), reason.strip()
            if not reason:
                sys.exit(f"{path}:{n}: {tid} has no reason (write `id  # reason`)")
            exp[tid] = reason
    return exp


def count(res):
    c = collections.Counter(res.values())
    return f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"


def section(title, tests):
    """Prints `title` and the tests, one per line; nothing when empty."""
    if tests:
        print(title)
        for t in tests:
            print(f"  {t}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--expected", required=True)
    ap.add_argument("--berth", required=True)
    ap.add_argument("--dockerd")
    ap.add_argument("--partial", action="store_true", help="only some tests ran")
    a = ap.parse_args()
    exp = expected(a.expected)
    berth = outcomes(a.berth)
    dockerd = outcomes(a.dockerd) if a.dockerd else None

    print(f"berth:   {count(berth)}")
    if dockerd is not None:
        print(f"dockerd: {count(dockerd)}")
        both = [t for t, o in dockerd.items() if o == "passed"]
        ok = sum(1 for t in both if berth.get(t) == "passed")
        print(f"of the {len(both)} tests that pass on dockerd, {ok} pass on berth")

    listed_failing = collections.Counter()
    unexpected, fixed = [], []
    for tid, o in sorted(berth.items()):
        if o == "failed":
            if tid in exp:
                listed_failing[exp[tid].split(":")[0]] += 1
            else:
                unexpected.append(tid)
        elif o == "passed" and tid in exp:
            fixed.append(tid)
    if listed_failing:
        print("failing on berth as expected.txt says, by reason:")
        for reason, n in sorted(listed_failing.items(), key=lambda x: -x[1]):
            print(f"  {n:4}  {reason}")
    if dockerd is not None:
        gaps = [t for t, o in sorted(dockerd.items()) if o == "passed" and berth.get(t) != "passed"]
        if gaps:
            print("pass on dockerd, not on berth:")
            for t in gaps:
                print(f"  {t}  # {exp.get(t, 'NOT LISTED')}")
    section("listed in expected.txt but passing now (remove them from the list):", fixed)
    if not a.partial:
        section("listed in expected.txt but not run (renamed upstream?):", sorted(t for t in exp if t not in berth))
    if unexpected:
        section("FAILING on berth and not in expected.txt (regressions, or add them with a reason):", unexpected)
        return 1
    print("compat: every berth failure is listed in expected.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())

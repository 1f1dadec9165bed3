"""Compares an Autobahn fuzzingclient report with the committed expected results.

Each case's `behavior` and `behaviorClose` must equal the expected ones (as tungstenite's
CI does). With AUTOBAHN_UPDATE=1 the expected file is rewritten from the report instead.
Prints the behaviour counts and "N passed, N failed"; exits 1 on any difference.
"""
import fnmatch
import json
import os
import sys
from collections import Counter


def case_key(case):
    return [int(p) for p in case.split(".")]


def main():
    report_path, expected_path, patterns = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    report = json.load(open(report_path))
    (agent,) = report.values()
    got = {
        case: {"behavior": r["behavior"], "behaviorClose": r["behaviorClose"]}
        for case, r in agent.items()
    }
    counts = Counter(r["behavior"] for r in got.values())
    print("autobahn: " + ", ".join("%s %d" % kv for kv in sorted(counts.items())))
    if os.environ.get("AUTOBAHN_UPDATE") == "1":
        ordered = {c: got[c] for c in sorted(got, key=case_key)}
        with open(expected_path, "w") as f:
            json.dump(ordered, f, indent=1)
            f.write("\n")
        print("autobahn: wrote %d cases to %s" % (len(ordered), expected_path))
    expected = json.load(open(expected_path))
    wanted = {
        c: e for c, e in expected.items() if any(fnmatch.fnmatch(c, p) for p in patterns)
    }
    passed = failed = 0
    for case in sorted(set(wanted) | set(got), key=case_key):
        want, have = wanted.get(case), got.get(case)
        if want == have:
            passed += 1
        else:
            failed += 1
            print("autobahn: case %s: expected %s, got %s" % (case, want, have))
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


main()

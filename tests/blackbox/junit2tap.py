#!/usr/bin/python3
"""Convert a pytest --junitxml report to TAP on stdout: one line per test case.

Usage: junit2tap.py REPORT.xml [PYTEST_EXIT_CODE]
Skipped tests are reported as failures: the black-box suite must not skip anything.
Exit status: 0 if every test passed, 1 otherwise.
"""
import sys
import xml.etree.ElementTree as ET


def tap_name(case):
    cls = case.get("classname", "")
    name = case.get("name", "?")
    full = "%s::%s" % (cls, name) if cls else name
    # '#' would start a TAP directive; keep each name on one line
    return full.replace("#", "%23").replace("\n", " ").replace("\r", " ")


def first_line(text):
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def main(argv):
    if len(argv) < 2:
        print("usage: junit2tap.py REPORT.xml [PYTEST_EXIT_CODE]", file=sys.stderr)
        return 2
    pytest_rc = argv[2] if len(argv) > 2 else "?"
    try:
        root = ET.parse(argv[1]).getroot()
        cases = list(root.iter("testcase"))
    except (OSError, ET.ParseError) as e:
        print("1..1")
        print("not ok 1 - pytest produced no readable report (%s; exit %s)" % (e, pytest_rc))
        return 1
    if not cases:
        print("1..1")
        print("not ok 1 - pytest ran no tests (exit %s)" % pytest_rc)
        return 1
    print("1..%d" % len(cases))
    failed = 0
    for n, case in enumerate(cases, 1):
        problems = [c for c in case if c.tag in ("failure", "error", "skipped")]
        if not problems:
            print("ok %d - %s" % (n, tap_name(case)))
            continue
        failed += 1
        print("not ok %d - %s" % (n, tap_name(case)))
        for p in problems:
            msg = first_line(p.get("message")) or first_line(p.text)
            print("# %s: %s" % (p.tag, msg[:500]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""bench/thrift-leak at a CI scale: kestreld under valgrind serves 2,000 and then 20,000 Thrift
requests (every method, hostile input mixed in), leaks nothing, and holds no more memory after the
larger run than after the smaller, neither at rest nor at exit. Also the check's own reading of
valgrind and its verdicts, on made-up summaries, so that it cannot pass by reading nothing.
Without valgrind the check fails rather than skips: it stands for a requirement of the Thrift
front-end (scripts/install-deps installs valgrind). A sanitizer build cannot run under valgrind:
there the same load runs once on kestreld alone, and LeakSanitizer is the judge at its exit."""
import importlib.machinery
import importlib.util
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import REPO_ROOT, find_kestreld

pytest.importorskip("thrift")  # the Python client, as in test_thrift.py

SCRIPT = REPO_ROOT / "bench" / "thrift-leak"
SMALL, FACTOR = 2000, 10
RUN_TIMEOUT = 85  # below conftest's TEST_TIMEOUT; about 30 s on the 2-core VM


def build_dir():
    """The build tree of the kestreld under test: <build>/src/server/kestreld."""
    return Path(find_kestreld()).parents[2]


def sanitized_build():
    """True when the build under test was configured with --enable-sanitizers."""
    makefile = build_dir() / "Makefile"
    return makefile.exists() and "-fsanitize=address" in makefile.read_text(errors="replace")


def run_script(args, timeout=None):
    """bench/thrift-leak in its own process group, so that a timeout also ends the kestreld and
    kestrel-load it started; (returncode, stdout, stderr)."""
    proc = subprocess.Popen([str(SCRIPT), "--build", str(build_dir())] + args,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout or RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return proc.returncode, stdout, stderr


def script_module():
    loader = importlib.machinery.SourceFileLoader("thrift_leak", str(SCRIPT))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


def summary(definitely=0, reachable=47840, reachable_blocks=259, in_use=79858, blocks=681,
            errors=0):
    """A memcheck log's closing lines with these figures."""
    return """==7== Memcheck, a memory error detector
==7== HEAP SUMMARY:
==7==     in use at exit: {in_use:,} bytes in {blocks:,} blocks
==7==   total heap usage: 1,281,360 allocs, 1,280,679 frees, 110,419,553 bytes allocated
==7==
{record}==7== LEAK SUMMARY:
==7==    definitely lost: {definitely:,} bytes in {dblocks} blocks
==7==    indirectly lost: 0 bytes in 0 blocks
==7==      possibly lost: 0 bytes in 0 blocks
==7==    still reachable: {reachable:,} bytes in {reachable_blocks:,} blocks
==7==         suppressed: 26,606 bytes in 357 blocks
==7==
==7== ERROR SUMMARY: {errors} errors from {errors} contexts (suppressed: 0 from 0)
""".format(in_use=in_use, blocks=blocks, definitely=definitely, dblocks=1 if definitely else 0,
           reachable=reachable, reachable_blocks=reachable_blocks, errors=errors,
           record="" if not definitely else (
               "==7== %d bytes in 1 blocks are definitely lost in loss record 1 of 2\n"
               "==7==    at 0x48417B4: malloc (vg_replace_malloc.c:381)\n==7==\n" % definitely))


def at_rest(heap=96346, blocks=774):
    """vgdb's answer to `leak_check summary any` with this much reachable."""
    return ("==7== LEAK SUMMARY:\n"
            "==7==    definitely lost: 0 bytes in 0 blocks\n"
            "==7==    indirectly lost: 0 bytes in 0 blocks\n"
            "==7==      possibly lost: 864 bytes in 3 blocks\n"
            "==7==    still reachable: {:,} bytes in {:,} blocks\n"
            "==7==         suppressed: 0 bytes in 0 blocks\n").format(heap - 864, blocks - 3)


def run(requests, status=0, rest=(96346, 774), **figures):
    m = script_module()
    return {"requests": requests, "status": status,
            "valgrind": m.parse_valgrind(summary(**figures)),
            "at_rest": m.parse_leaks(at_rest(*rest))}


def test_valgrind_summary_is_read():
    m = script_module()
    vg = m.parse_valgrind(summary(definitely=24, errors=1))
    assert vg["errors"] == 1
    assert vg["in_use"] == (79858, 681)
    assert vg["definitely_lost"] == (24, 1)
    assert vg["indirectly_lost"] == (0, 0)
    assert vg["still_reachable"] == (47840, 259)
    assert vg["allocs"] == 1281360 and vg["allocated"] == 110419553
    assert "definitely lost in loss record" in m.findings(summary(definitely=24))[0]
    # nothing left at all: valgrind prints no leak summary
    freed = m.parse_valgrind("==7==     in use at exit: 0 bytes in 0 blocks\n"
                             "==7==   total heap usage: 5 allocs, 5 frees, 90 bytes allocated\n"
                             "==7== All heap blocks were freed -- no leaks are possible\n"
                             "==7== ERROR SUMMARY: 0 errors from 0 contexts\n")
    assert freed["definitely_lost"] == (0, 0) and freed["in_use"] == (0, 0)
    with pytest.raises(ValueError):
        m.parse_valgrind("==7== Memcheck, a memory error detector\n")  # killed before the end
    rest = m.parse_leaks(at_rest(96346, 774))
    assert rest["possibly_lost"] == (864, 3) and rest["heap"] == (96346, 774)


def test_verdicts():
    m = script_module()
    same = run(20000)
    assert m.judge(run(2000), same, 1024, 8) == []
    assert m.judge(run(2000), run(20000, reachable=47840 + 1000, in_use=79858 + 1000,
                                  blocks=681 + 8), 1024, 8) == []
    # growth with the number of requests
    grown = m.judge(run(2000), run(20000, reachable=47840 + 18000, in_use=79858 + 18000,
                                   blocks=681 + 1800), 1024, 8)
    assert [p.split(" grew")[0] for p in grown] == [
        "still reachable at exit", "in use at exit", "blocks in use at exit"], grown
    # growth that shutdown frees: only the heap at rest shows it
    grown = m.judge(run(2000), run(20000, rest=(96346 + 36000, 774 + 18000)), 1024, 8)
    assert [p.split(" grew")[0] for p in grown] == ["heap at rest", "blocks at rest"], grown
    # a leak at either size, a memory error, an unclean exit
    assert any("definitely lost 16 bytes" in p
               for p in m.judge(run(2000, definitely=16), same, 1024, 8))
    assert any("valgrind errors: 2" in p for p in m.judge(run(2000), run(20000, errors=2), 1024, 8))
    assert any("status 1" in p for p in m.judge(run(2000, status=1), same, 1024, 8))


def test_sanitizer_reports_are_recognised():
    m = script_module()
    for report in ("==12==ERROR: LeakSanitizer: detected memory leaks",
                   "==12==ERROR: AddressSanitizer: heap-use-after-free on address 0x6020",
                   "src/server/thrift/thrift-protocol.c:88:9: runtime error: signed integer overflow"):
        assert m.SANITIZER_REPORT.search(report), report
    assert not m.SANITIZER_REPORT.search("MESSAGE kestreld 1.0.0 listening on thrift")


def test_no_leak_and_no_growth_over_thrift_requests(tmp_path):
    assert os.access(SCRIPT, os.X_OK), "%s is not executable" % SCRIPT
    out = tmp_path / "result.json"
    if sanitized_build():
        code, stdout, stderr = run_script(["--sanitized", "-n", str(SMALL * FACTOR),
                                           "--keep", str(tmp_path / "run"), "--json", str(out)])
        assert code == 0, "stdout: %s\nstderr: %s" % (stdout, stderr[-6000:])
        (run,) = json.loads(out.read_text())["runs"]
        assert run["requests"] >= SMALL * FACTOR
        assert run["status"] == 0 and run["sanitizer_reports"] == 0
        return
    assert shutil.which("valgrind"), "valgrind is not installed (scripts/install-deps installs it)"
    code, stdout, stderr = run_script(["-n", str(SMALL), "--factor", str(FACTOR),
                                       "--keep", str(tmp_path / "runs"), "--json", str(out)])
    assert code == 0, "stdout: %s\nstderr: %s" % (stdout, stderr[-6000:])
    result = json.loads(out.read_text())
    assert result["problems"] == []
    small, large = result["runs"]
    assert small["requests"] >= SMALL and large["requests"] >= SMALL * FACTOR
    for r in (small, large):
        vg = r["valgrind"]
        assert r["status"] == 0 and vg["errors"] == 0
        assert vg["definitely_lost"][0] == vg["indirectly_lost"][0] == vg["possibly_lost"][0] == 0
        assert vg["allocs"] > r["requests"]  # valgrind saw the requests being served
    assert large["valgrind"]["still_reachable"][0] - small["valgrind"]["still_reachable"][0] \
        <= result["margin"]
    assert large["valgrind"]["in_use"][1] - small["valgrind"]["in_use"][1] \
        <= result["block_margin"]
    assert 0 < large["at_rest"]["heap"][0] <= small["at_rest"]["heap"][0] + result["margin"]
    lines = stdout.splitlines()
    assert lines[0].startswith("| requests | requests/s under valgrind | definitely lost |")
    assert lines[2].startswith("| %s |" % format(small["requests"], ","))
    assert lines[3].startswith("| %s |" % format(large["requests"], ","))

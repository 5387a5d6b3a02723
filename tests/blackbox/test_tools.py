"""kestrel-qdump and kestrel-qpack (SPEC 7, names table) on journals built byte by byte here.

Environment (besides conftest's KESTRELD / top_builddir):
  KESTREL_QDUMP, KESTREL_QPACK   paths of the tools (default: src/tools/ of the build tree that
                                 holds kestreld, else of top_builddir, else of the repository)
"""
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from conftest import REPO_ROOT, find_kestreld

ADD_MS = 1795257000123        # 2026-11-21T10:30:00.123Z
EXPIRY_MS = 1795257060000     # 2026-11-21T10:31:00.000Z
FAR_EXPIRY_MS = 4102444800000 # 2100-01-01T00:00:00.000Z: still queued when a server reads it


def find_tool(name, env):
    value = os.environ.get(env)
    if value:
        return str(Path(value).resolve())
    if os.environ.get("KESTRELD"):
        base = Path(os.environ["KESTRELD"]).resolve().parents[2]
    elif os.environ.get("top_builddir"):
        base = Path(os.environ["top_builddir"]).resolve()
    else:
        base = REPO_ROOT
    return str(base / "src" / "tools" / name)


QDUMP = find_tool("kestrel-qdump", "KESTREL_QDUMP")
QPACK = find_tool("kestrel-qpack", "KESTREL_QPACK")


def run(*args):
    return subprocess.run([str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60, text=True)


# ---------------------------------------------------------------------------------------------
# record builders, straight from the SPEC 7 table

def block(data, add=ADD_MS, expiry=0):
    return struct.pack("<iqq", 16 + len(data), add, expiry) + data


def addx(data, add=ADD_MS, expiry=0):
    return bytes([2]) + block(data, add, expiry)


def add_legacy(data, expiry_s=0):
    return bytes([0]) + struct.pack("<ii", 4 + len(data), expiry_s) + data


def remove():
    return bytes([1])


def remove_tentative():
    return bytes([3])


def xid_op(op, xid):
    return bytes([op]) + struct.pack("<I", xid)


def save_xid(xid):
    return xid_op(4, xid)


def unremove(xid):
    return xid_op(5, xid)


def confirm(xid):
    return xid_op(6, xid)


def add_xid(xid, data, add=ADD_MS, expiry=0):
    return xid_op(7, xid) + block(data, add, expiry)


def cont(xid, data, add=ADD_MS, expiry=0):
    return xid_op(8, xid) + block(data, add, expiry)


def open_read(xid):
    return xid_op(9, xid)


def write(path, *records):
    Path(path).write_bytes(b"".join(records))
    return Path(path)


def dir_snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


def queue_items_from_dump(stdout):
    """The data of the items a replay of the dumped files leaves queued, in order, when the dump
    holds only ADDX records (what a pack writes)."""
    items = []
    for line in stdout.splitlines():
        if line.startswith("#") or not line:
            continue
        fields = line.split()
        assert fields[1] == "ADDX", line
        data = [f for f in fields if f.startswith("data=")][0][len("data="):]
        items.append(data)
    return items


# ---------------------------------------------------------------------------------------------
# kestrel-qdump

EVERY_OPCODE = [
    addx(b"hello"),
    addx(b"\x00\x01bin", expiry=EXPIRY_MS),
    add_legacy(b"old", expiry_s=1795257100),
    remove(),
    open_read(5),
    unremove(5),
    open_read(6),
    save_xid(6),
    add_xid(8, b"ax", add=1000),
    confirm(6),
    remove_tentative(),
    cont(0, b"c", add=2000),
    unremove(99),
]

EVERY_OPCODE_LINES = [
    "000000000 ADDX     size=5 add=2026-11-21T10:30:00.123Z expiry=none data=\"hello\"",
    "000000026 ADDX     size=5 add=2026-11-21T10:30:00.123Z expiry=2026-11-21T10:31:00.000Z"
    " data=hex:000162696e",
    "000000052 ADD      size=3 expiry=2026-11-21T10:31:40.000Z data=\"old\"",
    "000000064 REMOVE",
    "000000065 REMOVE_TENTATIVE_XID xid=5",
    "000000070 UNREMOVE xid=5",
    "000000075 REMOVE_TENTATIVE_XID xid=6",
    "000000080 SAVE_XID xid=6",
    "000000085 ADD_XID  xid=8 size=2 add=1970-01-01T00:00:01.000Z expiry=none data=\"ax\"",
    "000000112 CONFIRM_REMOVE xid=6",
    "000000117 REMOVE_TENTATIVE",
    "000000118 CONTINUE xid=0 size=1 add=1970-01-01T00:00:02.000Z expiry=none data=\"c\"",
    "000000144 UNREMOVE xid=99",
]


def test_qdump_every_opcode_and_torn_tail(tmp_path):
    torn = addx(b"torn")[:10]
    path = write(tmp_path / "q", *EVERY_OPCODE, torn)
    r = run(QDUMP, "-d", path)
    assert r.returncode == 1, r.stderr
    assert r.stdout.splitlines() == (
        ["# %s (159 bytes)" % path] + EVERY_OPCODE_LINES + [
            "# records: 13",
            "# items: 5 added, 3 removed, 2 queued (3 bytes of data)",
            "# open transactions: 0",
            "# torn tail at offset 149 (10 bytes unreadable): ADDX record cut short",
        ])
    assert r.stderr == ""


def test_qdump_clean_file_without_data(tmp_path):
    path = write(tmp_path / "q", addx(b"one"), addx(b"two"), open_read(3), open_read(4),
                 confirm(3))
    r = run(QDUMP, path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "# %s (63 bytes)" % path
    assert lines[1:] == [
        "000000000 ADDX     size=3 add=2026-11-21T10:30:00.123Z expiry=none",
        "000000024 ADDX     size=3 add=2026-11-21T10:30:00.123Z expiry=none",
        "000000048 REMOVE_TENTATIVE_XID xid=3",
        "000000053 REMOVE_TENTATIVE_XID xid=4",
        "000000058 CONFIRM_REMOVE xid=3",
        "# records: 5",
        "# items: 2 added, 1 removed, 0 queued (0 bytes of data)",
        "# open transactions: 1 (xids 4)",
        "# clean end at offset 63",
    ]


def test_qdump_quiet_unknown_opcode(tmp_path):
    path = write(tmp_path / "q", addx(b"abc"), bytes([42, 1, 2, 3]))
    r = run(QDUMP, "--quiet", path)
    assert r.returncode == 1
    assert r.stdout.splitlines() == [
        "# %s (28 bytes)" % path,
        "# records: 1",
        "# items: 1 added, 0 removed, 1 queued (3 bytes of data)",
        "# open transactions: 0",
        "# torn tail at offset 24 (4 bytes unreadable): unknown opcode 0x2a",
    ]


def test_qdump_impossible_size_and_data_limit(tmp_path):
    path = write(tmp_path / "q", addx(b"x" * 100), addx(b'say "hi"'),
                 bytes([2]) + struct.pack("<i", 3) + b"\0" * 16)
    r = run(QDUMP, "-d", "--max-data=4", path)
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert lines[1].endswith(' data="xxxx"...(96 more bytes)')
    assert lines[2].endswith(' data="say "...(4 more bytes)')
    assert lines[-1] == ("# torn tail at offset 150 (21 bytes unreadable): "
                         "ADDX with an impossible item size")
    r = run(QDUMP, "-d", "-m", "0", path)
    assert r.stdout.splitlines()[2].endswith(r' data="say \"hi\""')


def test_qdump_state_carries_over_a_queues_files(tmp_path):
    a = write(tmp_path / "q.100", addx(b"a"), addx(b"b"), open_read(1))
    b = write(tmp_path / "q", remove(), confirm(1))
    other = write(tmp_path / "r", addx(b"z"))
    r = run(QDUMP, "-q", a, b, other)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n\n") == [
        "# %s (49 bytes)\n# records: 3\n# items: 2 added, 0 removed, 1 queued (1 bytes of data)\n"
        "# open transactions: 1 (xids 1)\n# clean end at offset 49" % a,
        "# %s (6 bytes)\n# records: 2\n# items: 0 added, 2 removed, 0 queued (0 bytes of data)\n"
        "# open transactions: 0\n# clean end at offset 6" % b,
        "# %s (22 bytes)\n# records: 1\n# items: 1 added, 0 removed, 1 queued (1 bytes of data)\n"
        "# open transactions: 0\n# clean end at offset 22\n" % other,
    ]


def test_qdump_usage(tmp_path):
    r = run(QDUMP)
    assert r.returncode == 2 and "no journal FILE" in r.stderr
    r = run(QDUMP, tmp_path / "missing")
    assert r.returncode == 2 and "missing" in r.stderr
    r = run(QDUMP, "--bogus")
    assert r.returncode == 2
    r = run(QDUMP, "--version")
    assert r.returncode == 0 and r.stdout.startswith("kestrel-qdump ")
    r = run(QDUMP, "--help")
    assert r.returncode == 0 and "Exit status:" in r.stdout and "--data" in r.stdout


# ---------------------------------------------------------------------------------------------
# kestrel-qpack

def build_queue(folder):
    """Rotated files, a live file and open reads. Returns the items a replay leaves queued, in
    order (reads still open go back to the head, oldest xid first)."""
    folder.mkdir(parents=True, exist_ok=True)
    write(folder / "q.1000", addx(b"a"), addx(b"b"), addx(b"c"), remove())        # b c
    write(folder / "q.2000", addx(b"d"), open_read(1), addx(b"e"), open_read(2),  # open b, c
          confirm(1))                                                             # d e; open c
    write(folder / "q", addx(b"f", expiry=FAR_EXPIRY_MS), remove(), open_read(3),     # f; open c e
          addx(b"g" * 300))
    write(folder / "other", addx(b"untouched"))
    return [b"c", b"e", b"f", b"g" * 300]


def test_qpack_round_trip(tmp_path):
    folder = tmp_path / "spool"
    expected = build_queue(folder)
    r = run(QPACK, "--check", folder, "q")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ("state after replay: 2 items queued (301 bytes of data), 2 open reads (xids 2, 3; "
            "they go back to the head at start-up), last xid 3") in r.stdout
    other_before = (folder / "other").read_bytes()

    r = run(QPACK, folder, "q")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "packing queue 'q' in %s" % folder
    assert out[1] == "before:"
    assert [l.split()[0] for l in out[2:5]] == ["q.1000", "q.2000", "q"]
    assert out[5] == "  total: 475 bytes in 3 files"
    assert out[-1] == "queue 'q': 4 items (303 bytes of data)"

    files = sorted(p.name for p in folder.iterdir() if p.name.startswith("q"))
    assert len(files) == 2 and files[0] == "q" and files[1].startswith("q.")
    assert (folder / "q").stat().st_size == 0
    assert (folder / "other").read_bytes() == other_before

    r = run(QDUMP, "-d", "-m", "0", folder / files[1], folder / "q")
    assert r.returncode == 0, r.stdout
    assert queue_items_from_dump(r.stdout) == ['"%s"' % i.decode() for i in expected]
    assert "expiry=2100-01-01T00:00:00.000Z data=\"f\"" in r.stdout
    assert r.stdout.splitlines()[-3:] == [
        "# items: 0 added, 0 removed, 4 queued (303 bytes of data)",
        "# open transactions: 0",
        "# clean end at offset 0",
    ]
    r = run(QPACK, "--check", folder, "q")
    assert r.returncode == 0, r.stdout
    assert "state after replay: 4 items queued (303 bytes of data), 0 open reads, " in r.stdout


def test_qpack_keeps_open_reads_and_items_for_the_server(tmp_path, kestrel_factory):
    """A server reads the same items from the packed files as from the original ones."""
    unpacked = kestrel_factory(start=False)
    expected = build_queue(unpacked.spool)
    packed = kestrel_factory(start=False)
    shutil.rmtree(packed.spool)
    shutil.copytree(unpacked.spool, packed.spool)
    r = run(QPACK, packed.spool, "q")
    assert r.returncode == 0, r.stdout + r.stderr

    results = []
    for srv in (unpacked, packed):
        srv.start()
        mc = srv.memcache()
        results.append(mc.get_all("q"))
        srv.stop()
    assert results[1] == results[0]     # packing changes nothing a server delivers
    assert results[0] == expected


def test_qpack_check_reports_problems_without_changing_anything(tmp_path):
    folder = tmp_path / "spool"
    folder.mkdir()
    write(folder / "q.1000", addx(b"a"), unremove(7), remove(), remove())
    write(folder / "q", addx(b"b"), open_read(4), confirm(5), addx(b"cc")[:7])
    before = dir_snapshot(folder)
    r = run(QPACK, "--check", folder, "q")
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.splitlines() == [
        "checking queue 'q' in %s" % folder,
        "files (replay order):",
        "  q.1000           29 bytes  rotated",
        "  q                39 bytes  live",
        "  total: 68 bytes in 2 files",
        "problems:",
        "  q.1000 offset 22: UNREMOVE of xid 7, which is not open (ignored)",
        "  q.1000 offset 28: REMOVE on an empty queue (ignored)",
        "  q offset 27: CONFIRM_REMOVE of xid 5, which is not open (ignored)",
        "  q: torn tail at offset 32 (7 bytes unreadable): ADDX record cut short; "
        "a start-up moves those bytes to a side file and truncates the file there",
        "state after replay: 0 items queued (0 bytes of data), 1 open read (xids 4; they go "
        "back to the head at start-up), last xid 4",
        "4 problems found",
    ]
    assert dir_snapshot(folder) == before


def test_torn_tail_side_file_kept_by_server_and_reported_by_check(kestrel_factory):
    """A server start moves a torn tail to a side file (exact bytes) and serves the queue;
    --check then reports the side file, and not as a journal file of the queue."""
    srv = kestrel_factory(start=False)
    torn = addx(b"torn-item")[:12]
    write(srv.spool / "q", addx(b"a"), torn)
    write(srv.spool / "other", addx(b"x"))
    srv.start()
    sides = [n for n in srv.spool_files() if n.startswith("q~torn~~")]
    assert len(sides) == 1, srv.spool_files()
    side = sides[0]
    assert (srv.spool / side).read_bytes() == torn
    assert (srv.spool / "q").read_bytes()[:22] == addx(b"a")
    err = srv.stderr_text()
    assert side in err and "offset 22" in err and "12 bytes" in err, err
    mc = srv.memcache()
    assert mc.get_all("q") == [b"a"]
    names = {n for n, _ in mc.stats()}
    assert not any("torn" in n for n in names), names
    srv.stop()

    r = run(QPACK, "--check", srv.spool, "q")
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert "  %s: side file, 12 bytes an earlier start-up cut off an unreadable journal tail; " \
        "not replayed (inspect with kestrel-qdump, then delete it)" % side in lines, r.stdout
    assert lines[-1] == "1 problem found"
    assert not any(l.startswith("  " + side + " ") for l in lines[:lines.index("problems:")])
    r = run(QPACK, "--check", srv.spool, "other")
    assert r.returncode == 0, r.stdout + r.stderr


def test_qpack_check_follows_packs_and_ignores_temporaries(tmp_path):
    folder = tmp_path / "spool"
    folder.mkdir()
    write(folder / "q.1000", addx(b"gone"))
    write(folder / "q.2000", addx(b"gone too"))
    write(folder / "q.2000.pack", addx(b"packed"))
    write(folder / "q.3000", remove(), remove())   # second REMOVE finds an empty queue
    write(folder / "q~~4000", b"\xff garbage")
    write(folder / "q", addx(b"live"))
    before = dir_snapshot(folder)
    r = run(QPACK, "--check", folder, "q")
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert [l.split()[0] for l in lines[2:8]] == [
        "q.1000", "q.2000", "q.2000.pack", "q.3000", "q", "q~~4000"]
    assert lines[2].endswith("rotated, covered by a newer pack: deleted at start-up")
    assert lines[4].endswith("pack: replaces the rotated files up to its timestamp at start-up")
    assert lines[7].endswith("temporary: deleted at start-up, not replayed")
    assert "  q.3000 offset 1: REMOVE on an empty queue (ignored)" in lines
    assert ("state after replay: 1 item queued (4 bytes of data), 0 open reads, last xid 0"
            in lines)
    assert lines[-1] == "1 problem found"
    assert dir_snapshot(folder) == before

    r = run(QPACK, folder, "q")       # settles the pack, drops the temporary, then packs
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in folder.iterdir() if p.name.startswith("q"))
    assert len(files) == 2 and files[0] == "q"
    r = run(QDUMP, "-d", folder / files[1])
    assert queue_items_from_dump(r.stdout) == ['"live"']


def test_qpack_refuses_a_locked_folder(kestrel):
    mc = kestrel.memcache()
    mc.must_set("busy", "x")
    assert "busy" in kestrel.spool_files()
    before = (kestrel.spool / "busy").read_bytes()
    r = run(QPACK, kestrel.spool, "busy")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "lock" in r.stderr and "stop the server first" in r.stderr
    assert str(kestrel.pid) in r.stderr
    assert (kestrel.spool / "busy").read_bytes() == before
    assert mc.get("busy") == b"x"
    r = run(QPACK, "--check", kestrel.spool, "busy")
    assert r.returncode == 0, r.stdout
    assert "note: a server holds the folder lock" in r.stdout


def test_qdump_reads_a_running_servers_live_file(kestrel):
    """The live file carries reserved space after its records while the server runs."""
    mc = kestrel.memcache()
    mc.must_set("live", "one")
    mc.must_set("live", "two")
    assert mc.get("live") == b"one"
    path = kestrel.spool / "live"
    records = kestrel.journal_bytes("live")
    assert path.stat().st_size > len(records)
    r = run(QDUMP, path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "# items: 2 added, 1 removed, 1 queued (3 bytes of data)" in r.stdout
    reserved = path.stat().st_size - len(records)
    assert f"# {reserved} bytes of reserved space (zeros) after the last record" in r.stdout
    assert f"# clean end at offset {len(records)}" in r.stdout
    kestrel.stop()
    assert path.stat().st_size == len(records), "a clean stop cuts the reserved space off"


def test_restart_after_kill9_removes_reserved_space(kestrel):
    mc = kestrel.memcache()
    for i in range(20):
        mc.must_set("k9", f"item{i}")
    path = kestrel.spool / "k9"
    records = kestrel.journal_bytes("k9")
    assert path.stat().st_size > len(records)
    kestrel.kill9()
    kestrel.start()
    assert path.stat().st_size == len(records)
    assert "bytes of reserved space after the last record" in kestrel.stderr_text()
    mc = kestrel.memcache()
    assert [mc.get("k9") for _ in range(20)] == [f"item{i}".encode() for i in range(20)]


def test_qpack_usage(tmp_path):
    r = run(QPACK, tmp_path / "missing", "q")
    assert r.returncode == 2 and "not a folder" in r.stderr
    r = run(QPACK, tmp_path, "bad.name")
    assert r.returncode == 2 and "bad queue name" in r.stderr
    r = run(QPACK, tmp_path, "q")
    assert r.returncode == 2 and "no journal files" in r.stderr
    r = run(QPACK, tmp_path)
    assert r.returncode == 2
    r = run(QPACK, "--version")
    assert r.returncode == 0 and r.stdout.startswith("kestrel-qpack ")
    r = run(QPACK, "--help")
    assert r.returncode == 0 and "--check" in r.stdout and "Exit status:" in r.stdout
    assert list(tmp_path.iterdir()) == []      # nothing created, not even a lock file

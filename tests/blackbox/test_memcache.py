"""Memcache protocol (SPEC 2) and the queue behaviour seen through it, byte for byte."""
import os
import re
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import (HOST, MemcacheClient, journal_records, wait_for, find_kestreld,
                      server_side_socket)

GLOBAL_STATS = [
    "uptime", "time", "version", "curr_items", "total_items", "bytes",
    "reserved_memory_ratio", "curr_connections", "total_connections", "cmd_get", "cmd_set",
    "cmd_peek", "get_hits", "get_misses", "bytes_read", "bytes_written", "queue_creates",
    "queue_deletes", "queue_expires",
]
QUEUE_STATS = [
    "items", "bytes", "total_items", "logsize", "expired_items", "mem_items", "mem_bytes", "age",
    "discarded", "waiters", "open_transactions", "transactions", "canceled_transactions",
    "total_flushes", "journal_rewrites", "journal_rotations", "remove_failures",
]
QUEUE_OPTIONS = [
    "maxItems", "maxSize", "maxItemSize", "maxAge", "defaultJournalSize", "maxMemorySize",
    "maxJournalSize", "minJournalCompactDelay", "discardOldWhenFull", "keepJournal",
    "syncJournal", "expireToQueue", "maxExpireSweep", "fanoutOnly", "maxQueueAge",
    "openTransactionTimeout",
]
VERSION_RE = re.compile(rb"VERSION (\d+)\.(\d+)\.(\d+)\r\n")


def assert_client_error_and_closed(c, line=None):
    if line is None:
        line = c.read_line()
    assert re.fullmatch(rb"CLIENT_ERROR( [^\r\n]*)?\r\n", line), "expected CLIENT_ERROR, got %r" % line
    c.assert_closed()


def assert_error_and_closed(c):
    line = c.read_line()
    assert line == b"ERROR\r\n", "expected ERROR, got %r" % line
    c.assert_closed()


def assert_still_serving(srv, queue="health"):
    """Another client still gets correct service."""
    with MemcacheClient(srv.memcache_port) as c:
        assert c.set(queue, b"ok") == b"STORED\r\n"
        assert c.get(queue) == b"ok"
        assert c.get(queue) is None


def first_pending(clients, timeout=5.0):
    """Index of the first client that has received something."""
    def check():
        for i, c in enumerate(clients):
            if not c.nothing_pending(0.005):
                return i + 1
        return 0
    return wait_for(check, timeout, message="a waiter to be served") - 1


# ==============================================================================================
# set / get basics

def test_set_get_byte_exact(kestrel):
    c = kestrel.memcache()
    c.send(b"set work 0 0 5\r\nhello\r\n")
    assert c.read_line() == b"STORED\r\n"
    c.send(b"get work\r\n")
    assert c.read_exact(len(b"VALUE work 0 5\r\nhello\r\nEND\r\n")) == b"VALUE work 0 5\r\nhello\r\nEND\r\n"
    c.send(b"get work\r\n")
    assert c.read_line() == b"END\r\n"


def test_gets_is_get(mc):
    mc.must_set("gq", "abc")
    mc.send(b"gets gq\r\n")
    assert mc.read_exact(len(b"VALUE gq 0 3\r\nabc\r\nEND\r\n")) == b"VALUE gq 0 3\r\nabc\r\nEND\r\n"
    mc.send(b"gets gq\r\n")
    assert mc.read_line() == b"END\r\n"


def test_fifo_order(mc):
    for i in range(20):
        mc.must_set("fifo", "item%d" % i)
    assert mc.get_all("fifo") == [b"item%d" % i for i in range(20)]


def test_empty_item(mc):
    mc.send(b"set empty 0 0 0\r\n\r\n")
    assert mc.read_line() == b"STORED\r\n"
    mc.send(b"get empty\r\n")
    assert mc.read_exact(len(b"VALUE empty 0 0\r\n\r\nEND\r\n")) == b"VALUE empty 0 0\r\n\r\nEND\r\n"
    assert mc.get("empty") is None


def test_binary_item_round_trip(mc):
    data = bytes(range(256)) + b"\r\nEND\r\n\x00\r\n"
    mc.must_set("bin", data)
    assert mc.get("bin") == data


def test_flags_are_ignored_and_reported_as_zero(mc):
    assert mc.set("flg", b"x", flags=12345) == b"STORED\r\n"
    mc.send_line("get flg")
    assert mc.read_line() == b"VALUE flg 0 1\r\n"
    assert mc.read_exact(3) == b"x\r\n"
    assert mc.read_line() == b"END\r\n"


def test_commands_case_insensitive(mc):
    mc.send(b"SET upq 0 0 2\r\nhi\r\n")
    assert mc.read_line() == b"STORED\r\n"
    mc.send(b"GeT upq\r\n")
    assert mc.read_value("upq") == b"hi"
    mc.send(b"VERSION\r\n")
    assert VERSION_RE.fullmatch(mc.read_line())


def test_bare_newline_command_lines(mc):
    mc.send(b"set nl 0 0 3\nabc\r\n")
    assert mc.read_line() == b"STORED\r\n"
    mc.send(b"get nl\n")
    assert mc.read_value("nl") == b"abc"


def test_pipelined_requests(mc):
    mc.send(b"set p 0 0 1\r\na\r\nset p 0 0 1\r\nb\r\nget p\r\nget p\r\nget p\r\n")
    expected = b"STORED\r\nSTORED\r\nVALUE p 0 1\r\na\r\nEND\r\nVALUE p 0 1\r\nb\r\nEND\r\nEND\r\n"
    assert mc.read_exact(len(expected)) == expected


@pytest.mark.parametrize("synced", [False, True], ids=["never-synced", "some-queue-synced"])
def test_pipelined_replies_of_every_kind_keep_their_order(kestrel_factory, synced):
    """Short replies are gathered in a small buffer and the others (version, a 20 KB item sent
    by reference, replies held for a syncJournal = 0 write) go through the output buffers: in
    one pipeline, far more than the small buffer holds, every reply still comes in order.
    (While any queue has a syncJournal, every set's reply waits for the syncer's answer.)"""
    srv = kestrel_factory(sections={"queue synced": {"syncJournal": "0"}} if synced else {})
    mc = srv.memcache()
    version = mc.request("version")
    assert version.startswith(b"VERSION ")
    sizes = [1, 700, 1500, 20000, 3, 16384, 16383, 64]
    request, expected = b"", b""
    for i, size in enumerate(sizes):
        item = (b"%d-" % i + os.urandom(size).hex().encode())[:size]
        queue = b"synced" if synced and i % 3 == 0 else b"plain"
        request += b"set %s 0 0 %d\r\n%s\r\nget %s\r\nversion\r\nget empty\r\n" % (
            queue, size, item, queue)
        expected += b"STORED\r\nVALUE %s 0 %d\r\n%s\r\nEND\r\n%sEND\r\n" % (
            queue, size, item, version)
    request += b"get empty\r\n" * 100
    expected += b"END\r\n" * 100
    mc.send(request)
    assert mc.read_exact(len(expected)) == expected


def test_large_item(mc):
    data = os.urandom(1 << 20)
    mc.must_set("big", data)
    assert mc.get("big") == data


@pytest.mark.parametrize("size", [256 * 1024, 512 * 1024, 3 << 20])
def test_large_items_on_a_queue_used_before(mc, size):
    mc.must_set("used", "small")
    assert mc.get("used") == b"small"
    items = [os.urandom(size) for _ in range(3)]
    for item in items:
        mc.must_set("used", item)
    assert mc.qstat("used", "items") == 3
    assert [mc.get("used") for _ in items] == items
    assert mc.get("used") is None


def test_large_items_sent_alone_reach_every_fanout_child_and_survive_a_restart(kestrel):
    """A large set that arrives alone is read into a block of its own, which the queue then
    holds as the item: a fanout child gets the same bytes, a get sees every byte, and the
    journal has them all after a restart; one sent right behind another is copied as before."""
    c = kestrel.memcache()
    c.must_set("whole+child", "made")
    assert c.get("whole+child") == b"made"
    alone = [os.urandom(n) for n in (256 * 1024 - 19, 300001, 2 << 20)]
    for item in alone:
        c.must_set("whole", item)
    pipelined = [os.urandom(300000) for _ in range(2)]
    c.send(b"".join(b"set whole 0 0 %d\r\n%s\r\n" % (len(i), i) for i in pipelined))
    assert c.read_exact(16, timeout=10) == b"STORED\r\n" * 2
    items = alone + pipelined
    assert c.get("whole", "/peek") == items[0]
    kestrel.restart()
    c = kestrel.memcache()
    assert [c.get("whole+child") for _ in items] == items
    assert [c.get("whole") for _ in items] == items
    assert c.get("whole") is None


def set_of_total_length(queue, total, fill):
    """A set request of exactly `total` bytes (line, data and CRLF) and its data."""
    for n in range(total - 40, total):
        line = b"set %s 0 0 %d\r\n" % (queue, n)
        if len(line) + n + 2 == total:
            data = (fill * (n // len(fill) + 1))[:n]
            return line + data + b"\r\n", data
    raise AssertionError("no set of %d bytes" % total)


def test_sets_that_fill_the_read_block_exactly_or_arrive_in_pieces(mc):
    """A connection reads into a 16 KB block first, and once a set's line tells its length,
    into a block made for the whole set: sets that end exactly at the block's end, just
    before or after it, and a large set arriving in pieces with the next request behind it in
    the same piece, are all taken whole and in order."""
    request, expected = b"", b""
    for i, total in enumerate([16383, 16384, 16385, 16384 * 2, 16384 * 2 + 5, 16384 * 3 - 2]):
        req, data = set_of_total_length(b"edge", total, b"%d-" % i)
        request += req
        expected += b"VALUE edge 0 %d\r\n%s\r\nEND\r\n" % (len(data), data)
    mc.send(request)
    assert mc.read_exact(8 * 6, timeout=10) == b"STORED\r\n" * 6
    mc.send(b"get edge\r\n" * 6)
    assert mc.read_exact(len(expected), timeout=10) == expected

    big = os.urandom(300000)
    whole = b"set big 0 0 %d\r\n%s\r\nset after 0 0 2\r\nok\r\n" % (len(big), big)
    cuts = [0, 7, 20, 16384, 16400, 100000, 299000, len(whole) - 10, len(whole)]
    for a, b in zip(cuts, cuts[1:]):
        mc.send(whole[a:b])
        time.sleep(0.01)  # separate arrivals, so the set is read across several turns
    assert mc.read_exact(16, timeout=10) == b"STORED\r\nSTORED\r\n"
    assert mc.get("big") == big
    assert mc.get("after") == b"ok"
    assert mc.request("version").startswith(b"VERSION ")


def test_replies_are_sent_without_nagle_delay(kestrel):
    """TCP_NODELAY on the server's sockets, memcache and text: with Nagle, a reply sent while
    the client has not yet acknowledged the one before waits for its delayed ACK."""
    mc, txt = kestrel.memcache(), kestrel.text()
    assert mc.request("version").startswith(b"VERSION ")
    assert txt.request("get nagle") == b"*\n"
    for client in (mc, txt):
        with server_side_socket(kestrel.pid, client.sock) as server_end:
            assert server_end.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_get_key_is_queue_name_without_options(mc):
    mc.must_set("opts", "v")
    mc.send_line("get opts/t=10")
    assert mc.read_line() == b"VALUE opts 0 1\r\n"
    assert mc.read_exact(3) == b"v\r\n"
    assert mc.read_line() == b"END\r\n"


# ==============================================================================================
# reliable reads

def test_open_close(kestrel):
    a, b = kestrel.memcache(), kestrel.memcache()
    a.must_set("rr", "one")
    a.must_set("rr", "two")
    assert a.get("rr", "/open") == b"one"
    assert b.get("rr") == b"two"          # the open item is not visible to others
    assert b.get("rr") is None
    a.send_line("get rr/close")
    assert a.read_line() == b"END\r\n"
    a.close()
    # confirmed: does not come back
    c = kestrel.memcache()
    assert c.get("rr") is None


def test_open_abort_returns_item_to_head(kestrel):
    a = kestrel.memcache()
    for x in ("a", "b", "c"):
        a.must_set("ab", x)
    assert a.get("ab", "/open") == b"a"
    a.send_line("get ab/abort")
    assert a.read_line() == b"END\r\n"
    b = kestrel.memcache()
    assert b.get_all("ab") == [b"a", b"b", b"c"]


def test_close_open_confirms_and_opens_next(kestrel):
    a = kestrel.memcache()
    for x in ("1", "2", "3"):
        a.must_set("co", x)
    assert a.get("co", "/open") == b"1"
    assert a.get("co", "/close/open") == b"2"
    assert a.get("co", "/open/close") == b"3"   # any order
    a.send_line("get co/abort")
    assert a.read_line() == b"END\r\n"
    assert a.get("co") == b"3"
    assert a.get("co") is None


def test_close_without_open_read_is_end(mc):
    mc.must_set("cl", "x")
    mc.send_line("get cl/close")
    assert mc.read_line() == b"END\r\n"
    assert mc.get("cl") == b"x"           # nothing consumed


def test_abort_without_open_read_is_end(mc):
    mc.must_set("abn", "x")
    mc.send_line("get abn/abort")
    assert mc.read_line() == b"END\r\n"
    assert mc.get("abn") == b"x"


def test_close_open_on_empty_queue_confirms(kestrel):
    a = kestrel.memcache()
    a.must_set("coe", "only")
    assert a.get("coe", "/open") == b"only"
    assert a.get("coe", "/close/open") is None
    a.close()
    b = kestrel.memcache()
    assert b.get("coe") is None


def test_peek_does_not_remove(mc):
    mc.must_set("pk", "first")
    mc.must_set("pk", "second")
    assert mc.get("pk", "/peek") == b"first"
    assert mc.get("pk", "/peek") == b"first"
    assert mc.get("pk") == b"first"
    assert mc.get("pk", "/peek") == b"second"
    assert mc.get("pk") == b"second"
    assert mc.get("pk", "/peek") is None


def test_peek_allowed_while_holding_open_read(mc):
    mc.must_set("pko", "a")
    mc.must_set("pko", "b")
    assert mc.get("pko", "/open") == b"a"
    assert mc.get("pko", "/peek") == b"b"
    assert mc.get("pko", "/close/open") == b"b"


@pytest.mark.parametrize("opts", [
    "/peek/open", "/open/peek", "/peek/close", "/close/peek", "/abort/open", "/open/abort",
    "/abort/close", "/close/abort", "/peek/abort", "/abort/peek", "/t=10/peek/open",
])
def test_forbidden_option_combinations(kestrel, opts):
    c = kestrel.memcache()
    c.must_set("combo", "keep")
    c.send_line("get combo" + opts)
    assert_client_error_and_closed(c)
    d = kestrel.memcache()
    assert d.get("combo") == b"keep"       # nothing was consumed
    assert_still_serving(kestrel)


@pytest.mark.parametrize("line", ["get /open", "get /peek", "get /t=10", "get /close"])
def test_empty_queue_name_in_get(kestrel, line):
    c = kestrel.memcache()
    c.send_line(line)
    assert_client_error_and_closed(c)
    assert_still_serving(kestrel)


NUL_NAMES = [b"a\x00/../../x", b"a\x00", b"\x00a", b"health\x00x"]


@pytest.mark.parametrize("name", NUL_NAMES, ids=["traversal", "trailing", "leading", "existing"])
def test_queue_name_with_nul_byte_is_refused(kestrel, name):
    """A name is checked on all its bytes: a NUL inside is refused with CLIENT_ERROR on every
    command that takes a name, the connection stays, and no queue (nor file) comes into being."""
    mc = kestrel.memcache()
    mc.must_set("health", b"kept")
    before = kestrel.spool_files()
    for request in (b"set %s 0 0 1\r\nx\r\n", b"get %s\r\n", b"get %s/open\r\n",
                    b"get %s/peek\r\n", b"get %s/t=10\r\n", b"monitor %s 1\r\n",
                    b"confirm %s 1\r\n", b"flush %s\r\n", b"flush_expired %s\r\n",
                    b"delete %s\r\n", b"dump_stats %s\r\n"):
        mc.send(request % name)
        assert mc.read_line() == b"CLIENT_ERROR queue name contains a NUL byte\r\n", request
    assert kestrel.spool_files() == before
    assert not (kestrel.workdir.parent / "x").exists()
    assert [line for line in mc.block("dump_stats") if line.startswith("queue ")] == [
        "queue 'health' {"]
    assert mc.qstat("health", "items") == 1
    assert mc.get("health") == b"kept"


def test_plain_get_while_holding_open_read(kestrel):
    a = kestrel.memcache()
    a.must_set("hold", "x")
    a.must_set("hold", "y")
    assert a.get("hold", "/open") == b"x"
    a.send_line("get hold")
    assert_error_and_closed(a)
    # the disconnect aborted the open read: x is back at the head
    b = kestrel.memcache()
    wait_for(lambda: b.get("hold", "/peek") == b"x", message="x back at the head")
    assert b.get_all("hold") == [b"x", b"y"]


def test_plain_get_on_other_queue_while_holding_open_read(mc):
    mc.must_set("h1", "x")
    mc.must_set("h2", "y")
    assert mc.get("h1", "/open") == b"x"
    assert mc.get("h2") == b"y"            # open reads are per queue


def test_max_open_transactions_default_is_one(kestrel):
    a = kestrel.memcache()
    a.must_set("mot", "1")
    a.must_set("mot", "2")
    assert a.get("mot", "/open") == b"1"
    a.send_line("get mot/open")
    assert_error_and_closed(a)
    b = kestrel.memcache()
    wait_for(lambda: b.get("mot", "/peek") == b"1", message="open read aborted")
    assert b.get_all("mot") == [b"1", b"2"]


def test_max_open_transactions_configured(kestrel_factory):
    srv = kestrel_factory(server={"maxOpenTransactions": 3})
    a = srv.memcache()
    for i in range(5):
        a.must_set("mot3", str(i))
    assert [a.get("mot3", "/open") for _ in range(3)] == [b"0", b"1", b"2"]
    assert a.qstat("mot3", "open_transactions") == 3
    a.send_line("get mot3/open")
    assert_error_and_closed(a)
    b = srv.memcache()
    wait_for(lambda: b.qstat("mot3", "open_transactions") == 0, message="reads aborted")
    # as in Kestrel, the reads are aborted in the order they were opened, each going back to
    # the head of the queue: the last one opened ends up first
    assert b.get_all("mot3") == [b"2", b"1", b"0", b"3", b"4"]


def test_open_read_aborted_on_disconnect(kestrel):
    a = kestrel.memcache()
    for x in ("a", "b"):
        a.must_set("disc", x)
    assert a.get("disc", "/open") == b"a"
    a.close()
    b = kestrel.memcache()
    wait_for(lambda: b.get("disc", "/peek") == b"a", message="item back at head after disconnect")
    assert b.get("disc") == b"a"
    assert b.get("disc") == b"b"
    assert b.get("disc") is None


def test_open_transactions_stat(kestrel):
    a = kestrel.memcache()
    a.must_set("ots", "x")
    assert a.get("ots", "/open") == b"x"
    admin = kestrel.memcache()
    assert admin.qstat("ots", "open_transactions") == 1
    assert admin.qstat("ots", "items") == 0
    a.send_line("get ots/close")
    assert a.read_line() == b"END\r\n"
    assert admin.qstat("ots", "open_transactions") == 0


# ==============================================================================================
# blocking reads

def test_blocking_get_times_out(mc):
    t0 = time.monotonic()
    assert mc.get("blk", "/t=300") is None
    elapsed = time.monotonic() - t0
    assert 0.25 <= elapsed < 3.0, elapsed


def test_blocking_get_woken_by_set(kestrel):
    waiter, writer = kestrel.memcache(), kestrel.memcache()
    t0 = time.monotonic()
    waiter.send_line("get wake/t=5000")
    wait_for(lambda: writer.qstat("wake", "waiters") == 1, message="waiter registered")
    writer.must_set("wake", "ping")
    assert waiter.read_value("wake") == b"ping"
    assert time.monotonic() - t0 < 4.0
    assert writer.qstat("wake", "waiters") == 0


def test_blocking_open_read_woken_by_set(kestrel):
    waiter, writer = kestrel.memcache(), kestrel.memcache()
    waiter.send_line("get wo/open/t=5000")
    wait_for(lambda: writer.qstat("wo", "waiters") == 1, message="waiter registered")
    writer.must_set("wo", "item")
    assert waiter.read_value("wo") == b"item"
    assert writer.qstat("wo", "open_transactions") == 1
    waiter.close()
    wait_for(lambda: writer.get("wo", "/peek") == b"item", message="open read aborted")


def test_blocking_waiters_served_in_arrival_order(kestrel):
    admin = kestrel.memcache()
    waiters = []
    for i in range(4):
        c = kestrel.memcache()
        c.send_line("get fair/t=8000")
        waiters.append(c)
        wait_for(lambda: admin.qstat("fair", "waiters") == i + 1, message="waiter %d" % i)
    remaining = list(range(4))
    for n in range(4):
        admin.must_set("fair", "x%d" % n)
        idx = first_pending([waiters[i] for i in remaining])
        got = remaining.pop(idx)
        assert got == n, "item x%d went to waiter %d, expected waiter %d" % (n, got, n)
        assert waiters[got].read_value("fair") == b"x%d" % n
    assert admin.get("fair") is None


def test_disconnected_waiter_is_dropped(kestrel):
    admin = kestrel.memcache()
    a = kestrel.memcache()
    a.send_line("get gone/t=10000")
    wait_for(lambda: admin.qstat("gone", "waiters") == 1, message="first waiter")
    b = kestrel.memcache()
    b.send_line("get gone/t=10000")
    wait_for(lambda: admin.qstat("gone", "waiters") == 2, message="second waiter")
    a.close()
    wait_for(lambda: admin.qstat("gone", "waiters") == 1, message="dead waiter removed")
    admin.must_set("gone", "item")
    assert b.read_value("gone") == b"item"


def test_disconnected_waiter_never_swallows_item(kestrel):
    admin = kestrel.memcache()
    a = kestrel.memcache()
    a.send_line("get swallow/open/t=10000")
    wait_for(lambda: admin.qstat("swallow", "waiters") == 1, message="waiter")
    a.close()
    wait_for(lambda: admin.qstat("swallow", "waiters") == 0, message="dead waiter removed")
    admin.must_set("swallow", "precious")
    assert admin.get("swallow") == b"precious"


# ==============================================================================================
# monitor / confirm

def test_monitor_returns_items_then_end_at_time_limit(kestrel_factory):
    srv = kestrel_factory(server={"maxOpenTransactions": 10})
    c = srv.memcache()
    for x in ("a", "b", "c"):
        c.must_set("mon", x)
    t0 = time.monotonic()
    c.send_line("monitor mon 1")
    expected = b"VALUE mon 0 1\r\na\r\nVALUE mon 0 1\r\nb\r\nVALUE mon 0 1\r\nc\r\nEND\r\n"
    assert c.read_exact(len(expected), timeout=5) == expected
    assert 0.8 <= time.monotonic() - t0 < 4.0
    assert c.qstat("mon", "open_transactions") == 3
    c.send_line("confirm mon 3")
    assert c.read_line() == b"END\r\n"
    assert c.qstat("mon", "open_transactions") == 0
    assert c.get("mon") is None


def test_monitor_max_items(kestrel_factory):
    srv = kestrel_factory(server={"maxOpenTransactions": 10})
    c = srv.memcache()
    for x in ("a", "b", "c"):
        c.must_set("monm", x)
    t0 = time.monotonic()
    c.send_line("monitor monm 10 2")
    expected = b"VALUE monm 0 1\r\na\r\nVALUE monm 0 1\r\nb\r\nEND\r\n"
    assert c.read_exact(len(expected)) == expected
    assert time.monotonic() - t0 < 5.0
    c.send_line("confirm monm 2")
    assert c.read_line() == b"END\r\n"
    assert c.get("monm") == b"c"


def test_monitor_default_max_is_max_open_transactions(kestrel_factory):
    srv = kestrel_factory(server={"maxOpenTransactions": 2})
    c = srv.memcache()
    for x in ("a", "b", "c"):
        c.must_set("mond", x)
    c.send_line("monitor mond 10")
    expected = b"VALUE mond 0 1\r\na\r\nVALUE mond 0 1\r\nb\r\nEND\r\n"
    assert c.read_exact(len(expected)) == expected


def test_monitor_delivers_items_arriving_later(kestrel_factory):
    srv = kestrel_factory(server={"maxOpenTransactions": 10})
    c, w = srv.memcache(), srv.memcache()
    c.send_line("monitor monl 3 1")
    wait_for(lambda: w.qstat("monl", "waiters") == 1, message="monitor waiting")
    w.must_set("monl", "late")
    expected = b"VALUE monl 0 4\r\nlate\r\nEND\r\n"
    assert c.read_exact(len(expected)) == expected


def test_monitor_reads_abort_on_disconnect(kestrel_factory):
    srv = kestrel_factory(server={"maxOpenTransactions": 10})
    c = srv.memcache()
    for x in ("a", "b"):
        c.must_set("mona", x)
    c.send_line("monitor mona 10 2")
    c.read_until(b"END\r\n")
    c.close()
    d = srv.memcache()
    wait_for(lambda: d.qstat("mona", "open_transactions") == 0, message="reads aborted")
    # aborted in opening order, each to the head (Kestrel's order): b ends up before a
    assert d.get_all("mona") == [b"b", b"a"]


def test_confirm_counts(kestrel_factory):
    srv = kestrel_factory(server={"maxOpenTransactions": 10})
    c = srv.memcache()
    for x in ("a", "b", "c"):
        c.must_set("cf", x)
    for x in (b"a", b"b"):
        assert c.get("cf", "/open") == x
    c.send_line("confirm cf 1")
    assert c.read_line() == b"END\r\n"
    assert c.qstat("cf", "open_transactions") == 1
    c.send_line("confirm cf 1")
    assert c.read_line() == b"END\r\n"
    c.send_line("confirm cf 1")
    assert c.read_line() == b"ERROR\r\n"
    c.close()
    d = srv.memcache()
    assert d.get_all("cf") == [b"c"]


def test_confirm_with_nothing_open_is_error(mc):
    mc.send_line("confirm nothing 1")
    assert mc.read_line() == b"ERROR\r\n"


def test_confirm_more_than_open_is_error_and_confirms_nothing(kestrel_factory):
    """Kestrel pops `count` open reads only when that many are open: otherwise ERROR, and the
    reads stay open."""
    srv = kestrel_factory(server={"maxOpenTransactions": 10})
    c = srv.memcache()
    for x in ("a", "b", "c"):
        c.must_set("cfm", x)
    for x in (b"a", b"b"):
        assert c.get("cfm", "/open") == x
    c.send_line("confirm cfm 3")
    assert c.read_line() == b"ERROR\r\n"
    assert c.qstat("cfm", "open_transactions") == 2
    c.send_line("confirm cfm 0")
    assert c.read_line() == b"ERROR\r\n"
    assert c.qstat("cfm", "open_transactions") == 2
    c.send_line("confirm cfm 2")
    assert c.read_line() == b"END\r\n"
    assert c.qstat("cfm", "open_transactions") == 0
    c.close()
    assert srv.memcache().get_all("cfm") == [b"c"]


def test_counts_below_zero_as_kestrel(kestrel_factory):
    """Kestrel read counts and times with toInt, sign included: a confirm count below zero is
    ERROR, a t= below zero does not wait, a monitor whose seconds are below zero ends at once
    and one whose max items are below zero is limited by the open reads only."""
    srv = kestrel_factory(server={"maxOpenTransactions": 3})
    c = srv.memcache()
    for x in ("a", "b", "c", "d"):
        c.must_set("neg", x)
    c.send_line("monitor neg -1")
    assert c.read_line() == b"END\r\n"
    assert c.qstat("neg", "items") == 4
    c.send_line("monitor neg 10 -1")
    expected = b"".join(b"VALUE neg 0 1\r\n%s\r\n" % x for x in (b"a", b"b", b"c")) + b"END\r\n"
    assert c.read_exact(len(expected)) == expected
    c.send_line("confirm neg -1")
    assert c.read_line() == b"ERROR\r\n"
    assert c.qstat("neg", "open_transactions") == 3
    c.send_line("confirm neg 3")
    assert c.read_line() == b"END\r\n"
    assert c.get("neg", "/t=-1000") == b"d"
    assert c.get("neg", "/t=-1000") is None        # answered at once, not an error


def test_flush_and_flush_expired_do_not_create_queues(kestrel):
    """Kestrel's flush and flush_expired looked a queue up without creating it."""
    c = kestrel.memcache()
    c.send_line("flush_expired fe_absent")
    assert c.read_line() == b"0\r\n"
    c.send_line("flush fl_absent")
    assert c.read_line() == b"END\r\n"
    assert kestrel.text().request("flush tfl_absent") == b"+0\n"
    assert not [k for k, _ in c.stats() if "absent" in k]
    assert c.stat("queue_creates") == "0"
    assert not [f for f in kestrel.spool_files() if "absent" in f]


def test_confirm_more_than_open_leaves_reads_to_abort(kestrel_factory):
    """The reads a refused confirm left open go back to the queue when the client leaves."""
    srv = kestrel_factory(server={"maxOpenTransactions": 10})
    c = srv.memcache()
    c.must_set("cfa", "a")
    assert c.get("cfa", "/open") == b"a"
    c.send_line("confirm cfa 2")
    assert c.read_line() == b"ERROR\r\n"
    c.close()
    d = srv.memcache()
    wait_for(lambda: d.qstat("cfa", "open_transactions") == 0, message="read aborted")
    assert d.get_all("cfa") == [b"a"]


# ==============================================================================================
# delete / flush

def test_delete_removes_queue_and_journal(kestrel):
    c = kestrel.memcache()
    c.must_set("dq", "x")
    wait_for(lambda: kestrel.journal("dq").exists(), message="journal file")
    deletes = int(c.stat("queue_deletes"))
    c.send_line("delete dq")
    assert c.read_line() == b"DELETED\r\n"
    assert not [f for f in kestrel.spool_files() if f == "dq" or f.startswith("dq.") or f.startswith("dq~")]
    st = dict(c.stats())
    assert not any(k.startswith("queue_dq_") for k in st), "deleted queue still in stats"
    assert int(st["queue_deletes"]) == deletes + 1
    assert c.get("dq") is None


def test_delete_then_restart_keeps_it_gone(kestrel):
    c = kestrel.memcache()
    c.must_set("dq2", "x")
    c.send_line("delete dq2")
    assert c.read_line() == b"DELETED\r\n"
    kestrel.restart()
    c = kestrel.memcache()
    assert c.get("dq2") is None


def test_flush(kestrel):
    c = kestrel.memcache()
    for i in range(5):
        c.must_set("fl", str(i))
    c.must_set("other", "stay")
    c.send_line("flush fl")
    assert c.read_line() == b"END\r\n"
    assert c.get("fl") is None
    assert c.get("other") == b"stay"
    assert c.qstat("fl", "total_flushes") == 1
    c.must_set("fl", "new")
    assert c.get("fl") == b"new"


def test_flush_all(mc):
    for q in ("fa1", "fa2", "fa3"):
        mc.must_set(q, "x")
        mc.must_set(q, "y")
    mc.send_line("flush_all")
    assert mc.read_line() == b"Flushed all queues.\r\n"
    for q in ("fa1", "fa2", "fa3"):
        assert mc.get(q) is None
    assert mc.stat("curr_items") == "0"


# ==============================================================================================
# expiry

def test_set_with_relative_expiry(mc):
    assert mc.set("exr", b"soon", exptime=1) == b"STORED\r\n"
    mc.must_set("exr", "forever")
    assert mc.get("exr", "/peek") == b"soon"
    wait_for(lambda: mc.get("exr", "/peek") == b"forever", timeout=5, message="item expiry")
    assert mc.get("exr") == b"forever"
    assert mc.qstat("exr", "expired_items") == 1


def test_set_with_absolute_expiry_in_past_is_never_returned(mc):
    mc.set("exa", b"stale", exptime=int(time.time()) - 60)
    mc.must_set("exa", "fresh")
    assert mc.get("exa") == b"fresh"
    assert mc.get("exa") is None


def test_set_with_absolute_expiry_in_future(mc):
    mc.must_set("exf", "later", exptime=int(time.time()) + 3600)
    assert mc.get("exf") == b"later"


def test_max_age(kestrel_factory):
    srv = kestrel_factory(sections={"queue ma": {"maxAge": "300ms"}})
    c = srv.memcache()
    c.must_set("ma", "x")
    assert c.get("ma", "/peek") == b"x"
    wait_for(lambda: c.get("ma", "/peek") is None, timeout=5, message="maxAge expiry")
    assert c.qstat("ma", "expired_items") == 1


def test_max_age_caps_explicit_expiry(kestrel_factory):
    srv = kestrel_factory(sections={"queue mac": {"maxAge": "300ms"}})
    c = srv.memcache()
    c.must_set("mac", "x", exptime=3600)
    wait_for(lambda: c.get("mac", "/peek") is None, timeout=5, message="maxAge expiry")


def test_flush_expired_counts(kestrel_factory):
    srv = kestrel_factory(sections={"queue fe": {"maxAge": "200ms"}})
    c = srv.memcache()
    for i in range(3):
        c.must_set("fe", str(i))
    total = [0]

    def flushed_all():
        c.send_line("flush_expired fe")
        line = c.read_line()
        assert re.fullmatch(rb"\d+\r\n", line), line
        total[0] += int(line)
        return total[0] >= 3
    wait_for(flushed_all, timeout=5, interval=0.05, message="3 items expired")
    assert total[0] == 3
    c.send_line("flush_expired fe")
    assert c.read_line() == b"0\r\n"
    assert c.qstat("fe", "items") == 0
    assert c.qstat("fe", "expired_items") == 3


def test_flush_all_expired_counts(kestrel_factory):
    srv = kestrel_factory(sections={"default": {"maxAge": "200ms"}})
    c = srv.memcache()
    c.must_set("fae1", "a")
    c.must_set("fae1", "b")
    c.must_set("fae2", "c")
    total = [0]

    def flushed_all():
        c.send_line("flush_all_expired")
        line = c.read_line()
        assert re.fullmatch(rb"\d+\r\n", line), line
        total[0] += int(line)
        return total[0] >= 3
    wait_for(flushed_all, timeout=5, interval=0.05, message="3 items expired")
    assert total[0] == 3
    assert c.stat("curr_items") == "0"


def test_expire_to_queue_on_head_access(kestrel_factory):
    srv = kestrel_factory(sections={"queue src": {"maxAge": "200ms", "expireToQueue": "dst"}})
    c = srv.memcache()
    c.must_set("src", "a")
    c.must_set("src", "b")
    wait_for(lambda: c.get("src", "/peek") is None, timeout=5, message="items expire")
    assert c.get_all("dst") == [b"a", b"b"]


def test_expire_to_queue_by_background_sweep(kestrel_factory):
    srv = kestrel_factory(server={"expirationTimerFrequency": "100ms"},
                          sections={"queue sw": {"maxAge": "200ms", "expireToQueue": "swdst"}})
    c = srv.memcache()
    c.must_set("sw", "moved")
    # only the sweep can move it: nothing touches "sw" again
    wait_for(lambda: c.get("swdst", "/peek") == b"moved", timeout=5, message="sweep moved item")
    assert c.qstat("sw", "items") == 0
    assert c.get("swdst") == b"moved"


def test_background_sweep_expires_items(kestrel_factory):
    srv = kestrel_factory(server={"expirationTimerFrequency": "100ms"},
                          sections={"queue swe": {"maxAge": "200ms"}})
    c = srv.memcache()
    c.must_set("swe", "x")
    wait_for(lambda: c.qstat("swe", "expired_items") == 1, timeout=5, message="sweep")
    assert c.qstat("swe", "items") == 0


# ==============================================================================================
# limits

def test_max_items(kestrel_factory):
    srv = kestrel_factory(sections={"queue mi": {"maxItems": 3}})
    c = srv.memcache()
    for i in range(3):
        c.must_set("mi", str(i))
    assert c.set("mi", b"4") == b"NOT_STORED\r\n"
    assert c.get_all("mi") == [b"0", b"1", b"2"]
    c.must_set("mi", "again")


def test_max_size(kestrel_factory):
    srv = kestrel_factory(sections={"queue ms": {"maxSize": "10B"}})
    c = srv.memcache()
    c.must_set("ms", "aaaaa")
    c.must_set("ms", "bbbbb")
    assert c.set("ms", b"ccccc") == b"NOT_STORED\r\n"
    assert c.get_all("ms") == [b"aaaaa", b"bbbbb"]


def test_max_item_size(kestrel_factory):
    srv = kestrel_factory(sections={"queue mis": {"maxItemSize": "10B"}})
    c = srv.memcache()
    assert c.set("mis", b"x" * 11) == b"NOT_STORED\r\n"
    c.must_set("mis", "y" * 10)
    assert c.get_all("mis") == [b"y" * 10]


def test_max_item_size_with_discard_old_still_refuses(kestrel_factory):
    srv = kestrel_factory(sections={"queue misd": {"maxItemSize": "10B",
                                                   "discardOldWhenFull": "true"}})
    c = srv.memcache()
    c.must_set("misd", "keep")
    assert c.set("misd", b"x" * 11) == b"NOT_STORED\r\n"
    assert c.get_all("misd") == [b"keep"]


def test_discard_old_when_full_items(kestrel_factory):
    srv = kestrel_factory(sections={"queue dof": {"maxItems": 2, "discardOldWhenFull": "true"}})
    c = srv.memcache()
    for x in ("a", "b", "c", "d"):
        c.must_set("dof", x)
    assert c.qstat("dof", "discarded") == 2
    assert c.get_all("dof") == [b"c", b"d"]


def test_discard_old_when_full_size(kestrel_factory):
    srv = kestrel_factory(sections={"queue dos": {"maxSize": "10B", "discardOldWhenFull": "true"}})
    c = srv.memcache()
    for x in ("aaaaa", "bbbbb", "ccccc"):
        c.must_set("dos", x)
    assert c.qstat("dos", "discarded") == 1
    assert c.get_all("dos") == [b"bbbbb", b"ccccc"]


def test_size_suffix_forms(kestrel_factory):
    srv = kestrel_factory(sections={"queue kb": {"maxItemSize": "1KB"},
                                    "queue kk": {"maxItemSize": "2.kilobytes"}})
    c = srv.memcache()
    for q, limit in (("kb", 1024), ("kk", 2048)):
        c.must_set(q, b"x" * limit)
        assert c.set(q, b"x" * (limit + 1)) == b"NOT_STORED\r\n"


# ==============================================================================================
# fanout and aliases

def test_fanout_child_receives_items_added_after_it_exists(kestrel):
    mc = kestrel.memcache()
    mc.must_set("orders", "before")
    assert mc.get("orders+audit") is None            # child comes into being
    mc.must_set("orders", "after")
    assert kestrel.journal("orders+audit").exists()
    assert mc.get_all("orders") == [b"before", b"after"]
    assert mc.get_all("orders+audit") == [b"after"]
    children = mc.stat("queue_orders_children")
    assert children is not None and "audit" in children, children


def test_fanout_multiple_children(mc):
    for child in ("f+x", "f+y"):
        assert mc.get(child) is None
    mc.must_set("f", "1")
    mc.must_set("f", "2")
    for q in ("f", "f+x", "f+y"):
        assert mc.get_all(q) == [b"1", b"2"], q


def test_fanout_child_reads_are_independent(mc):
    assert mc.get("ind+c") is None
    mc.must_set("ind", "v")
    assert mc.get("ind+c") == b"v"
    assert mc.get("ind") == b"v"


def test_fanout_only(kestrel_factory):
    srv = kestrel_factory(sections={"queue fo": {"fanoutOnly": "true"}})
    c = srv.memcache()
    assert c.get("fo+c1") is None
    assert c.set("fo", b"x") == b"STORED\r\n"
    assert c.get("fo") is None
    assert c.get("fo+c1") == b"x"


def test_deleting_child_detaches_it(mc):
    assert mc.get("par+ch") is None
    mc.must_set("par", "1")
    mc.send_line("delete par+ch")
    assert mc.read_line() == b"DELETED\r\n"
    mc.must_set("par", "2")
    assert mc.get_all("par") == [b"1", b"2"]
    # a child referenced again starts fresh and does not see items from before
    assert mc.get("par+ch") is None
    mc.must_set("par", "3")
    assert mc.get_all("par+ch") == [b"3"]


def test_fanout_child_inherits_parent_settings(kestrel_factory):
    srv = kestrel_factory(sections={"queue inh": {"maxItems": 1}})
    c = srv.memcache()
    assert c.get("inh+c") is None
    c.must_set("inh", "1")
    assert c.set("inh+c", b"2") == b"NOT_STORED\r\n"


def test_alias_copies_to_destinations_and_is_write_only(kestrel_factory):
    srv = kestrel_factory(sections={"alias al": {"destinationQueues": "d1;d2"}})
    c = srv.memcache()
    assert c.set("al", b"x") == b"STORED\r\n"
    assert c.set("al", b"y") == b"STORED\r\n"
    assert c.get("al") is None
    assert c.get("al", "/peek") is None
    assert c.get_all("d1") == [b"x", b"y"]
    assert c.get_all("d2") == [b"x", b"y"]


def test_alias_flush_and_delete_are_ignored(kestrel_factory):
    srv = kestrel_factory(sections={"alias al2": {"destinationQueues": "dd"}})
    c = srv.memcache()
    c.must_set("al2", "x")
    c.send_line("flush al2")
    assert c.read_line() == b"END\r\n"
    c.send_line("delete al2")
    assert c.read_line() == b"DELETED\r\n"
    c.must_set("al2", "y")
    assert c.get_all("dd") == [b"x", b"y"]


# ==============================================================================================
# stats / dump_stats / dump_config

def test_stats_names_order_and_counters(kestrel):
    c = kestrel.memcache()
    sent = received = 0
    for x in (b"hello", b"world"):
        req = b"set sq 0 0 5\r\n" + x + b"\r\n"
        c.send(req)
        sent += len(req)
        received += len(c.read_line())
    c.send(b"get sq\r\n")
    sent += 8
    assert c.read_value("sq") == b"hello"
    received += len(b"VALUE sq 0 5\r\nhello\r\nEND\r\n")
    c.send(b"get sq2\r\n")
    sent += 9
    assert c.read_value("sq2") is None
    received += 5
    t = time.time()
    st = c.stats()
    names = [n for n, _ in st]
    assert names[:len(GLOBAL_STATS)] == GLOBAL_STATS
    d = dict(st)
    assert int(d["uptime"]) >= 0 and int(d["uptime"]) < 120
    assert abs(int(d["time"]) - t) <= 5
    v = kestrel.memcache()
    v.send_line("version")
    assert v.read_line() == b"VERSION " + d["version"].encode() + b"\r\n"
    assert d["curr_items"] == "1"
    assert d["total_items"] == "2"
    assert d["bytes"] == "5"
    float(d["reserved_memory_ratio"])
    assert int(d["curr_connections"]) >= 1
    assert int(d["total_connections"]) >= 1
    assert d["cmd_get"] == "2"
    assert d["cmd_set"] == "2"
    assert d["cmd_peek"] == "0"
    assert d["get_hits"] == "1"
    assert d["get_misses"] == "1"
    assert int(d["bytes_read"]) >= sent
    assert int(d["bytes_written"]) >= received
    assert d["queue_creates"] == "2"
    assert d["queue_deletes"] == "0"
    assert d["queue_expires"] == "0"
    # per-queue stats: contiguous, in SPEC order, for every queue
    rest = names[len(GLOBAL_STATS):]
    for q in ("sq", "sq2"):
        qnames = [n for n in rest if n.startswith("queue_%s_" % q)]
        assert qnames == ["queue_%s_%s" % (q, s) for s in QUEUE_STATS], qnames
        start = rest.index(qnames[0])
        assert rest[start:start + len(qnames)] == qnames
    assert len(rest) == 2 * len(QUEUE_STATS)
    q = {k[len("queue_sq_"):]: int(v) for k, v in d.items() if k.startswith("queue_sq_")}
    assert q["items"] == 1
    assert q["bytes"] == 5
    assert q["total_items"] == 2
    assert q["logsize"] == 2 * (5 + 21) + 1          # two ADDX of 5 bytes and a REMOVE
    assert q["expired_items"] == 0
    assert q["mem_items"] == 1
    assert q["mem_bytes"] == 5
    assert q["age"] >= 0
    assert q["discarded"] == 0
    assert q["waiters"] == 0
    assert q["open_transactions"] == 0
    assert q["total_flushes"] == 0


def test_stats_peek_counts_separately(mc):
    mc.must_set("spk", "x")
    assert mc.get("spk", "/peek") == b"x"
    d = dict(mc.stats())
    assert d["cmd_peek"] == "1"
    assert d["cmd_get"] == "0"


def test_stats_connections(kestrel):
    # The start-up check connected once to each listener; the server may accept those
    # connections after ours, so the count is awaited, not read once.
    probes = len(kestrel.ports())
    a = kestrel.memcache()
    b = kestrel.memcache()
    for client in (a, b):
        client.send_line("version")
        client.read_line()
    wait_for(lambda: a.stat("curr_connections") == "2", message="two connections")
    wait_for(lambda: a.stat("total_connections") == str(probes + 2),
             message="every connection so far counted once")
    b.close()
    wait_for(lambda: a.stat("curr_connections") == "1", message="connection count drops")
    c = kestrel.memcache()
    c.send_line("version")
    c.read_line()
    assert int(a.stat("total_connections")) == probes + 3


def test_dump_stats(mc):
    mc.must_set("ds1", "abc")
    mc.must_set("ds2", "x")
    mc.must_set("ds2", "y")
    lines = mc.block("dump_stats")
    blocks = parse_blocks(lines)
    assert set(blocks) == {"ds1", "ds2"}
    for q, entries in blocks.items():
        assert [k for k, _ in entries] == QUEUE_STATS
    assert dict(blocks["ds1"])["items"] == "1"
    assert dict(blocks["ds1"])["bytes"] == "3"
    assert dict(blocks["ds2"])["items"] == "2"
    only = parse_blocks(mc.block("dump_stats ds2"))
    assert list(only) == ["ds2"]


def parse_blocks(lines):
    """`queue 'q' {` / `  k=v` / `}` blocks -> {q: [(k, v), ...]}, checking the layout."""
    blocks = {}
    current = None
    for line in lines:
        if current is None:
            m = re.fullmatch(r"queue '([^']+)' \{", line)
            assert m, "expected a queue header, got %r" % line
            current = m.group(1)
            blocks[current] = []
        elif line == "}":
            current = None
        else:
            m = re.fullmatch(r"  ([A-Za-z_]+)=(.*)", line)
            assert m, "bad entry line %r" % line
            blocks[current].append((m.group(1), m.group(2)))
    assert current is None, "unterminated block"
    return blocks


def test_dump_config(kestrel_factory):
    srv = kestrel_factory(sections={"queue dc": {"maxItems": 7, "discardOldWhenFull": "true"}})
    c = srv.memcache()
    c.must_set("dc", "x")
    c.must_set("plain", "y")
    blocks = parse_blocks(c.block("dump_config"))
    assert {"dc", "plain"} <= set(blocks)
    for q in ("dc", "plain"):
        assert [k for k, _ in blocks[q]] == QUEUE_OPTIONS, blocks[q]
    dc = dict(blocks["dc"])
    assert dc["maxItems"] == "7"
    assert dc["discardOldWhenFull"] == "true"
    assert dict(blocks["plain"])["discardOldWhenFull"] == "false"
    assert dict(blocks["plain"])["keepJournal"] == "true"


# ==============================================================================================
# reload / version / status / quit / shutdown / unknown

def test_reload_applies_new_queue_settings(kestrel_factory):
    srv = kestrel_factory(sections={"queue rl": {"maxItems": 2}})
    c = srv.memcache()
    c.must_set("rl", "1")
    c.must_set("rl", "2")
    assert c.set("rl", b"3") == b"NOT_STORED\r\n"
    assert dict(parse_blocks(c.block("dump_config"))["rl"])["maxItems"] == "2"
    srv.write_config(sections={"queue rl": {"maxItems": 4}})
    c.send_line("reload")
    assert c.read_line() == b"Reloaded config.\r\n"
    assert dict(parse_blocks(c.block("dump_config"))["rl"])["maxItems"] == "4"
    c.must_set("rl", "3")
    c.must_set("rl", "4")
    assert c.set("rl", b"5") == b"NOT_STORED\r\n"


def test_reload_adds_alias(kestrel_factory):
    srv = kestrel_factory()
    c = srv.memcache()
    srv.write_config(sections={"alias newal": {"destinationQueues": "t1;t2"}})
    c.send_line("reload")
    assert c.read_line() == b"Reloaded config.\r\n"
    c.must_set("newal", "x")
    assert c.get("t1") == b"x"
    assert c.get("t2") == b"x"
    assert c.get("newal") is None


def test_version_format_matches_binary(mc):
    mc.send_line("version")
    line = mc.read_line()
    m = VERSION_RE.fullmatch(line)
    assert m, line
    assert int(m.group(1)) >= 1
    out = subprocess.run([find_kestreld(), "--version"], capture_output=True, timeout=10)
    assert out.returncode == 0
    assert out.stdout.strip() == b"kestreld " + line[len(b"VERSION "):-2]


def test_status_not_configured(kestrel_factory):
    mc = kestrel_factory(server={"statusFile": "none"}).memcache()
    mc.send_line("status")
    assert_error_and_closed(mc)


@pytest.fixture
def status_server(kestrel_factory, tmp_path):
    def make(**server):
        opts = {"statusFile": str(tmp_path / "status"), "statusChangeGracePeriod": "0s"}
        opts.update(server)
        return kestrel_factory(server=opts)
    return make


def test_status_default_up(status_server):
    srv = status_server()
    c = srv.memcache()
    c.send_line("status")
    assert c.read_line() == b"UP\r\n"


def test_status_default_status_setting(status_server):
    srv = status_server(defaultStatus="READONLY")
    c = srv.memcache()
    c.send_line("status")
    assert c.read_line() == b"READONLY\r\n"


def test_status_readonly_refuses_writes(status_server):
    srv = status_server()
    c = srv.memcache()
    c.must_set("st", "before")
    c.send_line("status READONLY")
    assert c.read_line() == b"END\r\n"
    c.send_line("status")
    assert c.read_line() == b"READONLY\r\n"
    c.send(b"set st 0 0 1\r\nx\r\n")
    line = c.read_line()
    assert re.fullmatch(rb"SERVER_ERROR( [^\r\n]*)?\r\n", line), line
    c.assert_closed()
    d = srv.memcache()
    assert d.get("st") == b"before"        # reads still allowed
    d.send_line("status UP")
    assert d.read_line() == b"END\r\n"
    d.must_set("st", "after")
    assert d.get("st") == b"after"


def test_status_quiescent_refuses_reads_but_confirms_open_reads(status_server):
    srv = status_server()
    c = srv.memcache()
    c.must_set("qs", "a")
    c.must_set("qs", "b")
    assert c.get("qs", "/open") == b"a"
    admin = srv.memcache()
    admin.send_line("status QUIESCENT")
    assert admin.read_line() == b"END\r\n"
    c.send_line("get qs/close")
    assert c.read_line() == b"END\r\n"     # confirming an earlier read is allowed
    r = srv.memcache()
    r.send_line("get qs")
    line = r.read_line()
    assert re.fullmatch(rb"SERVER_ERROR( [^\r\n]*)?\r\n", line), line
    r.assert_closed()
    w = srv.memcache()
    w.send(b"set qs 0 0 1\r\nx\r\n")
    line = w.read_line()
    assert re.fullmatch(rb"SERVER_ERROR( [^\r\n]*)?\r\n", line), line
    w.assert_closed()
    admin.send_line("status UP")
    assert admin.read_line() == b"END\r\n"
    assert admin.get_all("qs") == [b"b"]


def test_status_persisted_across_restart(status_server):
    srv = status_server()
    c = srv.memcache()
    c.send_line("status readonly")
    assert c.read_line() == b"END\r\n"
    srv.restart()
    c = srv.memcache()
    c.send_line("status")
    assert c.read_line() == b"READONLY\r\n"


def test_status_grace_period_delays_enforcement(status_server):
    srv = status_server(statusChangeGracePeriod="1s")
    c = srv.memcache()
    c.send_line("status READONLY")
    assert c.read_line() == b"END\r\n"
    t0 = time.monotonic()
    assert c.set("gp", b"early") == b"STORED\r\n"     # still within the grace period

    def refused():
        with MemcacheClient(srv.memcache_port) as w:
            line = w.set("gp", b"late")
            return line.startswith(b"SERVER_ERROR")
    wait_for(refused, timeout=5, interval=0.05, message="READONLY enforced")
    assert time.monotonic() - t0 >= 0.5


def test_quit_closes_connection(kestrel):
    c = kestrel.memcache()
    c.send_line("quit")
    c.assert_closed()
    assert_still_serving(kestrel)


def test_unknown_command(kestrel):
    c = kestrel.memcache()
    c.send_line("frobnicate q")
    assert_client_error_and_closed(c)
    assert_still_serving(kestrel)


@pytest.mark.parametrize("line", ["gett q", "add q 0 0 1", "incr q 1", "touch q 0", "stat"])
def test_unknown_memcache_commands(kestrel, line):
    c = kestrel.memcache()
    c.send_line(line)
    assert_client_error_and_closed(c)
    assert_still_serving(kestrel)


def test_shutdown_command(kestrel):
    c = kestrel.memcache()
    c.must_set("sd", "persist")
    c.send_line("shutdown")
    c.assert_closed()
    assert kestrel.wait_exit() == 0
    kestrel.start()
    d = kestrel.memcache()
    assert d.get("sd") == b"persist"


def test_shutdown_wakes_waiters(kestrel):
    w = kestrel.memcache()
    admin = kestrel.memcache()
    w.send_line("get sdw/t=20000")
    wait_for(lambda: admin.qstat("sdw", "waiters") == 1, message="waiter")
    t0 = time.monotonic()
    admin.send_line("shutdown")
    data = w.read_all_until_close(timeout=10)
    assert data in (b"", b"END\r\n"), data
    assert kestrel.wait_exit() == 0
    assert time.monotonic() - t0 < 10


def test_sigterm_exits_cleanly_and_keeps_items(kestrel):
    c = kestrel.memcache()
    for i in range(10):
        c.must_set("term", str(i))
    assert c.get("term") == b"0"
    kestrel.stop()
    kestrel.start()
    c = kestrel.memcache()
    assert c.get_all("term") == [str(i).encode() for i in range(1, 10)]


# ==============================================================================================
# restart / crash

def test_restart_keeps_items_and_open_reads(kestrel):
    a = kestrel.memcache()
    for x in ("a", "b", "c"):
        a.must_set("rs", x)
    assert a.get("rs", "/open") == b"a"
    kestrel.stop()
    kestrel.start()
    c = kestrel.memcache()
    assert c.get_all("rs") == [b"a", b"b", b"c"]


def test_kill9_keeps_items_and_open_reads(kestrel):
    a = kestrel.memcache()
    for x in ("a", "b", "c"):
        a.must_set("k9", x)
    assert a.get("k9") == b"a"
    assert a.get("k9", "/open") == b"b"
    kestrel.kill9()
    kestrel.start()
    c = kestrel.memcache()
    assert c.get_all("k9") == [b"b", b"c"]


# The second case keeps a backlog far beyond maxMemorySize, so the reader works in read-behind
# while the live file rotates under it.
@pytest.mark.parametrize("sections,backlog", [
    (None, 0),
    ({"queue load": {"maxMemorySize": "1KB"}}, 300),
], ids=["in-memory", "read-behind"])
def test_kill9_under_load_keeps_every_acknowledged_item(kestrel_factory, sections, backlog):
    srv = kestrel_factory(sections=sections)
    acked = []            # indices whose set got STORED
    with MemcacheClient(srv.memcache_port) as c:
        for i in range(backlog):
            c.must_set("load", b"item-%07d" % i)
            acked.append(i)
    confirmed = []        # items whose confirmation (close) was acknowledged
    delivered = []        # every item the reader received (the last one may be mid-confirm)
    stop = threading.Event()

    def writer():
        try:
            with MemcacheClient(srv.memcache_port) as c:
                for i in range(backlog, 1000000):
                    if stop.is_set():
                        return
                    if c.set("load", b"item-%07d" % i) != b"STORED\r\n":
                        return
                    acked.append(i)
        except (OSError, AssertionError):
            return

    def reader():
        prev = None
        try:
            with MemcacheClient(srv.memcache_port) as c:
                while not stop.is_set():
                    c.send_line("get load/close/open/t=50")
                    v = c.read_value("load")
                    if v is not None:
                        delivered.append(v)
                    if prev is not None:
                        confirmed.append(prev)
                    prev = v
        except (OSError, AssertionError):
            return

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(acked) >= 2000 and len(confirmed) >= 200, timeout=30,
                 message="load running")
        srv.kill9()
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    srv.start()
    c = srv.memcache()
    left = c.get_all("load", limit=10 ** 7)
    left_idx = [int(x[5:]) for x in left]
    conf_idx = [int(x[5:]) for x in confirmed]
    assert len(set(left_idx)) == len(left_idx), "duplicates in the queue after restart"
    assert left_idx == sorted(left_idx), "queue order broken after restart"
    assert not set(left_idx) & set(conf_idx), "confirmed items came back: %r" % sorted(
        set(left_idx) & set(conf_idx))[:10]
    # the read open (or being confirmed) at the moment of the crash may go either way
    uncertain = {int(x[5:]) for x in delivered} - set(conf_idx)
    assert len(uncertain) <= 1, uncertain
    missing = set(acked) - set(left_idx) - set(conf_idx) - uncertain
    assert not missing, "%d acknowledged items lost, e.g. %r" % (len(missing), sorted(missing)[:10])
    assert max(left_idx + conf_idx) <= (acked[-1] + 1 if acked else 0)


def test_keep_journal_false_loses_items_at_restart(kestrel_factory):
    srv = kestrel_factory(sections={"queue tr": {"keepJournal": "false"}})
    c = srv.memcache()
    c.must_set("tr", "gone")
    c.must_set("persist", "kept")
    assert not srv.journal("tr").exists()
    srv.restart()
    c = srv.memcache()
    assert c.get("tr") is None
    assert c.get("persist") == b"kept"


def test_second_server_on_same_folder_refuses(kestrel_factory):
    srv = kestrel_factory()
    other = kestrel_factory(start=False)
    other.write_config(server={"queuePath": str(srv.spool)})
    other.start(wait=False)
    code = other.wait_exit()
    assert code != 0
    assert_still_serving(srv)


# ==============================================================================================
# journal files written by hand (SPEC 7)

NOW_MS = int(time.time() * 1000)


def blk(data, add_ms=None, exp_ms=0):
    return struct.pack("<iqq", 16 + len(data), NOW_MS if add_ms is None else add_ms, exp_ms) + data


def j_add_legacy(data, exp_s=0):
    return b"\x00" + struct.pack("<ii", len(data) + 4, exp_s) + data


def j_remove():
    return b"\x01"


def j_addx(data, add_ms=None, exp_ms=0):
    return b"\x02" + blk(data, add_ms, exp_ms)


def j_remove_tentative():
    return b"\x03"


def j_save_xid(xid):
    return b"\x04" + struct.pack("<i", xid)


def j_unremove(xid):
    return b"\x05" + struct.pack("<i", xid)


def j_confirm_remove(xid):
    return b"\x06" + struct.pack("<i", xid)


def j_add_xid(xid, data):
    return b"\x07" + struct.pack("<i", xid) + blk(data)


def j_continue(xid, data):
    return b"\x08" + struct.pack("<i", xid) + blk(data)


def j_remove_tentative_xid(xid):
    return b"\x09" + struct.pack("<i", xid)


def start_with_journals(kestrel_factory, files, **kw):
    srv = kestrel_factory(start=False, **kw)
    for name, content in files.items():
        (srv.spool / name).write_bytes(content)
    srv.start()
    return srv


def drain(srv, queue):
    with MemcacheClient(srv.memcache_port) as c:
        return c.get_all(queue)


def test_journal_addx_and_remove(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "jq": j_addx(b"a") + j_addx(b"b") + j_addx(b"c") + j_remove()})
    assert drain(srv, "jq") == [b"b", b"c"]


def test_journal_legacy_add(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "jl": j_add_legacy(b"old1") + j_add_legacy(b"old2", exp_s=int(time.time()) + 3600)
        + j_addx(b"new")})
    assert drain(srv, "jl") == [b"old1", b"old2", b"new"]


def test_journal_legacy_add_expired(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "jle": j_add_legacy(b"dead", exp_s=int(time.time()) - 60) + j_addx(b"alive")})
    assert drain(srv, "jle") == [b"alive"]


def test_journal_addx_expired(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "jxe": j_addx(b"dead", exp_ms=NOW_MS - 60000) + j_addx(b"alive", exp_ms=NOW_MS + 3600000)})
    assert drain(srv, "jxe") == [b"alive"]


def test_journal_remove_tentative_legacy(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "jrt": j_addx(b"a") + j_addx(b"b") + j_remove_tentative()})
    assert drain(srv, "jrt") == [b"a", b"b"]


def test_journal_save_xid(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "jsx": j_addx(b"a") + j_save_xid(41) + j_addx(b"b")})
    assert drain(srv, "jsx") == [b"a", b"b"]


def test_journal_remove_tentative_xid_and_unremove(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "jun": j_addx(b"a") + j_addx(b"b") + j_remove_tentative_xid(1) + j_addx(b"c")
        + j_unremove(1)})
    assert drain(srv, "jun") == [b"a", b"b", b"c"]


def test_journal_confirm_remove(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "jcr": j_addx(b"a") + j_addx(b"b") + j_remove_tentative_xid(5) + j_confirm_remove(5)})
    assert drain(srv, "jcr") == [b"b"]


def test_journal_open_reads_return_to_head_in_xid_order(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "jop": j_addx(b"a") + j_addx(b"b") + j_addx(b"c") + j_addx(b"d")
        + j_remove_tentative_xid(1) + j_remove_tentative_xid(2) + j_remove_tentative_xid(3)
        + j_confirm_remove(2)})
    assert drain(srv, "jop") == [b"a", b"c", b"d"]


def test_journal_add_xid(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "jax": j_addx(b"a") + j_add_xid(7, b"b") + j_addx(b"c")})
    assert drain(srv, "jax") == [b"a", b"b", b"c"]


def test_journal_continue(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "jct": j_addx(b"a") + j_addx(b"b") + j_remove_tentative_xid(3) + j_continue(3, b"a2")})
    assert drain(srv, "jct") == [b"b", b"a2"]


def test_journal_new_xids_do_not_collide_after_replay(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "jxc": j_addx(b"a") + j_addx(b"b") + j_addx(b"c") + j_remove_tentative_xid(100)},
        server={"maxOpenTransactions": 5})
    c = srv.memcache()
    assert c.get("jxc", "/open") == b"a"
    assert c.get("jxc", "/open") == b"b"
    c.send_line("confirm jxc 2")
    assert c.read_line() == b"END\r\n"
    assert c.get_all("jxc") == [b"c"]
    srv.restart()
    assert drain(srv, "jxc") == []


def test_journal_rotated_files_replayed_in_order(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "jr.1700000001000": j_addx(b"a") + j_addx(b"b"),
        "jr.1700000002000": j_remove() + j_addx(b"c"),
        "jr": j_remove() + j_addx(b"d")})
    assert drain(srv, "jr") == [b"c", b"d"]


def test_journal_rotated_files_numeric_timestamp_order(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "jn.900": j_addx(b"first"),
        "jn.1000": j_addx(b"second"),
        "jn": j_addx(b"third")})
    assert drain(srv, "jn") == [b"first", b"second", b"third"]


def test_journal_pack_file_replaces_rotated_files(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "jp.1700000001000": j_addx(b"a") + j_addx(b"b"),
        "jp.1700000002000": j_remove() + j_addx(b"c"),
        "jp.1700000002000.pack": j_addx(b"b") + j_addx(b"c"),
        "jp": j_addx(b"d")})
    files = srv.spool_files()
    assert "jp.1700000001000" not in files
    assert "jp.1700000002000.pack" not in files
    assert drain(srv, "jp") == [b"b", b"c", b"d"]


def test_journal_pack_keeps_later_rotated_files(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "jpk.1700000001000": j_addx(b"a") + j_addx(b"b"),
        "jpk.1700000001000.pack": j_addx(b"b"),
        "jpk.1700000002000": j_remove() + j_addx(b"c"),
        "jpk": j_addx(b"d")})
    assert drain(srv, "jpk") == [b"c", b"d"]


def test_journal_temp_files_deleted_not_replayed(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "jt~~1700000001000": j_addx(b"junk1") + j_addx(b"junk2"),
        "jt": j_addx(b"real")})
    assert "jt~~1700000001000" not in srv.spool_files()
    assert drain(srv, "jt") == [b"real"]


@pytest.mark.parametrize("cut", [1, 3, 5, 12, 20, 24])
def test_journal_torn_tail_truncated(kestrel_factory, cut):
    good = j_addx(b"a") + j_addx(b"b")
    torn = j_addx(b"torn-item")[:cut]
    srv = start_with_journals(kestrel_factory, {"jtt": good + torn})
    err = srv.stderr_text()
    assert "jtt" in err, "no warning naming the journal file"
    assert str(len(good)) in err, "no warning naming the offset %d" % len(good)
    assert srv.journal("jtt").stat().st_size == len(good), "torn tail not truncated"
    c = srv.memcache()
    c.must_set("jtt", "c")
    assert c.get("jtt", "/peek") == b"a"
    srv.restart()
    assert drain(srv, "jtt") == [b"a", b"b", b"c"]


def test_journal_torn_tail_of_xid_record(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "jtx": j_addx(b"a") + j_addx(b"b") + j_confirm_remove(1)[:3]})
    assert drain(srv, "jtx") == [b"a", b"b"]


def test_journal_unknown_opcode_ends_replay(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "juo": j_addx(b"a") + b"\x7f" + j_addx(b"b")})
    c = srv.memcache()
    assert c.get_all("juo") == [b"a"]
    c.must_set("juo", "c")
    srv.restart()
    assert drain(srv, "juo") == [b"c"]


def test_files_that_are_no_journals_left_alone(kestrel_factory):
    """Files of the queue folder that are no journals: never truncated, written or served as
    queues; each logged once at start-up (not on reload); the other queues are served."""
    text = b"hello, this is not a journal\n"
    foreign = {"README.txt": text, ".hidden": text, "notes~": text, "fgarbage": text}
    srv = kestrel_factory(start=False)
    for name, content in foreign.items():
        (srv.spool / name).write_bytes(content)
    (srv.spool / "fgood").write_bytes(j_addx(b"a"))
    before = {n: (srv.spool / n).stat().st_mtime_ns for n in foreign}
    srv.start()
    c = srv.memcache()
    assert c.get("fgood", "/peek") == b"a"
    names = {n for n, _ in c.stats()}
    assert "queue_fgood_items" in names
    assert not any("fgarbage" in n or "README" in n for n in names), names
    assert c.request("reload") == b"Reloaded config.\r\n"
    assert c.set("fgarbage", "x") == b"NOT_STORED\r\n"
    err = srv.stderr_text()
    for name in foreign:
        assert err.count(str(srv.spool / name)) == 1, (name, err)
    srv.stop()
    for name, content in foreign.items():
        path = srv.spool / name
        assert path.read_bytes() == content, name
        assert path.stat().st_mtime_ns == before[name], name
    assert ".kestrel.lock" not in srv.stderr_text()


def test_journal_several_queues_restored(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "qa": j_addx(b"1") + j_addx(b"2"),
        "qb": j_addx(b"3"),
        "qc": b""})
    st = MemcacheClient(srv.memcache_port).stats()
    names = {n for n, _ in st}
    for q in ("qa", "qb", "qc"):
        assert "queue_%s_items" % q in names
    d = dict(st)
    assert d["queue_qa_items"] == "2"
    assert d["queue_qb_items"] == "1"
    assert d["queue_qc_items"] == "0"
    assert d["curr_items"] == "3"
    assert drain(srv, "qa") == [b"1", b"2"]
    assert drain(srv, "qb") == [b"3"]


def test_journal_written_by_server_format(kestrel_factory):
    srv = kestrel_factory(sections={"queue jf": {"syncJournal": "0"}})
    c = srv.memcache()
    t0 = int(time.time() * 1000)
    c.must_set("jf", "hello")
    t1 = int(time.time() * 1000)
    data = wait_for(lambda: len(srv.journal_bytes("jf")) >= 26 and srv.journal_bytes("jf"),
                    message="journal written")
    assert len(data) == 26, data
    op, size, add_ms, exp_ms = struct.unpack("<Biqq", data[:21])
    assert (op, size, exp_ms) == (2, 21, 0)
    assert t0 - 1000 <= add_ms <= t1 + 1000
    assert data[21:] == b"hello"
    # an expiring item records the expiry in ms
    exp_s = int(time.time()) + 3600
    c.must_set("jf", "bye", exptime=exp_s)
    data = wait_for(lambda: len(srv.journal_bytes("jf")) >= 26 + 24 and srv.journal_bytes("jf"),
                    message="second record")
    op, size, add_ms, exp_ms = struct.unpack("<Biqq", data[26:47])
    assert (op, size, exp_ms) == (2, 19, exp_s * 1000)
    assert data[47:] == b"bye"
    # open -> REMOVE_TENTATIVE_XID, abort -> UNREMOVE, open+close -> CONFIRM_REMOVE, get -> REMOVE
    assert c.get("jf", "/open") == b"hello"
    data = wait_for(lambda: len(srv.journal_bytes("jf")) >= 55 and srv.journal_bytes("jf"), message="open")
    op, xid = struct.unpack("<Bi", data[50:55])
    assert op == 9 and xid > 0
    c.send_line("get jf/abort")
    assert c.read_line() == b"END\r\n"
    data = wait_for(lambda: len(srv.journal_bytes("jf")) >= 60 and srv.journal_bytes("jf"), message="abort")
    assert data[55:60] == struct.pack("<Bi", 5, xid)
    assert c.get("jf", "/open") == b"hello"
    c.send_line("get jf/close")
    assert c.read_line() == b"END\r\n"
    data = wait_for(lambda: len(srv.journal_bytes("jf")) >= 70 and srv.journal_bytes("jf"), message="confirm")
    op2, xid2 = struct.unpack("<Bi", data[60:65])
    assert op2 == 9 and xid2 > 0
    assert data[65:70] == struct.pack("<Bi", 6, xid2)
    assert c.get("jf") == b"bye"
    data = wait_for(lambda: len(srv.journal_bytes("jf")) >= 71 and srv.journal_bytes("jf"), message="remove")
    assert data[70:] == b"\x01"


def test_clean_shutdown_with_empty_queue_leaves_empty_journal(kestrel):
    c = kestrel.memcache()
    for i in range(10):
        c.must_set("ej", "x" * 100)
    assert len(c.get_all("ej")) == 10
    kestrel.stop()
    assert kestrel.journal("ej").exists()
    assert kestrel.journal("ej").stat().st_size == 0


# ==============================================================================================
# malformed input

@pytest.mark.parametrize("header", [
    b"set mq x 0 1", b"set mq 0 x 1", b"set mq 0 0 x", b"set mq 0 0 -1",
    b"set mq 0 0 99999999999999999999", b"set mq 0 0", b"set mq", b"set",
    b"set mq 0 0 1x", b"set mq -1x 0 1",
])
def test_set_malformed_numbers(kestrel, header):
    c = kestrel.memcache()
    c.send(header + b"\r\nx\r\n")
    line = c.read_line()
    assert re.fullmatch(rb"CLIENT_ERROR( [^\r\n]*)?\r\n", line), line
    c.close()
    d = kestrel.memcache()
    assert d.get("mq") is None
    assert_still_serving(kestrel)


def test_set_data_block_not_terminated_by_crlf(kestrel):
    c = kestrel.memcache()
    c.send(b"set bad 0 0 3\r\nabcXY\r\n")
    line = c.read_line()
    assert re.fullmatch(rb"CLIENT_ERROR( [^\r\n]*)?\r\n", line), line
    c.close()
    d = kestrel.memcache()
    assert d.get("bad") is None
    assert_still_serving(kestrel)


def test_set_data_block_shorter_than_declared_then_vanish(kestrel):
    c = kestrel.memcache()
    c.send(b"set part 0 0 10\r\nabc")
    c.close()
    d = kestrel.memcache()
    wait_for(lambda: d.stat("curr_connections") == "1", message="connection gone")
    assert d.get("part") is None
    assert_still_serving(kestrel)


@pytest.mark.parametrize("partial", [b"get vq/t=1", b"se", b"set vq 0 0 5", b"monitor vq",
                                     b"set vq 0 0 5\r\nhel"])
def test_client_vanishing_mid_request(kestrel, partial):
    c = kestrel.memcache()
    c.send(partial)
    c.close()
    d = kestrel.memcache()
    wait_for(lambda: d.stat("curr_connections") == "1", message="connection gone")
    assert d.get("vq") is None
    assert_still_serving(kestrel)


def test_client_reset_while_blocked(kestrel):
    c = kestrel.memcache()
    c.send_line("get rst/t=10000")
    admin = kestrel.memcache()
    wait_for(lambda: admin.qstat("rst", "waiters") == 1, message="waiter")
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()   # RST
    wait_for(lambda: admin.qstat("rst", "waiters") == 0, message="waiter dropped")
    admin.must_set("rst", "x")
    assert admin.get("rst") == b"x"


def test_megabyte_line_without_newline(kestrel):
    c = kestrel.memcache(timeout=10)
    try:
        c.send(b"g" * (1 << 20))
    except OSError:
        pass     # the server may close while we are still sending
    try:
        data = c.read_all_until_close(timeout=10)
    except OSError:
        data = b""
    assert data == b"" or re.fullmatch(rb"(CLIENT_ERROR|ERROR)[^\r\n]*\r\n", data), data[:200]
    assert_still_serving(kestrel)


def test_megabyte_get_key(kestrel):
    c = kestrel.memcache(timeout=10)
    try:
        c.send(b"get " + b"k" * (1 << 20) + b"\r\n")
    except OSError:
        pass
    try:
        data = c.read_all_until_close(timeout=10)
    except OSError:
        data = b""
    assert data == b"" or re.fullmatch(rb"(CLIENT_ERROR|ERROR)[^\r\n]*\r\n", data), data[:200]
    assert_still_serving(kestrel)


@pytest.mark.parametrize("line", [b"get q/t=abc", b"get q/t=", b"get q/t=-5x",
                                  b"monitor q abc", b"monitor q", b"confirm q abc",
                                  b"confirm q", b"get", b"delete", b"flush"])
def test_malformed_arguments(kestrel, line):
    c = kestrel.memcache()
    c.send(line + b"\r\n")
    reply = c.read_line()
    assert re.fullmatch(rb"CLIENT_ERROR( [^\r\n]*)?\r\n", reply), reply
    c.close()
    assert_still_serving(kestrel)


def _check_no_stray_files(srv, spool_before):
    assert "etc" not in os.listdir(srv.workdir)
    assert "etc" not in os.listdir(srv.workdir.parent)
    assert "x" not in os.listdir(srv.workdir.parent)
    assert srv.spool_files() == spool_before, "bad name created files in the queue folder"


@pytest.mark.parametrize("name", [b"..", b"../etc", b"a.b", b"a~b", b"~", b"x" * 201,
                                  b"caf\xc3\xa9", b"a\x01b", b"a\x7fb", b"a/b", b"../../x"],
                         ids=["dotdot", "dotdot-etc", "dot", "tilde-mid", "tilde", "too-long",
                              "non-ascii", "control", "del", "slash", "dotdot-x"])
def test_bad_queue_name_set(kestrel, name):
    before = kestrel.spool_files()
    c = kestrel.memcache()
    c.send(b"set " + name + b" 0 0 1\r\nx\r\n")
    line = c.read_line()
    assert re.fullmatch(rb"CLIENT_ERROR( [^\r\n]*)?\r\n", line), line
    c.close()
    _check_no_stray_files(kestrel, before)
    assert_still_serving(kestrel)


@pytest.mark.parametrize("name", [b"..", b"../etc", b"a.b", b"a~b", b"x" * 201, b"caf\xc3\xa9"],
                         ids=["dotdot", "dotdot-etc", "dot", "tilde", "too-long", "non-ascii"])
def test_bad_queue_name_get(kestrel, name):
    before = kestrel.spool_files()
    c = kestrel.memcache()
    c.send(b"get " + name + b"\r\n")
    line = c.read_line()
    assert re.fullmatch(rb"CLIENT_ERROR( [^\r\n]*)?\r\n", line), line
    c.close()
    _check_no_stray_files(kestrel, before)
    assert_still_serving(kestrel)


@pytest.mark.parametrize("cmd", [b"delete", b"flush", b"flush_expired"])
def test_bad_queue_name_admin_commands(kestrel, cmd):
    before = kestrel.spool_files()
    c = kestrel.memcache()
    c.send(cmd + b" ../etc\r\n")
    line = c.read_line()
    assert re.fullmatch(rb"CLIENT_ERROR( [^\r\n]*)?\r\n", line), line
    c.close()
    _check_no_stray_files(kestrel, before)
    assert_still_serving(kestrel)


def test_queue_name_with_space_is_malformed_set(kestrel):
    c = kestrel.memcache()
    c.send(b"set a b 0 0 1\r\nx\r\n")
    line = c.read_line()
    assert re.fullmatch(rb"CLIENT_ERROR( [^\r\n]*)?\r\n", line), line
    c.close()
    assert_still_serving(kestrel)


def test_queue_name_of_200_bytes_is_fine(kestrel):
    name = "n" * 200
    c = kestrel.memcache()
    c.must_set(name, "ok")
    assert c.get(name) == b"ok"
    assert kestrel.journal(name).exists()


# ==============================================================================================
# real clients

def test_pymemcache_set_get(kestrel):
    from pymemcache.client.base import Client
    client = Client((HOST, kestrel.memcache_port), connect_timeout=5, timeout=5)
    try:
        assert client.set("pym", b"hello", noreply=False) is True
        assert client.set("pym", b"world", noreply=False) is True
        assert client.get("pym") == b"hello"
        assert client.get("pym") == b"world"
        assert client.get("pym") is None
    finally:
        client.close()


def test_pylibmc_set_get(kestrel):
    import pylibmc
    client = pylibmc.Client(["%s:%d" % (HOST, kestrel.memcache_port)])
    try:
        assert client.set("plm", b"one")
        assert client.set("plm", b"two")
        assert client.get("plm") == b"one"
        assert client.get("plm") == b"two"
        assert client.get("plm") is None
    finally:
        client.disconnect_all()


def test_memccp_memccat_memcstat(kestrel, tmp_path):
    servers = "--servers=%s:%d" % (HOST, kestrel.memcache_port)
    f = tmp_path / "cpq"
    f.write_bytes(b"file contents\n")
    r = subprocess.run(["memccp", servers, str(f)], capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr
    c = kestrel.memcache()
    assert c.qstat("cpq", "items") == 1
    r = subprocess.run(["memccat", servers, "cpq"], capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"file contents\n\n"        # memccat adds a newline after the value
    assert c.qstat("cpq", "items") == 0
    r = subprocess.run(["memcstat", servers], capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    for name in ("curr_items", "cmd_set", "queue_cpq_items"):
        assert name in out, out


# ==============================================================================================
# more queue settings: timeouts, read-behind, journal lifecycle

def test_open_transaction_timeout_aborts_read(kestrel_factory):
    srv = kestrel_factory(server={"expirationTimerFrequency": "100ms"},
                          sections={"queue ott": {"openTransactionTimeout": "300ms"}})
    a = srv.memcache()
    a.must_set("ott", "held")
    a.must_set("ott", "next")
    assert a.get("ott", "/open") == b"held"
    b = srv.memcache()
    wait_for(lambda: b.qstat("ott", "open_transactions") == 0, timeout=5,
             message="open read timed out")
    assert b.get_all("ott") == [b"held", b"next"]


def test_max_queue_age_deletes_empty_queue(kestrel_factory):
    srv = kestrel_factory(server={"expirationTimerFrequency": "100ms"},
                          sections={"queue mqa": {"maxQueueAge": "200ms"}})
    c = srv.memcache()
    assert c.get("mqa") is None                 # creates the (empty) queue
    c.must_set("keepme", "x")

    def gone():
        return not any(k.startswith("queue_mqa_") for k, _ in c.stats())
    wait_for(gone, timeout=5, interval=0.05, message="empty queue deleted by the sweep")
    assert int(c.stat("queue_expires")) >= 1
    assert c.get("keepme") == b"x"


def test_client_timeout_drops_idle_clients(kestrel_factory):
    srv = kestrel_factory(server={"clientTimeout": "300ms"})
    c = srv.memcache()
    c.must_set("ct", "x")
    t0 = time.monotonic()
    c.assert_closed(timeout=5)
    assert time.monotonic() - t0 >= 0.2
    assert_still_serving(srv)


def test_no_client_timeout_by_default(kestrel):
    c = kestrel.memcache()
    c.must_set("noct", "x")
    assert c.nothing_pending(0.5)              # idle connection stays open
    assert c.get("noct") == b"x"


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_over(pid, seconds):
    """CPU seconds a process uses during the next `seconds` of wall time."""
    before = cpu_seconds(pid)
    time.sleep(seconds)  # the measuring window itself, not a wait for an event
    return cpu_seconds(pid) - before


def test_busy_poll_spins_after_a_request_then_sleeps(kestrel_factory):
    srv = kestrel_factory(server={"busyPollMicros": 1000000})
    c = srv.memcache()
    # Start-up and the readiness probes count as activity: the window has to pass first.
    wait_for(lambda: cpu_over(srv.pid, 0.3) < 0.05, timeout=10, message="idle server sleeps")
    def spins_after_a_request():
        c.must_set("bp", "x")  # a client was served: the loop polls without sleeping for 1 s
        return cpu_over(srv.pid, 0.4) > 0.1
    # Other tests may share the cores: a spinning thread is then not always on one, so a
    # few windows are given the chance to show it.
    wait_for(spins_after_a_request, timeout=8, message="server polls after a request")
    wait_for(lambda: cpu_over(srv.pid, 0.3) < 0.05, timeout=10, message="sleeps again")
    assert c.get("bp") == b"x"


def test_no_busy_poll_by_default(kestrel):
    c = kestrel.memcache()
    c.must_set("nbp", "x")
    wait_for(lambda: cpu_over(kestrel.pid, 0.3) < 0.05, timeout=10, message="server sleeps")
    c.must_set("nbp", "y")
    assert cpu_over(kestrel.pid, 0.4) < 0.1


def test_read_behind_keeps_order(kestrel_factory):
    srv = kestrel_factory(sections={"queue rb": {"maxMemorySize": "1KB"}})
    c = srv.memcache()
    items = [b"%03d" % i + b"x" * 97 for i in range(100)]
    for it in items:
        c.must_set("rb", it)
    assert c.qstat("rb", "items") == 100
    assert c.qstat("rb", "mem_bytes") <= 1024 + 100
    assert c.qstat("rb", "mem_items") < 100
    got = [c.get("rb") for _ in range(50)]
    assert got == items[:50]
    c.must_set("rb", b"tail")
    srv.restart()
    c = srv.memcache()
    assert c.get_all("rb") == items[50:] + [b"tail"]


def test_journal_rotation(kestrel_factory):
    srv = kestrel_factory(sections={"queue rot": {"maxMemorySize": "2KB"}})
    c = srv.memcache()
    items = [b"%03d" % i + b"y" * 197 for i in range(60)]
    for it in items:
        c.must_set("rot", it)
    assert c.qstat("rot", "journal_rotations") >= 1
    rotated = [f for f in srv.spool_files() if re.fullmatch(r"rot\.\d+", f)]
    assert rotated, srv.spool_files()
    assert c.get("rot") == items[0]
    srv.restart()
    c = srv.memcache()
    assert c.get_all("rot") == items[1:]


def test_empty_queue_journal_rewritten_beyond_default_journal_size(kestrel_factory):
    srv = kestrel_factory(sections={"queue djs": {"defaultJournalSize": "1KB"}})
    c = srv.memcache()
    for i in range(30):
        c.must_set("djs", "z" * 100)
    assert len(c.get_all("djs")) == 30
    c.must_set("djs", "after")
    wait_for(lambda: c.qstat("djs", "journal_rewrites") >= 1, message="journal rewrite")
    assert len(srv.journal_bytes("djs")) < 1024
    assert c.qstat("djs", "logsize") < 1024
    srv.restart()
    assert drain(srv, "djs") == [b"after"]


def test_journal_compaction_beyond_max_journal_size(kestrel_factory):
    srv = kestrel_factory(sections={"queue cmp": {"maxJournalSize": "4KB",
                                                  "minJournalCompactDelay": "0s"}})
    c = srv.memcache()
    c.must_set("cmp", "keep")                   # the queue never empties
    for i in range(600):                        # each open+abort journals 10 bytes
        assert c.get("cmp", "/open") == b"keep"
        c.send_line("get cmp/abort")
        assert c.read_line() == b"END\r\n"
    assert c.qstat("cmp", "journal_rewrites") >= 1
    total = sum(len(journal_records((srv.spool / f).read_bytes())) for f in srv.spool_files()
                if f == "cmp" or f.startswith("cmp."))
    assert total <= 4096, total
    assert c.qstat("cmp", "logsize") <= 4096
    srv.restart()
    assert drain(srv, "cmp") == [b"keep"]


def test_age_stat(mc):
    mc.must_set("agq", "a")
    mc.must_set("agq", "b")
    time.sleep(0.3)          # let the head item wait a measurable time
    assert mc.get("agq") == b"a"
    assert mc.qstat("agq", "age") >= 250


def test_canceled_transactions_stat(mc):
    mc.must_set("ctx", "a")
    assert mc.get("ctx", "/open") == b"a"
    mc.send_line("get ctx/abort")
    assert mc.read_line() == b"END\r\n"
    assert mc.qstat("ctx", "canceled_transactions") == 1
    assert mc.qstat("ctx", "items") == 1


def test_flush_keeps_open_reads(kestrel):
    a = kestrel.memcache()
    for x in ("a", "b", "c"):
        a.must_set("fko", x)
    assert a.get("fko", "/open") == b"a"
    a.send_line("flush fko")
    assert a.read_line() == b"END\r\n"
    assert a.qstat("fko", "items") == 0
    a.send_line("get fko/abort")
    assert a.read_line() == b"END\r\n"
    assert a.get_all("fko") == [b"a"]


def test_blocking_peek_woken_by_set(kestrel):
    w, c = kestrel.memcache(), kestrel.memcache()
    w.send_line("get bp/peek/t=5000")
    wait_for(lambda: c.qstat("bp", "waiters") == 1, message="peek waiter")
    c.must_set("bp", "seen")
    assert w.read_value("bp") == b"seen"
    assert c.get("bp") == b"seen"


def test_queue_names_are_case_sensitive(mc):
    mc.must_set("Case", "upper")
    assert mc.get("case") is None
    assert mc.get("Case") == b"upper"


def test_many_pipelined_sets(mc):
    n = 2000
    mc.send(b"".join(b"set pipe 0 0 6\r\nv%05d\r\n" % i for i in range(n)))
    assert mc.read_exact(8 * n, timeout=20) == b"STORED\r\n" * n
    assert mc.qstat("pipe", "items") == n
    mc.send(b"get pipe\r\n" * n)
    expected = b"".join(b"VALUE pipe 0 6\r\nv%05d\r\nEND\r\n" % i for i in range(n))
    assert mc.read_exact(len(expected), timeout=20) == expected


def test_many_concurrent_clients(kestrel):
    n = 50
    errors = []

    def worker(k):
        try:
            with MemcacheClient(kestrel.memcache_port) as c:
                for i in range(20):
                    if c.set("conc", b"%02d-%02d" % (k, i)) != b"STORED\r\n":
                        errors.append("set failed")
        except Exception as e:   # collected and reported below
            errors.append(repr(e))
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors[:5]
    c = kestrel.memcache()
    got = c.get_all("conc")
    assert len(got) == n * 20
    for k in range(n):                          # each writer's items stay in its order
        mine = [g for g in got if g.startswith(b"%02d-" % k)]
        assert mine == [b"%02d-%02d" % (k, i) for i in range(20)]


def test_journal_open_read_across_rotated_and_live_files(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "jrx.1700000001000": j_addx(b"a") + j_addx(b"b") + j_remove_tentative_xid(1)
        + j_remove_tentative_xid(2),
        "jrx": j_confirm_remove(1) + j_addx(b"c")})
    assert drain(srv, "jrx") == [b"b", b"c"]


def test_journal_replay_then_unremove_written(kestrel_factory):
    srv = start_with_journals(kestrel_factory, {
        "jur": j_addx(b"a") + j_addx(b"b") + j_remove_tentative_xid(9)})
    c = srv.memcache()
    assert c.get("jur", "/peek") == b"a"
    original = j_addx(b"a") + j_addx(b"b") + j_remove_tentative_xid(9)
    data = srv.journal_bytes("jur")
    assert data[:len(original)] == original
    assert data[len(original):] == j_unremove(9), "replay must journal an UNREMOVE per open read"
    srv.restart()            # the replayed open read must not be replayed as open twice
    assert drain(srv, "jur") == [b"a", b"b"]


# ==============================================================================================
# server options (SPEC 8)

def test_command_line_port_overrides_config(kestrel_factory):
    srv = kestrel_factory(start=False)
    config_port = srv.memcache_port
    from conftest import free_port
    srv.memcache_port = free_port()
    srv.extra_args = ["--memcache-port", str(srv.memcache_port)]
    srv.start()
    assert_still_serving(srv)
    with pytest.raises(OSError):
        socket.create_connection((HOST, config_port), timeout=1).close()


def test_pidfile(kestrel_factory, tmp_path):
    pidfile = tmp_path / "k.pid"
    srv = kestrel_factory(extra_args=["--pidfile", str(pidfile)])
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), message="pid file")
    assert int(pidfile.read_text().strip()) == srv.pid


@pytest.mark.parametrize("group,key,value", [
    ("queue badq", "maxItemz", "3"),
    ("queue badq", "maxItems", "lots"),
    ("server", "noSuchKey", "1"),
    ("default", "maxSize", "12 parsecs"),
])
def test_bad_config_stops_startup_naming_the_problem(kestrel_factory, group, key, value):
    srv = kestrel_factory(start=False)
    if group == "server":
        srv.write_config(server={key: value})
    else:
        srv.write_config(sections={group: {key: value}})
    srv.start(wait=False)
    code = srv.wait_exit()
    assert code != 0
    err = srv.stderr_text() + srv.stdout_path.read_text(errors="replace")
    assert str(srv.config_path.name) in err, err
    assert key in err, err
    assert group.split()[0] in err, err


def test_sighup_reopens_log_file(kestrel_factory, tmp_path):
    log = tmp_path / "kestrel.log"
    srv = kestrel_factory(server={"logFile": str(log)})
    wait_for(lambda: log.exists() and log.stat().st_size > 0, message="log written")
    rotated = tmp_path / "kestrel.log.1"
    log.rename(rotated)
    srv.proc.send_signal(__import__("signal").SIGHUP)
    wait_for(lambda: log.exists(), message="log file reopened")
    c = srv.memcache()
    c.must_set("hup", "x")
    assert srv.running()
    srv.stop()
    assert log.stat().st_size > 0          # the shutdown messages went to the new file


def test_alias_stats(kestrel_factory):
    srv = kestrel_factory(sections={"alias als": {"destinationQueues": "ad1;ad2"}})
    c = srv.memcache()
    c.must_set("als", "x")
    c.must_set("als", "yy")
    d = dict(c.stats())
    assert d["queue_als_put_items"] == "2"
    assert d["queue_als_put_bytes"] == "3"
    assert "ad1" in d["queue_als_children"] and "ad2" in d["queue_als_children"]
    assert d["queue_ad1_items"] == "2"


def test_fanout_parent_dump_stats_lists_children(mc):
    assert mc.get("dsp+k1") is None
    mc.must_set("dsp", "x")
    blocks = parse_blocks(mc.block("dump_stats dsp"))
    entries = blocks["dsp"]
    assert [k for k, _ in entries] == QUEUE_STATS + ["children"]
    assert "k1" in dict(entries)["children"]


def test_status_bad_value(kestrel_factory, tmp_path):
    srv = kestrel_factory(server={"statusFile": str(tmp_path / "status")})
    c = srv.memcache()
    c.send_line("status SIDEWAYS")
    assert_client_error_and_closed(c)
    d = srv.memcache()
    d.send_line("status")
    assert d.read_line() == b"UP\r\n"


def test_set_status_when_not_configured(kestrel_factory):
    mc = kestrel_factory(server={"statusFile": "none"}).memcache()
    mc.send_line("status READONLY")
    assert_error_and_closed(mc)


def test_flush_expired_with_expire_to_queue_moves_items(kestrel_factory):
    srv = kestrel_factory(sections={"queue fem": {"maxAge": "200ms", "expireToQueue": "femdst"}})
    c = srv.memcache()
    c.must_set("fem", "1")
    c.must_set("fem", "2")
    total = [0]

    def moved():
        c.send_line("flush_expired fem")
        total[0] += int(c.read_line())
        return total[0] >= 2
    wait_for(moved, timeout=5, interval=0.05, message="items expired")
    assert total[0] == 2
    assert c.get_all("femdst") == [b"1", b"2"]


def test_fanout_child_restored_at_restart_stays_attached(kestrel):
    c = kestrel.memcache()
    assert c.get("rsp+kid") is None
    c.must_set("rsp", "1")
    kestrel.restart()
    c = kestrel.memcache()
    c.must_set("rsp", "2")
    assert c.get_all("rsp+kid") == [b"1", b"2"]
    assert c.get_all("rsp") == [b"1", b"2"]


def test_set_expiry_boundary_relative_vs_absolute(mc):
    mc.must_set("bnd", "relative", exptime=999999)     # ~11.6 days from now
    mc.set("bnd", b"absolute-1970", exptime=1000000)    # absolute: long expired
    mc.must_set("bnd", "plain")
    assert mc.get_all("bnd") == [b"relative", b"plain"]


def test_open_beyond_limit_on_empty_queue(kestrel):
    a = kestrel.memcache()
    a.must_set("mote", "only")
    assert a.get("mote", "/open") == b"only"
    a.send_line("get mote/open")
    assert_error_and_closed(a)
    b = kestrel.memcache()
    wait_for(lambda: b.get("mote", "/peek") == b"only", message="read aborted")

"""Text protocol (SPEC 3), byte for byte, and its interplay with the memcache protocol."""
import os
import re
import time

import pytest

from conftest import TextClient, wait_for


def assert_still_serving(srv, queue="thealth"):
    with TextClient(srv.text_port) as t:
        assert t.put(queue, ["ok"]) == b"+1\n"
        assert t.request("get %s" % queue) == b":ok\n"
        assert t.request("get %s" % queue) == b"*\n"


# ==============================================================================================
# put / get

def test_put_get_byte_exact(txt):
    txt.send(b"put tq:\nhello\n\n")
    assert txt.read_line() == b"+1\n"
    txt.send(b"get tq\n")
    assert txt.read_line() == b":hello\n"
    txt.send(b"get tq\n")
    assert txt.read_line() == b"*\n"


def test_pipelined_replies_keep_their_order(txt):
    """Counts and items (short ones gathered in a small buffer, 20 KB ones sent by reference)
    and errors (through the output buffer) come back in the order of the requests."""
    request, expected = b"", b""
    for i, size in enumerate([5, 1500, 20000, 900, 16384, 7]):
        item = (b"%d-" % i + os.urandom(size).hex().encode())[:size]
        request += b"put tp:\n%s\n\nget tp\nget a/b\nget tp\n" % item
        expected += b"+1\n:%s\n" % item
        expected += b"-queue name must not contain '/', '~' or '.'\n*\n"
    request += b"get tp\n" * 200
    expected += b"*\n" * 200
    txt.send(request)
    assert txt.read_exact(len(expected)) == expected


def test_put_multiple_items(txt):
    assert txt.put("multi", ["one", "two", "three"]) == b"+3\n"
    assert txt.request("get multi") == b":one\n"
    assert txt.request("get multi") == b":two\n"
    assert txt.request("get multi") == b":three\n"
    assert txt.request("get multi") == b"*\n"


def test_put_with_crlf_lines(txt):
    txt.send(b"put crlf:\r\nalpha\r\nbeta\r\n\r\n")
    assert txt.read_line() == b"+2\n"
    assert txt.request("get crlf") == b":alpha\n"
    assert txt.request("get crlf") == b":beta\n"


def test_put_zero_items(txt):
    txt.send(b"put none:\n\n")
    assert txt.read_line() == b"+0\n"
    assert txt.request("get none") == b"*\n"


def test_put_with_expiry(txt):
    assert txt.put("texp", ["short"], expiry=300) == b"+1\n"
    assert txt.put("texp", ["long"]) == b"+1\n"
    assert txt.request("peek texp") == b":short\n"
    wait_for(lambda: txt.request("peek texp") == b":long\n", timeout=5, message="expiry")


def test_put_1024_items(txt):
    items = ["i%04d" % i for i in range(1024)]
    assert txt.put("many", items) == b"+1024\n"
    for i in range(1024):
        assert txt.request("get many") == (":i%04d\n" % i).encode()
    assert txt.request("get many") == b"*\n"


def test_put_more_than_1024_items_is_limited(kestrel):
    t = kestrel.text()
    body = b"".join(b"x%04d\n" % i for i in range(1100))
    t.send(b"put over:\n" + body + b"\n")
    first = t.read_line()
    assert first.startswith(b"-") or first == b"+1024\n", first
    m = kestrel.memcache()
    items = m.qstat("over", "items")
    assert items is None or items <= 1024
    assert_still_serving(kestrel)


def test_get_confirms_previous_read(kestrel):
    t = kestrel.text()
    assert t.put("conf", ["a", "b", "c"]) == b"+3\n"
    assert t.request("get conf") == b":a\n"
    assert t.request("get conf") == b":b\n"     # confirms a, opens b
    m = kestrel.memcache()
    assert m.qstat("conf", "open_transactions") == 1
    t.close()
    # b was open and comes back; a was confirmed
    wait_for(lambda: m.qstat("conf", "open_transactions") == 0, message="abort on disconnect")
    t2 = kestrel.text()
    assert t2.request("get conf") == b":b\n"
    assert t2.request("get conf") == b":c\n"
    assert t2.request("get conf") == b"*\n"


def test_get_empty_confirms_previous_read(kestrel):
    t = kestrel.text()
    assert t.put("conf2", ["only"]) == b"+1\n"
    assert t.request("get conf2") == b":only\n"
    assert t.request("get conf2") == b"*\n"     # confirms "only"
    t.close()
    m = kestrel.memcache()
    wait_for(lambda: m.stat("curr_connections") == "1", message="text client gone")
    assert m.get("conf2") is None


def test_get_with_timeout_expires(txt):
    t0 = time.monotonic()
    assert txt.request("get tw 300") == b"*\n"
    assert 0.25 <= time.monotonic() - t0 < 3


def test_get_with_timeout_woken_by_put(kestrel):
    t = kestrel.text()
    w = kestrel.text()
    m = kestrel.memcache()
    t.send_line("get twake 5000")
    wait_for(lambda: m.qstat("twake", "waiters") == 1, message="waiter")
    assert w.put("twake", ["ring"]) == b"+1\n"
    assert t.read_line() == b":ring\n"


def test_peek(txt):
    assert txt.put("tpk", ["a", "b"]) == b"+2\n"
    assert txt.request("peek tpk") == b":a\n"
    assert txt.request("peek tpk") == b":a\n"
    assert txt.request("get tpk") == b":a\n"
    assert txt.request("peek tpk") == b":b\n"
    assert txt.request("peek empty") == b"*\n"


def test_peek_with_timeout(kestrel):
    t = kestrel.text()
    t0 = time.monotonic()
    assert t.request("peek tpt 200") == b"*\n"
    assert time.monotonic() - t0 >= 0.15
    w = kestrel.text()
    m = kestrel.memcache()
    t.send_line("peek tpt 5000")
    wait_for(lambda: m.qstat("tpt", "waiters") == 1, message="waiter")
    assert w.put("tpt", ["seen"]) == b"+1\n"
    assert t.read_line() == b":seen\n"
    assert m.get("tpt") == b"seen"            # peek did not consume it


# ==============================================================================================
# monitor / confirm

def test_monitor_then_confirm(kestrel_factory):
    srv = kestrel_factory(server={"maxOpenTransactions": 10})
    t = srv.text()
    assert t.put("tmon", ["a", "b"]) == b"+2\n"
    t0 = time.monotonic()
    t.send_line("monitor tmon 500")
    assert t.read_exact(len(b":a\n:b\n*\n"), timeout=5) == b":a\n:b\n*\n"
    assert time.monotonic() - t0 >= 0.4
    assert t.request("confirm tmon 3") == b"-Not that many transactions open.\n"
    assert t.request("confirm tmon 0") == b"-Not that many transactions open.\n"
    assert t.request("confirm tmon 2") == b"+2\n"
    assert t.request("confirm tmon 1") == b"-Not that many transactions open.\n"
    t.close()
    m = srv.memcache()
    wait_for(lambda: m.stat("curr_connections") == "1", message="text client gone")
    assert m.get("tmon") is None


def test_numbers_below_zero_as_kestrel(kestrel_factory):
    """Kestrel read numbers with toInt, sign included: a put expiry below zero has passed
    (the items expire at once), a get or peek timeout below zero does not wait, a monitor
    timeout below zero ends at once, and a confirm count below zero confirms nothing."""
    srv = kestrel_factory(server={"maxOpenTransactions": 10})
    t = srv.text()
    assert t.put("tneg", ["gone"], expiry=-1000) == b"+1\n"
    assert t.put("tneg", ["a", "b"]) == b"+2\n"
    assert t.request("monitor tneg -1") == b"*\n"
    assert t.request("peek tneg -1") == b":a\n"
    assert t.request("get tneg -1") == b":a\n"
    assert t.request("confirm tneg -1") == b"-Not that many transactions open.\n"
    assert t.request("confirm tneg 1") == b"+1\n"
    assert t.request("get tneg -1") == b":b\n"
    assert t.request("get tneg -1") == b"*\n"


def test_monitor_items_arriving_later(kestrel_factory):
    srv = kestrel_factory(server={"maxOpenTransactions": 10})
    t = srv.text()
    m = srv.memcache()
    t.send_line("monitor tml 2000")
    wait_for(lambda: m.qstat("tml", "waiters") == 1, message="monitor waiting")
    m.must_set("tml", "late")
    assert t.read_line() == b":late\n"
    assert t.read_line(timeout=5) == b"*\n"


def test_monitor_unconfirmed_reads_return_on_disconnect(kestrel_factory):
    srv = kestrel_factory(server={"maxOpenTransactions": 10})
    t = srv.text()
    assert t.put("tmd", ["a", "b"]) == b"+2\n"
    t.send_line("monitor tmd 100")
    assert t.read_exact(len(b":a\n:b\n*\n")) == b":a\n:b\n*\n"
    t.close()
    m = srv.memcache()
    wait_for(lambda: m.qstat("tmd", "open_transactions") == 0, message="reads aborted")
    # aborted in opening order, each to the head (Kestrel's order): b ends up before a
    assert m.get_all("tmd") == [b"b", b"a"]


def test_confirm_nothing_open(txt):
    assert txt.request("confirm nada 1") == b"-Not that many transactions open.\n"


def test_confirm_after_get(kestrel):
    t = kestrel.text()
    assert t.put("tcg", ["x", "y"]) == b"+2\n"
    assert t.request("get tcg") == b":x\n"
    assert t.request("confirm tcg 1") == b"+1\n"
    t.close()
    m = kestrel.memcache()
    wait_for(lambda: m.stat("curr_connections") == "1", message="text client gone")
    assert m.get_all("tcg") == [b"y"]


# ==============================================================================================
# flush / delete / status / version / quit / shutdown

def test_flush(txt):
    assert txt.put("tfl", ["a", "b"]) == b"+2\n"
    assert txt.request("flush tfl") == b"+0\n"
    assert txt.request("get tfl") == b"*\n"


def test_delete(kestrel):
    t = kestrel.text()
    assert t.put("tdel", ["a"]) == b"+1\n"
    wait_for(lambda: kestrel.journal("tdel").exists(), message="journal")
    assert t.request("delete tdel") == b"+0\n"
    assert not kestrel.journal("tdel").exists()
    assert t.request("get tdel") == b"*\n"


def test_status_configured(kestrel_factory, tmp_path):
    srv = kestrel_factory(server={"statusFile": str(tmp_path / "status"),
                                  "statusChangeGracePeriod": "0s"})
    t = srv.text()
    assert t.request("status") == b":UP\n"
    assert t.put("tst", ["before"]) == b"+1\n"
    assert t.request("status readonly") == b"+0\n"
    assert t.request("status") == b":READONLY\n"
    t.send(b"put tst:\nrefused\n\n")
    line = t.read_line()
    assert line.startswith(b"-") and line.endswith(b"\n") and len(line) > 2, line
    t2 = srv.text()
    assert t2.request("peek tst") == b":before\n"
    assert t2.request("status UP") == b"+0\n"
    assert t2.put("tst", ["after"]) == b"+1\n"
    m = srv.memcache()
    assert m.get_all("tst") == [b"before", b"after"]


def test_status_quiescent_refuses_reads(kestrel_factory, tmp_path):
    srv = kestrel_factory(server={"statusFile": str(tmp_path / "status"),
                                  "statusChangeGracePeriod": "0s"})
    t = srv.text()
    assert t.put("tq2", ["x"]) == b"+1\n"
    assert t.request("status QUIESCENT") == b"+0\n"
    assert t.request("status") == b":QUIESCENT\n"
    t2 = srv.text()
    line = t2.request("get tq2")
    assert line.startswith(b"-") and len(line) > 2, line


@pytest.mark.parametrize("command", ["get tq3", "peek tq3", "monitor tq3 100"])
def test_refused_read_still_confirms_earlier_reads(kestrel_factory, tmp_path, command):
    """As in Kestrel, get, peek and monitor confirm the connection's earlier reads on the
    queue before the read itself is refused by the server status."""
    srv = kestrel_factory(server={"statusFile": str(tmp_path / "status"),
                                  "statusChangeGracePeriod": "0s"})
    t = srv.text()
    assert t.put("tq3", ["a", "b"]) == b"+2\n"
    assert t.request("get tq3") == b":a\n"
    assert srv.text().request("status QUIESCENT") == b"+0\n"
    line = t.request(command)
    assert line == b"-Server not available for operation %s\n" % (
        b"monitorUntil" if command.startswith("monitor") else b"getItem"), line
    m = srv.memcache()
    assert m.qstat("tq3", "open_transactions") == 0    # a was confirmed, not left open
    t.close()
    admin = srv.text()
    assert admin.request("status UP") == b"+0\n"
    assert admin.request("peek tq3") == b":b\n"


def test_version(kestrel):
    t = kestrel.text()
    line = t.request("version")
    m = re.fullmatch(rb":(\d+)\.(\d+)\.(\d+)\n", line)
    assert m, line
    assert int(m.group(1)) >= 1
    mc = kestrel.memcache()
    mc.send_line("version")
    assert mc.read_line() == b"VERSION " + line[1:-1] + b"\r\n"


def test_quit(kestrel):
    t = kestrel.text()
    t.send_line("quit")
    t.assert_closed()
    assert_still_serving(kestrel)


def test_shutdown(kestrel):
    t = kestrel.text()
    assert t.put("tsd", ["kept"]) == b"+1\n"
    assert t.request("shutdown") == b"+0\n"
    assert kestrel.wait_exit() == 0
    kestrel.start()
    t = kestrel.text()
    assert t.request("get tsd") == b":kept\n"


# ==============================================================================================
# errors

@pytest.mark.parametrize("cmd", ["get", "peek", "flush", "delete"])
def test_missing_queue_name(txt, cmd):
    assert txt.request(cmd) == b"-Queue name required.\n"
    assert txt.request("version").startswith(b":")     # connection still usable


def test_put_missing_queue_name(txt):
    txt.send(b"put:\nx\n\n")
    line = txt.read_line()
    assert line == b"-Queue name required.\n", line


@pytest.mark.parametrize("line", ["monitor q", "monitor", "confirm q", "confirm"])
def test_missing_arguments(txt, line):
    reply = txt.request(line)
    assert reply.startswith(b"-") and reply.endswith(b"\n") and len(reply) > 2, reply
    assert txt.request("version").startswith(b":")


def test_unknown_command(txt):
    assert txt.request("frob x") == b"-Unknown command: frob\n"
    assert txt.request("version").startswith(b":")


@pytest.mark.parametrize("line", ["get q abc", "peek q 1x", "put q abc:"])
def test_malformed_numbers(kestrel, line):
    t = kestrel.text()
    if line.endswith(":"):
        t.send(line.encode() + b"\nitem\n\n")
        reply = t.read_line()
    else:
        reply = t.request(line)
    assert reply.startswith(b"-") and reply.endswith(b"\n") and len(reply) > 2, reply
    m = kestrel.memcache()
    assert m.get("q") is None
    assert_still_serving(kestrel)


@pytest.mark.parametrize("name", ["..", "../etc", "a.b", "a~b", "a/b", "x" * 201],
                         ids=["dotdot", "dotdot-etc", "dot", "tilde", "slash", "too-long"])
def test_bad_queue_names(kestrel, name):
    before = kestrel.spool_files()
    t = kestrel.text()
    t.send(b"put " + name.encode() + b":\nx\n\n")
    reply = t.read_line()
    assert reply.startswith(b"-") and len(reply) > 2, reply
    t2 = kestrel.text()
    reply = t2.request("get " + name)
    assert reply.startswith(b"-") and len(reply) > 2, reply
    assert kestrel.spool_files() == before, "bad name created files in the queue folder"
    assert "etc" not in [p.name for p in kestrel.workdir.parent.iterdir()]
    assert_still_serving(kestrel)


@pytest.mark.parametrize("name", [b"a\x00/../../x", b"a\x00", b"\x00a", b"thealth\x00x"],
                         ids=["traversal", "trailing", "leading", "existing"])
def test_queue_name_with_nul_byte_is_refused(kestrel, name):
    """A name is checked on all its bytes: a NUL inside is refused by every command that takes
    a name, the connection stays, and nothing is stored in any queue."""
    t = kestrel.text()
    assert t.put("thealth", ["kept"]) == b"+1\n"
    before = kestrel.spool_files()
    for request in (b"put %s:\nx\n\n", b"put %s 1000:\nx\n\n", b"get %s\n", b"get %s 10\n",
                    b"peek %s\n", b"monitor %s 10\n", b"confirm %s 1\n", b"flush %s\n",
                    b"delete %s\n"):
        t.send(request % name)
        assert t.read_line() == b"-queue name contains a NUL byte\n", request
    assert kestrel.spool_files() == before
    assert not (kestrel.workdir.parent / "x").exists()
    mc = kestrel.memcache()
    assert [line for line in mc.block("dump_stats") if line.startswith("queue ")] == [
        "queue 'thealth' {"]
    assert mc.qstat("thealth", "items") == 1
    assert t.request("get thealth") == b":kept\n"


def test_client_vanishing_mid_put(kestrel):
    t = kestrel.text()
    t.send(b"put tvan:\nitem1\nitem2\n")
    t.close()
    m = kestrel.memcache()
    wait_for(lambda: m.stat("curr_connections") == "1", message="text client gone")
    assert m.get("tvan") is None
    assert_still_serving(kestrel)


def test_long_line_without_newline(kestrel):
    t = kestrel.text(timeout=10)
    try:
        t.send(b"p" * (1 << 20))
    except OSError:
        pass
    try:
        data = t.read_all_until_close(timeout=10)
    except OSError:
        data = b""
    assert data == b"" or re.fullmatch(rb"-[^\n]*\n", data), data[:200]
    assert_still_serving(kestrel)


# ==============================================================================================
# cross-protocol

def test_text_put_memcache_get(kestrel):
    t = kestrel.text()
    m = kestrel.memcache()
    assert t.put("cross", ["from-text"]) == b"+1\n"
    assert m.get("cross") == b"from-text"
    m.must_set("cross", "from-memcache")
    assert t.request("get cross") == b":from-memcache\n"


def test_text_open_read_invisible_to_memcache(kestrel):
    t = kestrel.text()
    m = kestrel.memcache()
    m.must_set("cross2", "a")
    m.must_set("cross2", "b")
    assert t.request("get cross2") == b":a\n"
    assert m.get("cross2") == b"b"
    assert m.get("cross2") is None
    t.close()
    wait_for(lambda: m.get("cross2", "/peek") == b"a", message="text open read aborted")


def test_text_stats_counted(kestrel):
    t = kestrel.text()
    m = kestrel.memcache()
    assert t.put("tcount", ["a", "b"]) == b"+2\n"
    d = dict(m.stats())
    assert d["cmd_set"] == "2"
    assert d["queue_tcount_items"] == "2"
    assert d["total_items"] == "2"

"""Thrift front-end (SPEC 4): every method over framed/binary Thrift with code generated from
thrift/kestrel.thrift at test time, blocking gets, open reads, cross-protocol use, and hostile
input (each followed by a check that other clients are still served)."""
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import server_side_socket, wait_for
from thrift_support import (RawThrift, ThriftClient, encode_call, frame, generated, idl_path,
                            message_header)

thrift_mod = pytest.importorskip("thrift")
from thrift.Thrift import TApplicationException  # noqa: E402


@pytest.fixture
def srv(kestrel_factory):
    return kestrel_factory(thrift=True, sections={"queue small": {"maxItems": 2}},
                           server={"maxOpenTransactions": 2})


@pytest.fixture
def tc(srv):
    c = ThriftClient(srv.thrift_port)
    yield c
    c.close()


def still_serving(srv):
    """Another client gets an answer: the server survived whatever came before."""
    with ThriftClient(srv.thrift_port) as c:
        assert c.get_version() == srv_version(srv)
        assert c.put("alive", [b"x"], 0) == 1
        assert [i.data for i in c.get("alive", 1, 0, 0)] == [b"x"]


def test_replies_are_sent_without_nagle_delay(srv, tc):
    """TCP_NODELAY on the server's socket: with Nagle, a reply sent while the client has not
    yet acknowledged the one before waits for its delayed ACK (about 40 ms)."""
    assert tc.get_version()
    with server_side_socket(srv.pid, tc.socket.handle) as server_end:
        assert server_end.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def srv_version(srv):
    mc = srv.memcache()
    line = mc.request("version").decode().strip()
    assert line.startswith("VERSION ")
    return line.split(" ", 1)[1]


# ---- methods

def test_get_version_matches_memcache(srv, tc):
    assert tc.get_version() == srv_version(srv)


def test_put_then_get_in_order_binary_safe(tc):
    items = [b"one", b"", b"\x00\xff\r\n binary", b"x" * 100000]
    assert tc.put("q", items, 0) == 4
    got = tc.get("q", 10, 0, 0)
    assert [i.data for i in got] == items
    assert all(i.id == 0 for i in got)
    assert tc.get("q", 10, 0, 0) == []


def test_get_max_items(tc):
    tc.put("q", [b"%d" % i for i in range(5)], 0)
    assert [i.data for i in tc.get("q", 2, 0, 0)] == [b"0", b"1"]
    assert [i.data for i in tc.get("q", 0, 0, 0)] == []
    assert [i.data for i in tc.get("q", 10, 0, 0)] == [b"2", b"3", b"4"]


def test_get_counts_below_zero_as_kestrel(tc):
    """Kestrel's get loop: max_items below 0 sets no limit, a timeout below 0 has passed
    already (no items, none taken)."""
    tc.put("neg", [b"%d" % i for i in range(5)], 0)
    assert tc.get("neg", 2, -1, 0) == []
    assert tc.peek("neg").items == 5
    assert [i.data for i in tc.get("neg", -1, 0, 0)] == [b"0", b"1", b"2", b"3", b"4"]
    tc.put("neg", [b"a", b"b", b"c"], 0)
    got = tc.get("neg", -5, 0, 60000)              # open reads: the open-read limit (2) ends it
    assert [i.data for i in got] == [b"a", b"b"]
    assert tc.confirm("neg", {i.id for i in got}) == 2


def test_put_stops_at_first_refused_item(tc):
    assert tc.put("small", [b"a", b"b", b"c", b"d"], 0) == 2
    assert [i.data for i in tc.get("small", 10, 0, 0)] == [b"a", b"b"]


def test_put_with_expiration(tc):
    tc.put("exp", [b"short"], 50)
    tc.put("exp", [b"long"], 0)
    # peek drops expired items that reached the head
    wait_for(lambda: tc.peek("exp").head_item == b"long", timeout=5, message="expired item gone")
    assert [i.data for i in tc.get("exp", 5, 0, 0)] == [b"long"]


def test_peek_head_item_set_only_when_present(tc):
    info = tc.peek("pq")
    assert info.head_item is None
    assert info.items == 0 and info.open_transactions == 0
    tc.put("pq", [b"head", b"tail"], 0)
    info = tc.peek("pq")
    assert info.head_item == b"head"
    assert info.items == 2 and info.bytes == 8
    assert info.journal_bytes > 0
    assert [i.data for i in tc.get("pq", 1, 0, 0)] == [b"head"]  # peek did not remove


def test_flush_queue_and_flush_all(tc):
    tc.put("f1", [b"a", b"b"], 0)
    tc.put("f2", [b"c"], 0)
    tc.flush_queue("f1")
    assert tc.peek("f1").items == 0
    assert tc.peek("f2").items == 1
    tc.flush_all_queues()
    assert tc.peek("f2").items == 0


def test_delete_queue(srv, tc):
    tc.put("gone", [b"a"], 0)
    assert "gone" in srv.spool_files()
    tc.delete_queue("gone")
    wait_for(lambda: "gone" not in srv.spool_files(), message="journal deleted")
    assert tc.get("gone", 1, 0, 0) == []


def test_status_not_configured(kestrel_factory):
    srv = kestrel_factory(thrift=True, server={"statusFile": "none"})
    tc = ThriftClient(srv.thrift_port)
    _, ttypes = generated()
    assert tc.current_status() == ttypes.Status.NOT_CONFIGURED
    with pytest.raises(TApplicationException):
        tc.set_status(ttypes.Status.READ_ONLY)
    assert tc.get_version()  # the connection is still usable
    tc.close()


def test_status_changes_refuse_writes_then_reads(kestrel_factory, tmp_path):
    _, ttypes = generated()
    srv = kestrel_factory(thrift=True, server={"statusFile": str(tmp_path / "status")})
    with ThriftClient(srv.thrift_port) as c:
        assert c.current_status() == ttypes.Status.UP
        c.put("s", [b"before"], 0)
        c.set_status(ttypes.Status.READ_ONLY)
        assert c.current_status() == ttypes.Status.READ_ONLY
        with pytest.raises(TApplicationException):
            c.put("s", [b"refused"], 0)
        assert c.peek("s").head_item == b"before"
        c.set_status(ttypes.Status.QUIESCENT)
        with pytest.raises(TApplicationException):
            c.get("s", 1, 0, 0)
        c.set_status(ttypes.Status.UP)
        assert [i.data for i in c.get("s", 5, 0, 0)] == [b"before"]


def limited(kestrel_factory, **limit):
    """A server with a connection limit and a memcache client that watches `curr_connections`:
    the watcher is always connected, so it is counted, and never closes during the test, so no
    close still on its way skews the count when the next client is accepted.

    Every earlier client must have been counted in and out first: the start-up probes of the
    ports (see wait_start_probes_counted)."""
    srv = kestrel_factory(thrift=True, text=False, server=limit)
    watcher = srv.memcache()
    srv.wait_start_probes_counted(watcher)
    return srv, watcher


def connections(watcher):
    return int(watcher.stat("curr_connections"))


def test_connection_limit_refuses_writes_of_later_connections(kestrel_factory):
    srv, watcher = limited(kestrel_factory, connectionLimitRefuseWrites=2)
    with ThriftClient(srv.thrift_port) as first:
        assert first.put("cl", [b"a"], 0) == 1  # the second client: writes allowed
        with ThriftClient(srv.thrift_port) as second:
            for write in (lambda: second.put("cl", [b"b"], 0), lambda: second.flush_queue("cl"),
                          lambda: second.flush_all_queues(), lambda: second.delete_queue("cl")):
                with pytest.raises(TApplicationException) as exc:
                    write()
                assert "Too many connections: writes are refused." in str(exc.value.message)
            # reads are still allowed, and the connection stays usable
            assert second.peek("cl").head_item == b"a"
            assert [i.data for i in second.get("cl", 1, 0, 0)] == [b"a"]
        assert first.put("cl", [b"c"], 0) == 1  # the first connection was under the limit


def test_connection_limit_is_decided_at_accept_and_counts_every_protocol(kestrel_factory):
    srv, watcher = limited(kestrel_factory, connectionLimitRefuseWrites=2)
    mc = srv.memcache()  # a second memcache client: a Thrift client accepted now is the third
    assert mc.request("version").startswith(b"VERSION ")
    with ThriftClient(srv.thrift_port) as c:
        with pytest.raises(TApplicationException):
            c.put("cl", [b"x"], 0)
        mc.close()
        wait_for(lambda: connections(watcher) == 2, message="memcache client gone")
        with pytest.raises(TApplicationException):  # still refused: decided once, at accept
            c.put("cl", [b"x"], 0)
    wait_for(lambda: connections(watcher) == 1, message="Thrift client gone")
    with ThriftClient(srv.thrift_port) as c:  # the second client now
        assert c.put("cl", [b"x"], 0) == 1


def test_connection_limit_refuses_reads_of_later_connections(kestrel_factory):
    srv, watcher = limited(kestrel_factory, connectionLimitRefuseReads=2)
    with ThriftClient(srv.thrift_port) as first:
        assert first.put("cr", [b"a", b"b"], 0) == 2
        with ThriftClient(srv.thrift_port) as second:
            for read in (lambda: second.get("cr", 1, 0, 0), lambda: second.get("cr", 1, 100, 0),
                         lambda: second.peek("cr")):
                with pytest.raises(TApplicationException) as exc:
                    read()
                assert "Too many connections: reads are refused." in str(exc.value.message)
            assert second.put("cr", [b"c"], 0) == 1  # writes are allowed
        assert [i.data for i in first.get("cr", 5, 0, 0)] == [b"a", b"b", b"c"]


@pytest.mark.parametrize("name", ["", "a/b", "a.b", "a~b", "has space", "x" * 201])
def test_bad_queue_names_fail_the_call(srv, tc, name):
    for call in (lambda: tc.put(name, [b"x"], 0), lambda: tc.get(name, 1, 0, 0),
                 lambda: tc.peek(name), lambda: tc.flush_queue(name),
                 lambda: tc.delete_queue(name), lambda: tc.confirm(name, {1})):
        with pytest.raises(TApplicationException):
            call()
    assert tc.get_version()  # same connection still works
    assert not any(f.startswith("a") and len(f) < 4 for f in srv.spool_files())


@pytest.mark.parametrize("name", ["a\0/../../x", "a\0", "\0a", "kept\0x"],
                         ids=["traversal", "trailing", "leading", "existing"])
def test_queue_name_with_nul_byte_is_refused(srv, tc, name):
    """A Thrift string carries its length: the name is checked on all of it, so a NUL inside is
    refused by every method instead of cutting the name (put("a\\0/../../x") must not store
    into queue "a")."""
    assert tc.put("kept", [b"k"], 0) == 1
    before = srv.spool_files()
    for call in (lambda: tc.put(name, [b"x"], 0), lambda: tc.get(name, 1, 0, 0),
                 lambda: tc.get(name, 1, 10, 0), lambda: tc.get(name, 1, 0, 1000),
                 lambda: tc.peek(name), lambda: tc.flush_queue(name),
                 lambda: tc.delete_queue(name), lambda: tc.confirm(name, {1}),
                 lambda: tc.abort(name, {1})):
        with pytest.raises(TApplicationException) as exc:
            call()
        assert exc.value.message == "Bad queue name: queue name contains a NUL byte"
    assert tc.get_version()  # same connection still works
    assert srv.spool_files() == before
    assert not (srv.workdir.parent / "x").exists()
    mc = srv.memcache()
    assert [line for line in mc.block("dump_stats") if line.startswith("queue ")] == [
        "queue 'kept' {"]
    assert [i.data for i in tc.get("kept", 5, 0, 0)] == [b"k"]


def test_unknown_string_field_with_nul_does_not_touch_the_name(srv, tc):
    """Only the name's own wire length decides whether it held a NUL: an unknown field carrying
    "q2\0..." beside the name "q2" is skipped and the put stores into "q2"."""
    body = (struct.pack(">bhi", 11, 1, 2) + b"q2"
            + struct.pack(">bhi", 11, 9, 12) + b"q2\0" + b"\xff" * 9
            + struct.pack(">bhbi", 15, 2, 11, 1) + struct.pack(">i", 1) + b"x"
            + struct.pack(">bhi", 8, 3, 0) + b"\x00")
    raw = RawThrift(srv.thrift_port)
    raw.send(frame(message_header("put") + body))
    name, _, _, result = raw.read_reply()
    assert name == "put" and result.success == 1, result
    raw.close()
    assert [i.data for i in tc.get("q2", 5, 0, 0)] == [b"x"]


@pytest.mark.parametrize("method", ["get", "put"])
def test_name_field_repeated_after_one_with_nul_is_refused(srv, tc, method):
    """A request whose name field comes twice, first as "kept\0x" and then as "kept", carried a
    name with a NUL byte: it is refused like any such name, and the server reads no further than
    the name it holds (the get once copied the first field's wire length out of the second,
    shorter name)."""
    assert tc.put("kept", [b"k"], 0) == 1
    first = struct.pack(">bhi", 11, 1, 6) + b"kept\0x"
    second = struct.pack(">bhi", 11, 1, 4) + b"kept"
    if method == "get":
        rest = struct.pack(">bhi", 8, 2, 1) + struct.pack(">bhi", 8, 3, 0)
    else:
        rest = (struct.pack(">bhbi", 15, 2, 11, 1) + struct.pack(">i", 1) + b"x"
                + struct.pack(">bhi", 8, 3, 0))
    raw = RawThrift(srv.thrift_port)
    raw.send(frame(message_header(method) + first + second + rest + b"\x00"))
    name, _, _, result = raw.read_reply()
    assert name == method
    assert result.message == "Bad queue name: queue name contains a NUL byte"
    raw.close()
    assert [i.data for i in tc.get("kept", 5, 0, 0)] == [b"k"]


# ---- open reads

def test_large_frames_split_anywhere_and_pipelined(srv, tc):
    """A large put frame arrives in pieces cut at awkward places (inside the length, one byte
    short of a read block, one past it), with a small frame right behind it in the same piece:
    the frame's block grows to its length once its first block is in, and every byte of both
    puts arrives, in order."""
    Kestrel, _ = generated()
    big, small = os.urandom(300000), b"behind"
    first = encode_call("put", Kestrel.put_args(queue_name="split", items=[big],
                                                expiration_msec=0), seqid=1)
    second = encode_call("put", Kestrel.put_args(queue_name="split", items=[small],
                                                 expiration_msec=0), seqid=2)
    data = first + second
    raw = RawThrift(srv.thrift_port)
    cuts = [0, 2, 3, 16383, 16385, 16386, 70000, len(first) - 1, len(first) + 3, len(data)]
    for a, b in zip(cuts, cuts[1:]):
        raw.send(data[a:b])
    replies = [raw.read_reply() for _ in range(2)]
    assert [(name, seqid, result.success) for name, _, seqid, result in replies] == [
        ("put", 1, 1), ("put", 2, 1)]
    raw.close()
    assert [i.data for i in tc.get("split", 5, 0, 0)] == [big, small]


def encoded_get_result(items, seqid):
    """The reply frame's payload the IDL's generated code writes for a get of `items`."""
    from thrift.protocol import TBinaryProtocol
    from thrift.Thrift import TMessageType
    from thrift.transport import TTransport
    Kestrel, ttypes = generated()
    buf = TTransport.TMemoryBuffer()
    proto = TBinaryProtocol.TBinaryProtocol(buf)
    proto.writeMessageBegin("get", TMessageType.REPLY, seqid)
    Kestrel.get_result(success=[ttypes.Item(data=d, id=i) for d, i in items]).write(proto)
    proto.writeMessageEnd()
    return buf.getvalue()


def test_get_replies_are_the_idl_encoding_byte_for_byte(srv, tc):
    """The server writes a get's reply from the queue's items itself, not through the generated
    result struct: the bytes must be the ones that struct would write, for plain and open reads,
    empty gets, large items, and replies sent back to back on one connection."""
    Kestrel, _ = generated()
    items = [b"", b"one", bytes(range(256)) * 3, os.urandom(300000), b"last"]
    assert tc.put("enc", items, 0) == len(items)
    raw = RawThrift(srv.thrift_port)
    calls = [Kestrel.get_args(queue_name="enc", max_items=2, timeout_msec=0, auto_abort_msec=0),
             Kestrel.get_args(queue_name="enc", max_items=2, timeout_msec=0,
                              auto_abort_msec=60000),
             Kestrel.get_args(queue_name="enc", max_items=5, timeout_msec=0, auto_abort_msec=0),
             Kestrel.get_args(queue_name="enc", max_items=5, timeout_msec=0, auto_abort_msec=0)]
    raw.send(b"".join(encode_call("get", args, seqid=n + 1) for n, args in enumerate(calls)))
    payloads = [raw.read_frame() for _ in calls]
    raw.close()
    from thrift.protocol import TBinaryProtocol
    from thrift.transport import TTransport
    got = []
    for n, payload in enumerate(payloads):
        proto = TBinaryProtocol.TBinaryProtocol(TTransport.TMemoryBuffer(payload))
        assert proto.readMessageBegin() == ("get", 2, n + 1)
        result = Kestrel.get_result()
        result.read(proto)
        got.append([(i.data, i.id) for i in result.success])
        assert payload == encoded_get_result(got[-1], n + 1)
    assert [[d for d, _ in g] for g in got] == [items[:2], items[2:4], items[4:], []]
    assert [i for _, i in got[0]] == [0, 0] and [i for _, i in got[2]] == [0]
    assert all(i != 0 for _, i in got[1])


def test_open_reads_have_unique_nonzero_ids_and_confirm(tc):
    tc.put("o", [b"a", b"b"], 0)
    got = tc.get("o", 2, 0, 60000)
    assert [i.data for i in got] == [b"a", b"b"]
    ids = {i.id for i in got}
    assert len(ids) == 2 and 0 not in ids
    assert tc.peek("o").open_transactions == 2
    assert tc.confirm("o", ids | {12345}) == 2
    assert tc.confirm("o", ids) == 0
    assert tc.peek("o").open_transactions == 0
    assert tc.get("o", 5, 0, 0) == []


def test_abort_puts_items_back_at_head(tc):
    tc.put("ab", [b"a", b"b", b"c"], 0)
    got = tc.get("ab", 1, 0, 60000)
    assert tc.abort("ab", {got[0].id}) == 1
    assert tc.abort("ab", {got[0].id}) == 0
    assert [i.data for i in tc.get("ab", 5, 0, 0)] == [b"a", b"b", b"c"]


def test_auto_abort_returns_unconfirmed_items(tc):
    tc.put("aa", [b"a"], 0)
    t0 = time.monotonic()
    got = tc.get("aa", 1, 0, 300)
    assert [i.data for i in got] == [b"a"]
    assert tc.peek("aa").items == 0
    wait_for(lambda: tc.peek("aa").items == 1, timeout=5, message="auto-abort")
    assert time.monotonic() - t0 >= 0.25
    assert tc.confirm("aa", {got[0].id}) == 0  # too late
    assert [i.data for i in tc.get("aa", 1, 0, 0)] == [b"a"]


def test_confirm_before_auto_abort_keeps_item_gone(tc):
    tc.put("ca", [b"a"], 0)
    got = tc.get("ca", 1, 0, 300)
    assert tc.confirm("ca", {got[0].id}) == 1
    time.sleep(0.5)  # past the abort deadline: the timer must have been cancelled
    assert tc.peek("ca").items == 0


def test_open_reads_survive_disconnect(srv):
    with ThriftClient(srv.thrift_port) as c:
        c.put("sv", [b"a", b"b"], 0)
        first = c.get("sv", 1, 0, 60000)[0]
        second = c.get("sv", 1, 0, 60000)[0]
    with ThriftClient(srv.thrift_port) as c:
        assert c.peek("sv").open_transactions == 2
        assert c.confirm("sv", {first.id}) == 1
        assert c.abort("sv", {second.id}) == 1
        assert [i.data for i in c.get("sv", 5, 0, 0)] == [b"b"]


def test_max_open_transactions_per_connection(srv):
    with ThriftClient(srv.thrift_port) as c:
        c.put("mo", [b"%d" % i for i in range(6)], 0)
        got = c.get("mo", 5, 0, 60000)
        assert len(got) == 2  # maxOpenTransactions=2
        assert c.get("mo", 5, 0, 60000) == []
        assert c.get("mo", 1, 200, 60000) == []  # at the limit even with a timeout
        assert c.confirm("mo", {got[0].id}) == 1
        assert len(c.get("mo", 5, 0, 60000)) == 1
        # plain gets are not limited
        assert len(c.get("mo", 1, 0, 0)) == 1
        with ThriftClient(srv.thrift_port) as other:
            assert len(other.get("mo", 5, 0, 60000)) == 2  # per connection


# ---- blocking gets

def test_get_timeout_with_nothing_returns_empty(tc):
    t0 = time.monotonic()
    assert tc.get("empty", 1, 300, 0) == []
    elapsed = time.monotonic() - t0
    assert 0.25 <= elapsed < 3.0


def test_blocking_get_returns_partial_at_timeout(srv, tc):
    mc = srv.memcache()
    mc.must_set("partial", b"one")
    t0 = time.monotonic()
    got = tc.get("partial", 3, 400, 0)
    assert [i.data for i in got] == [b"one"]
    assert time.monotonic() - t0 >= 0.35


def _in_thread(fn):
    result = {}

    def run():
        try:
            result["value"] = fn()
        except Exception as e:  # reported by the caller
            result["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, result


def test_blocking_get_woken_by_memcache_set(srv):
    c = ThriftClient(srv.thrift_port)
    t, result = _in_thread(lambda: c.get("wake", 1, 10000, 0))
    mc = srv.memcache()
    wait_for(lambda: mc.qstat("wake", "waiters") == 1, message="thrift get waiting")
    t0 = time.monotonic()
    mc.must_set("wake", b"hello")
    t.join(5)
    assert not t.is_alive()
    assert "error" not in result, result
    assert [i.data for i in result["value"]] == [b"hello"]
    assert time.monotonic() - t0 < 2.0
    c.close()


def test_blocking_get_collects_max_items_then_returns(srv):
    c = ThriftClient(srv.thrift_port)
    t, result = _in_thread(lambda: c.get("collect", 3, 10000, 0))
    mc = srv.memcache()
    wait_for(lambda: mc.qstat("collect", "waiters") == 1, message="waiting")
    for v in (b"1", b"2", b"3", b"4"):
        mc.must_set("collect", v)
    t.join(5)
    assert [i.data for i in result["value"]] == [b"1", b"2", b"3"]
    assert mc.get("collect") == b"4"
    c.close()


def test_blocking_get_does_not_block_other_clients(srv):
    c = ThriftClient(srv.thrift_port)
    t, result = _in_thread(lambda: c.get("slow", 1, 3000, 0))
    with ThriftClient(srv.thrift_port) as other:
        wait_for(lambda: other.peek("slow").waiters == 1, message="waiting")
        t0 = time.monotonic()
        assert other.get_version()
        assert other.put("fast", [b"x"], 0) == 1
        assert time.monotonic() - t0 < 1.0
        other.put("slow", [b"done"], 0)
    t.join(5)
    assert [i.data for i in result["value"]] == [b"done"]
    c.close()


def test_many_concurrent_blocking_clients(srv):
    n = 60
    clients = [ThriftClient(srv.thrift_port, timeout=20) for _ in range(n)]
    threads = [_in_thread(lambda c=c: c.get("crowd", 1, 15000, 0)) for c in clients]
    mc = srv.memcache()
    wait_for(lambda: mc.qstat("crowd", "waiters") == n, timeout=10, message="%d waiters" % n)
    for i in range(n):
        mc.must_set("crowd", b"item%d" % i)
    got = []
    for t, result in threads:
        t.join(10)
        assert not t.is_alive()
        assert "error" not in result, result
        got.extend(i.data for i in result["value"])
    assert sorted(got) == sorted(b"item%d" % i for i in range(n))
    assert mc.get("crowd") is None
    for c in clients:
        c.close()


def test_waiter_of_closed_connection_loses_no_item(srv):
    raw = RawThrift(srv.thrift_port)
    Kestrel, _ = generated()
    raw.send(encode_call("get", Kestrel.get_args("lost", 1, 10000, 0)))
    mc = srv.memcache()
    wait_for(lambda: mc.qstat("lost", "waiters") == 1, message="waiting")
    raw.close()
    wait_for(lambda: mc.qstat("lost", "waiters") == 0, message="waiter removed")
    mc.must_set("lost", b"kept")
    assert mc.get("lost") == b"kept"


def test_items_taken_by_a_parked_get_come_back_when_its_client_goes(srv):
    """A get that took items and then waits for more gives them back to the head, in order,
    when its client closes before the reply."""
    Kestrel, _ = generated()
    mc = srv.memcache()
    for item in (b"a", b"b"):
        mc.must_set("back", item)
    raw = RawThrift(srv.thrift_port)
    raw.send(encode_call("get", Kestrel.get_args("back", 5, 10000, 0)))
    wait_for(lambda: mc.qstat("back", "waiters") == 1, message="waiting with two items taken")
    assert mc.qstat("back", "items") == 0
    raw.close()
    wait_for(lambda: mc.qstat("back", "items") == 2, message="items given back")
    assert mc.qstat("back", "open_transactions") == 0
    assert [mc.get("back") for _ in range(3)] == [b"a", b"b", None]


def test_open_blocking_get_woken_then_confirmed(srv):
    c = ThriftClient(srv.thrift_port)
    t, result = _in_thread(lambda: c.get("ob", 1, 10000, 60000))
    mc = srv.memcache()
    wait_for(lambda: mc.qstat("ob", "waiters") == 1, message="waiting")
    mc.must_set("ob", b"v")
    t.join(5)
    item = result["value"][0]
    assert item.data == b"v" and item.id != 0
    assert c.confirm("ob", {item.id}) == 1
    assert mc.qstat("ob", "open_transactions") == 0
    c.close()


# ---- cross-protocol and stats

def test_cross_protocol_thrift_and_memcache(srv, tc):
    mc = srv.memcache()
    assert tc.put("cross", [b"from thrift"], 0) == 1
    assert mc.get("cross") == b"from thrift"
    mc.must_set("cross", b"from memcache")
    assert [i.data for i in tc.get("cross", 1, 0, 0)] == [b"from memcache"]


def test_server_stats_count_thrift_traffic(srv, tc):
    mc = srv.memcache()
    before = dict(mc.stats())
    tc.put("st", [b"a", b"b"], 0)
    tc.get("st", 1, 0, 0)
    tc.get("st-empty", 1, 0, 0)
    after = dict(mc.stats())

    def delta(name):
        return int(after[name]) - int(before[name])
    assert delta("cmd_set") == 2
    assert delta("cmd_get") == 2
    assert delta("get_hits") == 1
    assert delta("get_misses") == 1
    assert delta("bytes_read") > 0 and delta("bytes_written") > 0
    assert int(after["curr_connections"]) >= 2


def test_put_replies_after_durable_sync(kestrel_factory):
    srv = kestrel_factory(thrift=True, sections={"queue synced": {"syncJournal": "0"}})
    with ThriftClient(srv.thrift_port) as c:
        for i in range(20):
            assert c.put("synced", [b"%d" % i], 0) == 1
        assert len(c.get("synced", 100, 0, 0)) == 20


def test_client_timeout_drops_idle_connections_only(kestrel_factory):
    srv = kestrel_factory(thrift=True, server={"clientTimeout": "300ms"})
    idle = RawThrift(srv.thrift_port)
    c = ThriftClient(srv.thrift_port)
    t, result = _in_thread(lambda: c.get("idle", 1, 1500, 0))  # waiting is not idle
    assert idle.closed_by_server(timeout=5)
    t.join(5)
    assert "error" not in result, result
    assert result["value"] == []
    c.close()


# ---- Finagle and hostile input

def test_finagle_trace_probe_gets_unknown_method_and_connection_stays(srv):
    raw = RawThrift(srv.thrift_port)
    raw.send(encode_call("__can__finagle__trace__v3__", seqid=7))
    name, mtype, seqid, x = raw.read_reply()
    assert isinstance(x, TApplicationException)
    assert x.type == TApplicationException.UNKNOWN_METHOD
    assert name == "__can__finagle__trace__v3__" and seqid == 7
    raw.send(encode_call("get_version", generated()[0].get_version_args(), seqid=8))
    name, _, seqid, result = raw.read_reply()
    assert (name, seqid) == ("get_version", 8) and result.success == srv_version(srv)
    raw.close()


def _assert_error_then_close(raw):
    _, mtype, _, x = raw.read_reply()
    assert isinstance(x, TApplicationException), x
    assert raw.closed_by_server()
    return x


def test_oversized_frame_is_answered_then_closed(kestrel_factory):
    srv = kestrel_factory(thrift=True, server={"thriftMaxFrameSize": "64KB"})
    raw = RawThrift(srv.thrift_port)
    raw.send(struct.pack(">I", 65 * 1024) + b"\x80\x01\x00\x01")
    x = _assert_error_then_close(raw)
    assert "thriftMaxFrameSize" in x.message
    still_serving(srv)
    # a frame just under the limit still works
    with ThriftClient(srv.thrift_port) as c:
        assert c.put("big", [b"y" * 60000], 0) == 1


@pytest.mark.parametrize("request_bytes", [
    b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"get somequeue\r\n",
    b"set q 0 0 1\r\nx\r\n",
    b"\xff\xff\xff\xff",                      # negative frame length
], ids=["http", "memcache-get", "memcache-set", "negative-length"])
def test_non_framed_clients_get_an_error_and_close(srv, request_bytes):
    raw = RawThrift(srv.thrift_port)
    raw.send(request_bytes)
    _assert_error_then_close(raw)
    still_serving(srv)


def _struct_field_string_len(length):
    # put_args with field 1 (string) announcing `length` bytes
    return struct.pack(">bhi", 11, 1, length)


@pytest.mark.parametrize("payload", [
    b"",                                                     # empty frame
    b"\x00\x00",                                             # cut inside the header
    message_header("put") + _struct_field_string_len(-5),    # negative string length
    message_header("put") + _struct_field_string_len(1 << 30) + b"abc",  # longer than frame
    message_header("put") + struct.pack(">bhbi", 15, 2, 11, -1),  # negative list size
    message_header("put") + struct.pack(">bhbi", 15, 2, 11, 1 << 30),  # list larger than frame
    message_header("put") + struct.pack(">bhbi", 15, 2, 11, 3) + struct.pack(">i", -7),
    message_header("confirm") + struct.pack(">bhbi", 14, 2, 10, 5) + b"\x00" * 8,  # short set
    message_header("abort") + struct.pack(">bhbi", 14, 2, 3, 5) + b"\x00" * 5,  # wrong elements
    message_header("put") + struct.pack(">bh", 99, 1),      # invalid field type
    message_header("nosuch") + struct.pack(">bhi", 11, 1, -1),  # unknown method, bad args
    struct.pack(">i", 3) + b"put" + struct.pack(">ib", 1, 0),  # old unversioned header
    b"\x80\x02\x00\x01" + b"\x00" * 12,                      # wrong version
    message_header("get_version", mtype=2) + b"\x00",        # a reply sent to the server
    message_header("put") + b"\x0b\x00\x01\x00\x00\x00\x01q",  # ends before the stop field
], ids=["empty", "short-header", "negative-string", "string-beyond-frame", "negative-list",
        "huge-list", "negative-binary-in-list", "short-set", "set-of-wrong-type", "bad-field-type",
        "unknown-method-bad-args", "unversioned", "bad-version", "reply-type", "truncated"])
def test_malformed_frames_get_an_error_and_close(srv, payload):
    raw = RawThrift(srv.thrift_port)
    raw.send(frame(payload))
    _assert_error_then_close(raw)
    still_serving(srv)


def test_deep_nesting_is_refused(srv):
    depth = 100000
    # an unknown field 9 holding structs nested `depth` deep: skip would recurse without a limit
    body = struct.pack(">bh", 12, 9) * depth + b"\x00" * depth + b"\x00"
    raw = RawThrift(srv.thrift_port)
    raw.send(frame(message_header("get_version") + body))
    x = _assert_error_then_close(raw)
    assert "deeper" in x.message
    still_serving(srv)


def test_deep_list_nesting_is_refused(srv):
    depth = 50000
    body = struct.pack(">bhbi", 15, 9, 15, 1) + struct.pack(">bi", 15, 1) * depth
    raw = RawThrift(srv.thrift_port)
    raw.send(frame(message_header("peek") + body))
    _assert_error_then_close(raw)
    still_serving(srv)


def test_truncated_frame_then_disconnect(srv):
    raw = RawThrift(srv.thrift_port)
    raw.send(struct.pack(">I", 1000) + b"\x80\x01\x00\x01partial")
    assert not raw.closed_by_server(timeout=0.3)  # waits for the rest of the frame
    raw.close()
    still_serving(srv)


def test_garbage_bursts_do_not_disturb_a_waiting_client(srv):
    c = ThriftClient(srv.thrift_port)
    t, result = _in_thread(lambda: c.get("calm", 1, 10000, 0))
    mc = srv.memcache()
    wait_for(lambda: mc.qstat("calm", "waiters") == 1, message="waiting")
    for i in range(30):
        s = socket.create_connection(("127.0.0.1", srv.thrift_port), timeout=5)
        s.sendall(bytes((i * 37 + k * 11) % 256 for k in range(200)))
        s.close()
    mc.must_set("calm", b"ok")
    t.join(5)
    assert [i.data for i in result["value"]] == [b"ok"]
    c.close()
    still_serving(srv)


def test_pipelined_requests_are_answered_in_order(srv):
    Kestrel, _ = generated()
    raw = RawThrift(srv.thrift_port)
    raw.send(encode_call("put", Kestrel.put_args("pipe", [b"a"], 0), seqid=1) +
             encode_call("get", Kestrel.get_args("pipe", 1, 0, 0), seqid=2) +
             encode_call("get_version", Kestrel.get_version_args(), seqid=3))
    replies = [raw.read_reply() for _ in range(3)]
    assert [(r[0], r[2]) for r in replies] == [("put", 1), ("get", 2), ("get_version", 3)]
    assert replies[0][3].success == 1
    assert [i.data for i in replies[1][3].success] == [b"a"]
    raw.close()


# ---- another language

def _java_classpath():
    jars = [Path("/usr/share/java") / name for name in ("libthrift.jar", "thrift.jar")]
    thrift_jar = next((j for j in jars if j.exists()), None)
    slf4j = [Path("/usr/share/java") / n for n in ("slf4j-api.jar", "slf4j-nop.jar")]
    if thrift_jar is None or not shutil.which("javac") or not shutil.which("java"):
        return None
    return [str(thrift_jar)] + [str(j) for j in slf4j if j.exists()]


def test_java_client_round_trip(kestrel_factory, tmp_path):
    classpath = _java_classpath()
    if classpath is None:
        pytest.skip("needs javac and Debian's libthrift-java")
    srv = kestrel_factory(thrift=True)
    gen, classes = tmp_path / "gen", tmp_path / "classes"
    gen.mkdir()
    classes.mkdir()
    subprocess.run([os.environ.get("THRIFT", "thrift"), "--gen",
                    "java:generated_annotations=suppress", "-out", str(gen), str(idl_path())],
                   check=True)
    source = Path(__file__).resolve().parent / "java" / "KestrelRoundTrip.java"
    sources = [str(p) for p in gen.rglob("*.java")] + [str(source)]
    subprocess.run(["javac", "-nowarn", "-d", str(classes), "-cp", ":".join(classpath)] + sources,
                   check=True, timeout=80)
    run = subprocess.run(["java", "-cp", ":".join([str(classes)] + classpath), "KestrelRoundTrip",
                          "127.0.0.1", str(srv.thrift_port)],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().endswith("OK")

"""Connections that carry large items are kept on worker threads of their own.

With two worker threads or more, a connection that sends a request or gets replies of 64 KB or
more ("bulk") moves, between two requests, to the last half of the threads, and the other
connections leave those threads while a bulk connection is open. Where each connection is
served is read from the session trace (`enableSessionTrace`): "connection from PEER on io thread
K" when accepted, "moved to io thread K (...)" when it moves. Moving must change nothing a
client sees: open reads, blocking gets and the closing of reads on disconnect go with it.
"""
import os
import re

from conftest import wait_for

BULK = 64 * 1024


def session_of(srv, client):
    """The session id the server gave `client` (from its peer address in the trace)."""
    port = client.sock.getsockname()[1]
    pattern = re.compile(r"session (\d+): memcache connection from 127\.0\.0\.1:%d on io "
                         r"thread (\d+)" % port)
    found = []
    wait_for(lambda: found.extend(pattern.findall(srv.stderr_text())) or found, timeout=10,
             message="the trace of the connection from port %d" % port)
    return found[0][0]


def thread_of(srv, session):
    """The io thread `session` is on now: where it was accepted, or where it last moved to."""
    text = srv.stderr_text()
    accepted = re.search(r"session %s: memcache connection from \S+ on io thread (\d+)" % session,
                         text)
    moves = re.findall(r"session %s: moved to io thread (\d+)" % session, text)
    return int(moves[-1] if moves else accepted.group(1))


def wait_thread(srv, session, thread):
    wait_for(lambda: thread_of(srv, session) == thread, timeout=10,
             message="session %s on io thread %d" % (session, thread))


def traced_server(kestrel_factory, threads=2):
    return kestrel_factory(server={"workerThreads": threads, "enableSessionTrace": "true"})


def client_on_thread(srv, thread):
    """A new memcache client the server placed on io `thread`. Sockets are dealt round robin,
    but the server's readiness probes (memcache and text) may be dealt between the clients, so
    the first client or two may not land there."""
    for _ in range(4):
        client = srv.memcache()
        if thread_of(srv, session_of(srv, client)) == thread:
            return client
    raise AssertionError("no connection was dealt to io thread %d" % thread)


def test_a_bulk_connection_and_the_small_ones_end_up_on_different_threads(kestrel_factory):
    srv = traced_server(kestrel_factory)
    small = [client_on_thread(srv, 2), srv.memcache()]  # one at least where bulk will go
    for c in small:
        c.must_set("small", "x")
    big = srv.memcache()
    big_session = session_of(srv, big)
    big.must_set("large", os.urandom(BULK))
    # The bulk connection is on thread 2 (the last half of two), moved there if it was not.
    wait_thread(srv, big_session, 2)
    # The small connections leave thread 2 at their next request; they keep working.
    for c in small:
        c.must_set("small", "y")
        assert c.get("small") is not None
    for c in small:
        wait_thread(srv, session_of(srv, c), 1)
    # A connection accepted while a bulk connection is open goes to the small half.
    late = srv.memcache()
    late.must_set("small", "z")
    assert thread_of(srv, session_of(srv, late)) == 1
    # The bulk connection still works where it is now.
    assert big.get("large") is not None


def test_small_replies_and_requests_do_not_make_a_connection_bulk(kestrel_factory):
    srv = traced_server(kestrel_factory)
    clients = [srv.memcache() for _ in range(2)]
    sessions = [session_of(srv, c) for c in clients]
    threads = [thread_of(srv, s) for s in sessions]
    for c in clients:
        for _ in range(20):
            c.must_set("mid", os.urandom(BULK - 100))
            assert len(c.get("mid")) == BULK - 100
    assert [thread_of(srv, s) for s in sessions] == threads
    assert "moved to io thread" not in srv.stderr_text()


def test_a_moving_connection_keeps_open_reads_and_blocking_gets(kestrel_factory):
    srv = traced_server(kestrel_factory)
    # accepted on thread 1, it will have to move to become bulk
    mover = client_on_thread(srv, 1)
    session = session_of(srv, mover)
    other = srv.memcache()
    for i in range(3):
        other.must_set("jobs", "job%d" % i)
    assert mover.get("jobs", "/open") == b"job0"
    mover.must_set("large", os.urandom(BULK + 1))
    wait_thread(srv, session, 2)
    # The open read came along: close-and-open confirms job0 and opens job1.
    assert mover.get("jobs", "/close/open") == b"job1"
    assert other.qstat("jobs", "items") == 1
    assert other.qstat("jobs", "open_transactions") == 1
    # A blocking get parks on the new thread and is woken from another connection.
    mover.send_line("get wake/t=10000")
    other.must_set("wake", "hello")
    assert mover.read_value("wake") == b"hello"
    # Leaving gives job1 back.
    mover.close()
    wait_for(lambda: other.qstat("jobs", "open_transactions") == 0, timeout=10,
             message="the moved connection's open read to go back")
    assert other.get_all("jobs") == [b"job1", b"job2"]


def test_large_replies_make_a_reader_bulk(kestrel_factory):
    srv = traced_server(kestrel_factory)
    writer = srv.memcache()
    readers = [srv.memcache() for _ in range(2)]
    item = os.urandom(BULK)
    for _ in range(2):
        writer.must_set("big", item)
    for r in readers:
        assert r.get("big") == item
        r.must_set("after", "x")  # a request after the reply: the move has had its chance
    for r in readers:
        wait_thread(srv, session_of(srv, r), 2)
    # the writer sent large requests: bulk too
    wait_thread(srv, session_of(srv, writer), 2)


def test_one_thread_keeps_every_connection(kestrel_factory):
    srv = traced_server(kestrel_factory, threads=1)
    big, small = srv.memcache(), srv.memcache()
    big.must_set("large", os.urandom(2 * BULK))
    small.must_set("small", "x")
    assert big.get("large") is not None and small.get("small") == b"x"
    assert "moved to io thread" not in srv.stderr_text()


def test_a_bulk_connection_gets_every_reply_whole_and_in_order(kestrel_factory):
    """A bulk connection reads and writes a limited amount per turn of its loop (so that the
    other connections there are not held up by a large item), which splits its large replies
    and requests over many turns: pipelined with short replies, everything still comes back
    byte for byte and in order, and a small connection on the same thread is served as well."""
    srv = traced_server(kestrel_factory, threads=1)
    bulk, small = srv.memcache(), srv.memcache()
    bulk.must_set("warm", os.urandom(2 * BULK))  # the connection is bulk from now on
    assert bulk.get("warm") is not None
    version = small.request("version")
    request, expected = b"", b""
    for size in (3 * BULK + 17, 5, 300000, 16384, 1 << 20):
        item = os.urandom(size)
        request += b"set bq 0 0 %d\r\n%s\r\nget bq\r\nget none\r\nversion\r\n" % (size, item)
        expected += b"STORED\r\nVALUE bq 0 %d\r\n%s\r\nEND\r\nEND\r\n%s" % (size, item, version)
    bulk.send(request)
    small.must_set("small", "x")
    assert small.get("small") == b"x"
    assert bulk.read_exact(len(expected), timeout=20) == expected

"""One connection's large transfer or long pipeline does not keep the server from the others.

The memcache and text front-ends share one event loop; these tests hold a transfer open in a
state where a server that served one connection to completion would never get to the second
client, and check that the second client is answered (every read has the client's timeout,
nothing is timed)."""
import os
import socket
import threading

from conftest import wait_for


def queue_items(kestrel, queue):
    with kestrel.memcache() as c:
        return c.qstat(queue, "items")


def test_small_requests_answered_while_a_large_set_is_half_sent(kestrel):
    big = kestrel.memcache()
    size = 8 << 20
    big.send(b"set big 0 0 %d\r\n" % size)
    data = os.urandom(size)
    # Half the item, then nothing: the server holds an unfinished request of 4 MB.
    big.send(data[:size // 2])
    with kestrel.memcache() as small:
        for i in range(20):
            small.must_set("small", b"s%02d" % i)
            assert small.get("small") == b"s%02d" % i
    big.send(data[size // 2:] + b"\r\n")
    assert big.read_line() == b"STORED\r\n"
    assert big.get("big") == data


def test_small_requests_answered_while_a_reader_leaves_a_large_reply_unread(kestrel):
    item = os.urandom(8 << 20)
    with kestrel.memcache() as writer:
        for _ in range(3):
            writer.must_set("large", item)
    stalled = kestrel.memcache()
    # Three 8 MB replies the client does not read: more than the socket buffers hold, so the
    # server's writes stop part-way (and the gets after the first wait until the client has
    # read its first reply).
    stalled.send(b"get large\r\nget large\r\nget large\r\n")
    wait_for(lambda: queue_items(kestrel, "large") < 3, timeout=10,
             message="the stalled reader's first get to be handled")
    with kestrel.memcache() as small:
        for i in range(20):
            small.must_set("small", b"s%02d" % i)
            assert small.get("small") == b"s%02d" % i
    # The stalled client gets all of its replies once it reads.
    expected = b"VALUE large 0 %d\r\n" % len(item) + item + b"\r\nEND\r\n"
    for _ in range(3):
        assert stalled.read_exact(len(expected), timeout=30) == expected


def test_long_pipeline_answered_in_order_while_another_client_is_served(kestrel):
    # Enough requests that their replies, unread, fill the socket buffers: the pipeline cannot
    # be finished before the other client comes, whatever the threads' timing.
    n = 50000
    pipe = kestrel.memcache()
    requests = b"".join(b"set pipe 0 0 6\r\nv%05d\r\n" % i for i in range(n))
    sender = threading.Thread(target=pipe.send, args=(requests,))
    sender.start()
    # The pipeline's first replies come back before its last requests are handled ...
    assert pipe.read_exact(8, timeout=20) == b"STORED\r\n"
    with kestrel.memcache() as other:
        # ... and another client is answered in between: the queue holds fewer than n items.
        assert other.qstat("pipe", "items") < n
    sender.join(20)
    assert pipe.read_exact(8 * (n - 1), timeout=20) == b"STORED\r\n" * (n - 1)
    pipe.send(b"get pipe\r\n" * n)
    expected = b"".join(b"VALUE pipe 0 6\r\nv%05d\r\nEND\r\n" % i for i in range(n))
    assert pipe.read_exact(len(expected), timeout=20) == expected


def test_pipeline_sent_before_the_client_shuts_down_its_side_is_answered_whole(kestrel):
    # More requests than one turn handles, then end of stream: every one is still answered
    # before the server closes.
    n = 3000
    client = kestrel.memcache()
    client.send(b"".join(b"set half 0 0 6\r\nv%05d\r\n" % i for i in range(n)))
    client.sock.shutdown(socket.SHUT_WR)
    assert client.read_all_until_close(timeout=20, limit=1 << 24) == b"STORED\r\n" * n
    assert queue_items(kestrel, "half") == n


def test_text_small_requests_answered_while_a_large_put_is_half_sent(kestrel):
    big = kestrel.text()
    # Lines are at most 64 KB: a large put is many long items (here 4 MB in all).
    items = [b"%02d" % i + b"x" * 65000 for i in range(64)]
    request = b"put big:\n" + b"".join(i + b"\n" for i in items) + b"\n"
    half = len(request) // 2
    big.send(request[:half])
    with kestrel.text() as small:
        for i in range(10):
            assert small.put("small", ["s%02d" % i]) == b"+1\n"
            assert small.request("get small") == b":s%02d\n" % i
    big.send(request[half:])
    assert big.read_line() == b"+64\n"
    assert big.request("get big") == b":" + items[0] + b"\n"


class Pipeliner:
    """A client that keeps one loop busy: it sends `get` requests without waiting, as fast as
    the socket takes them, while a thread of its own reads the replies, so the server always
    has more of its requests buffered than one turn handles."""

    def __init__(self, kestrel):
        self.client = kestrel.memcache()
        self.stop = threading.Event()
        self.replies = 0
        self.chunk = b"get nothing\r\n" * 8192
        self.threads = [threading.Thread(target=self._send), threading.Thread(target=self._read)]
        for t in self.threads:
            t.start()

    def _send(self):
        try:
            while not self.stop.is_set():
                self.client.sock.sendall(self.chunk)
        except OSError:
            pass

    def _read(self):
        try:
            while not self.stop.is_set():
                self.replies += len(self.client.sock.recv(1 << 20))
        except OSError:
            pass

    def running(self):
        return all(t.is_alive() for t in self.threads)

    def finish(self):
        self.stop.set()
        self.client.sock.shutdown(socket.SHUT_RDWR)
        for t in self.threads:
            t.join(20)
        self.client.close()


def test_large_item_moves_while_a_pipelining_client_keeps_one_loop_busy(kestrel_factory):
    # One loop for both: a large item's reads and writes wait for ready small requests, but a
    # client that always has requests ready must not hold the large item back for good.
    srv = kestrel_factory(server={"workerThreads": 1})
    pipe = Pipeliner(srv)
    try:
        wait_for(lambda: pipe.replies > 1 << 20, timeout=20,
                 message="the pipelining client's replies to flow")
        item = os.urandom(4 << 20)
        with srv.memcache() as big:
            big.must_set("large", item)
            assert big.get("large") == item
            assert pipe.running()
            replies_before = pipe.replies
        # The pipeline was still being served: the large item did not wait for it to end.
        wait_for(lambda: pipe.replies > replies_before, timeout=20,
                 message="the pipelining client to be answered after the large item")
    finally:
        pipe.finish()

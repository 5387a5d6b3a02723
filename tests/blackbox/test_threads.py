"""Worker threads: many connections over few queues and over many queues, served by 4 threads.

Every item put is got exactly once, each consumer sees each producer's items of a queue in the
order they were put, and the global counters, kept per thread and summed, count every request;
also while connections that carry large items move between threads.
scripts/test also runs this file against a ThreadSanitizer build (--enable-tsan).
"""
import threading

import pytest

PRODUCERS = 12
PER_PRODUCER = 250
CONSUMERS = 6
LARGE = 70 * 1024
HELD_WHOLE = 300 * 1024  # over 256 KB: the set's input block becomes the queued item


def run_traffic(srv, queues, large_producers=0):
    """PRODUCERS connections put numbered items round robin over `queues` while CONSUMERS
    connections get from them; returns (what each consumer got, gets sent, puts sent). The
    first `large_producers` pad their items to 70 KB, which moves them, and the consumers that
    get their items, to the threads that serve large items while the others move away; every
    tenth item of the first one is padded to 300 KB, which the queue holds in the block it was
    read into on one thread until a consumer on another thread gets it."""
    errors = []
    got = [[] for _ in range(CONSUMERS)]
    gets_sent = [0] * CONSUMERS
    produced = threading.Event()

    def produce(k):
        try:
            with srv.memcache() as c:
                for seq in range(PER_PRODUCER):
                    q = queues[(k + seq) % len(queues)]
                    item = "p%d:%d" % (k, seq)
                    pad = HELD_WHOLE if k == 0 and seq % 10 == 0 else LARGE
                    c.must_set(q, item + ":" + "x" * pad if k < large_producers else item)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    def consume(k):
        try:
            with srv.memcache() as c:
                i = k
                while True:
                    q = queues[i % len(queues)]
                    i += 1
                    item = c.get(q, "/t=5")
                    gets_sent[k] += 1
                    if item is not None:
                        got[k].append((q, item))
                    elif produced.is_set() and all_empty(c):
                        return
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    def all_empty(c):
        stats = dict(c.stats())
        return all(int(stats.get("queue_%s_items" % q, "0")) == 0 for q in queues)

    producers = [threading.Thread(target=produce, args=(k,)) for k in range(PRODUCERS)]
    consumers = [threading.Thread(target=consume, args=(k,)) for k in range(CONSUMERS)]
    for t in producers + consumers:
        t.start()
    for t in producers:
        t.join(120)
    produced.set()
    for t in consumers:
        t.join(120)
    assert not errors, errors
    assert not any(t.is_alive() for t in producers + consumers)
    return got, sum(gets_sent), PRODUCERS * PER_PRODUCER


def check_exactly_once_in_order(got, queues):
    seen = set()
    for items in got:
        last = {}  # (queue, producer) -> last sequence number this consumer saw
        for q, item in items:
            parts = item.split(b":", 2)
            producer, seq = int(parts[0][1:]), int(parts[1])
            if len(parts) == 3:  # padded: every byte as sent
                assert parts[2] == b"x" * len(parts[2]), "padding changed in %r" % parts[:2]
                assert len(parts[2]) in (LARGE, HELD_WHOLE), "padding cut in %r" % parts[:2]
            assert (producer, seq) not in seen, "delivered twice: %r" % item
            seen.add((producer, seq))
            assert q == queues[(producer + seq) % len(queues)], "wrong queue for %r" % item
            assert seq > last.get((q, producer), -1), "out of order in %s: %r" % (q, item)
            last[(q, producer)] = seq
    missing = {(p, s) for p in range(PRODUCERS) for s in range(PER_PRODUCER)} - seen
    assert not missing, "%d items never delivered, e.g. %r" % (len(missing), sorted(missing)[:5])


@pytest.mark.parametrize("queue_count", [2, 64])
def test_many_connections_lose_duplicate_and_reorder_nothing(kestrel_factory, queue_count):
    srv = kestrel_factory(server={"workerThreads": 4})
    queues = ["thr%d_%d" % (queue_count, i) for i in range(queue_count)]
    with srv.memcache() as c:
        before = dict(c.stats())
    got, gets, puts = run_traffic(srv, queues)
    check_exactly_once_in_order(got, queues)
    with srv.memcache() as c:
        after = dict(c.stats())
    # per-thread counters summed: nothing lost between threads (the probes above are
    # `stats`, which counts neither)
    assert int(after["cmd_set"]) - int(before["cmd_set"]) == puts
    assert int(after["cmd_get"]) - int(before["cmd_get"]) == gets
    assert int(after["get_hits"]) - int(before["get_hits"]) == puts
    assert int(after["get_misses"]) - int(before["get_misses"]) == gets - puts
    assert int(after["total_items"]) - int(before["total_items"]) == puts


def test_each_thread_serves_clients(kestrel_factory):
    # Four threads, eight clients dealt round robin: every connection is served, and a client
    # parked in a blocking get on one thread is woken by a set from a client on another.
    srv = kestrel_factory(server={"workerThreads": 4})
    clients = [srv.memcache() for _ in range(8)]
    for i, c in enumerate(clients):
        c.must_set("each", "x%d" % i)
    assert sorted(clients[0].get("each") for _ in range(8)) == sorted(
        b"x%d" % i for i in range(8))
    waiter = clients[1]
    waiter.send_line("get wake/t=10000")
    for setter in clients[2:6]:  # at least one of these is on another thread than the waiter
        setter.must_set("wake", "hello")
    assert waiter.read_value("wake") == b"hello"


def test_connections_moving_between_threads_lose_duplicate_and_reorder_nothing(kestrel_factory):
    # Three producers of 70 KB items: they, and the consumers that get their items, move to
    # the threads that serve large items, the others away from them, while traffic flows.
    srv = kestrel_factory(server={"workerThreads": 4, "enableSessionTrace": "true"})
    queues = ["mov%d" % i for i in range(4)]
    got, gets, puts = run_traffic(srv, queues, large_producers=3)
    check_exactly_once_in_order(got, queues)
    assert "moved to io thread" in srv.stderr_text()

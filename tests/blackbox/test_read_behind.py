"""Read-behind through a running kestreld: a backlog bigger than maxMemorySize survives a clean
stop, and a kill -9 while the live file rotates under the reader (SPEC 7)."""
import pytest

from conftest import MemcacheClient


def item(i, size):
    head = b"%07d:" % i
    return head + bytes(b"abcdefghijklmnopqrstuvwxyz"[(i + k) % 26] for k in range(size - len(head)))


@pytest.mark.parametrize("max_memory,size", [
    ("1KB", 300), ("4KB", 100), ("4KB", 37), ("16KB", 1000), ("512", 64),
])
def test_clean_restart_in_read_behind_keeps_every_unread_item(kestrel_factory, max_memory, size):
    srv = kestrel_factory(sections={"queue rb": {"maxMemorySize": max_memory}})
    with MemcacheClient(srv.memcache_port) as c:
        for i in range(100):
            c.must_set("rb", item(i, size))
        for i in range(50):
            assert c.get("rb") == item(i, size)
    srv.stop()
    srv.start()
    with MemcacheClient(srv.memcache_port) as c:
        assert c.qstat("rb", "items") == 50
        assert c.get_all("rb") == [item(i, size) for i in range(50, 100)]
    assert "read-behind failed" not in srv.stderr_text()


def test_reads_interleaved_with_rotations_deliver_every_item_once_in_order(kestrel_factory):
    srv = kestrel_factory(sections={"queue rot": {"maxMemorySize": "512"}})
    got = []
    with MemcacheClient(srv.memcache_port) as c:
        nxt = 0
        for rnd in range(300):
            c.must_set("rot", item(nxt, 40))
            nxt += 1
            if rnd % 2 == 0:
                got.append(c.get("rot"))
        assert c.qstat("rot", "journal_rotations") > 0
        got.extend(c.get_all("rot"))
    assert got == [item(i, 40) for i in range(300)]
    assert "read-behind failed" not in srv.stderr_text()

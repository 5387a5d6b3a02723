"""A queue folder whose disk is full, for real: a small tmpfs mounted for the test (the suite
runs as root; a machine where it cannot be mounted fails these tests, it does not skip them).

A full disk must never make a read look like an empty queue: every protocol answers with an
error it can tell from "empty" (memcache `SERVER_ERROR <why>`, text `-<why>`, a Thrift
exception), the server logs it once, a per-queue stat counts it, and once there is room again
every item is served exactly once."""
import os
import subprocess

import pytest

from conftest import journal_records, wait_for
from thrift_support import RawThrift, ThriftClient, encode_call, generated

thrift_mod = pytest.importorskip("thrift")
from thrift.Thrift import TApplicationException  # noqa: E402

ADDX_OVERHEAD = 21       # bytes of an ADDX record beyond its data (SPEC 7)
NO_SPACE = os.strerror(28)  # ENOSPC's text, as the server reports it


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs, unmounted at the end (after the servers of the test have stopped)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail("cannot mount a tmpfs for the disk-full tests (they need root): %s"
                    % done.stderr.strip())
    yield mount_point
    if subprocess.run(["umount", str(mount_point)]).returncode != 0:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(disk):
    """Take every free byte of the file system with a filler file."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (1 << 16, 1):  # big writes, then the last bytes one by one
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as e:
                    assert e.errno == 28, e
                    break
    finally:
        os.close(fd)


def reserved_left(disk, queue):
    """Bytes the live journal reserved beyond its last record."""
    path = disk / queue
    return path.stat().st_size - len(journal_records(path.read_bytes()))


def use_up_reservation(mc, disk, queue):
    """Store one item that fills the journal's reserved space exactly: with the disk full, the
    next record (even a 1-byte REMOVE) cannot be written. Returns the item."""
    left = reserved_left(disk, queue)
    assert left >= ADDX_OVERHEAD, left
    data = b"z" * (left - ADDX_OVERHEAD)
    mc.must_set(queue, data)
    assert reserved_left(disk, queue) == 0
    return data


def assert_server_error(line):
    assert line.startswith(b"SERVER_ERROR cannot take an item from queue "), line
    assert NO_SPACE.encode() in line, line


def assert_text_error(line, queue):
    assert line.startswith(b"-cannot take an item from queue '%s'" % queue.encode()), line
    assert NO_SPACE.encode() in line, line


def test_reads_on_a_full_disk_fail_with_an_error_then_nothing_is_lost(small_disk,
                                                                      kestrel_factory):
    srv = kestrel_factory(server={"queuePath": str(small_disk)}, thrift=True)
    mc = srv.memcache()
    items = [b"item-%d" % i for i in range(10)]
    for item in items:
        mc.must_set("q", item)
    fill(small_disk)
    items.append(use_up_reservation(mc, small_disk, "q"))

    # memcache: the add and every read that needs a journal record fail, the peek does not
    assert mc.set("q", b"x").startswith(b"SERVER_ERROR ")
    assert_server_error(mc.request("get q"))
    assert_server_error(mc.request("get q/open"))
    assert_server_error(mc.request("get q/t=100"))
    assert_server_error(mc.request("monitor q 1"))
    assert mc.get("q", "/peek") == items[0]
    # text
    t = srv.text()
    assert_text_error(t.request("get q"), "q")
    assert_text_error(t.request("monitor q 100"), "q")
    assert t.request("peek q") == b":item-0\n"
    assert t.put("q", ["x"]).startswith(b"-cannot reserve journal space in ")
    # Thrift
    tc = ThriftClient(srv.thrift_port)
    for call in (lambda: tc.get("q", 5, 0, 0), lambda: tc.get("q", 5, 100, 0),
                 lambda: tc.get("q", 1, 0, 60000)):
        with pytest.raises(TApplicationException) as exc:
            call()
        assert exc.value.message.startswith("cannot take an item from queue 'q'")
        assert NO_SPACE in exc.value.message
    with pytest.raises(TApplicationException):
        tc.put("q", [b"x"], 0)
    assert tc.peek("q").head_item == items[0]

    # counted per queue, logged once for the whole episode, and nothing moved
    assert mc.qstat("q", "remove_failures") == 9
    assert mc.qstat("q", "items") == len(items)
    assert mc.qstat("q", "open_transactions") == 0
    assert srv.stderr_text().count("reads of the queue fail until the journal can record") == 1

    # room again: every item comes back once, in order, over any protocol
    os.unlink(small_disk / "filler")
    assert mc.get("q") == items[0]
    assert t.request("get q") == b":item-1\n"
    assert [i.data for i in tc.get("q", 1, 0, 0)] == [items[2]]
    assert mc.get_all("q") == items[3:]
    assert t.request("get q") == b"*\n"  # confirms item-1
    assert mc.qstat("q", "remove_failures") == 9
    assert "queue 'q': the journal records removals again" in srv.stderr_text()
    tc.close()

    # and none of them comes back after a restart
    srv.restart()
    mc = srv.memcache()
    assert mc.get("q") is None


def test_a_large_set_on_a_full_disk_fails_and_the_connection_goes_on(small_disk,
                                                                     kestrel_factory):
    """A set of 300 KB that came alone is handed to the queue in the block it was read into;
    when the journal cannot take it, the set fails and that block is gone with the refused item,
    while the connection goes on reading its next requests. With room again the same set is
    stored, every byte of it, also across a restart."""
    srv = kestrel_factory(server={"queuePath": str(small_disk)})
    mc = srv.memcache()
    mc.must_set("big", b"first")
    fill(small_disk)
    stored = [b"first", use_up_reservation(mc, small_disk, "big")]
    large = os.urandom(300 * 1024)
    for _ in range(3):
        reply = mc.set("big", large)
        assert reply.startswith(b"SERVER_ERROR "), reply
        assert mc.request("version").startswith(b"VERSION ")
    # the same set with a get read behind it in the same block (copied, not handed over)
    mc.send(b"set big 0 0 %d\r\n%s\r\nget big/peek\r\n" % (len(large), large))
    assert mc.read_line().startswith(b"SERVER_ERROR ")
    assert mc.read_value("big") == b"first"
    assert mc.qstat("big", "items") == 2

    os.unlink(small_disk / "filler")
    mc.must_set("big", large)
    srv.restart()
    mc = srv.memcache()
    assert mc.get_all("big") == stored + [large]


def test_waiting_readers_get_an_error_when_the_item_cannot_be_handed_over(small_disk,
                                                                          kestrel_factory):
    """Readers wait on an empty queue; an item arrives that the journal can take, but the
    disk has no room left to record handing it over: each waiter gets an error at its
    deadline, not "empty", and the item is served once there is room."""
    srv = kestrel_factory(server={"queuePath": str(small_disk)}, thrift=True)
    mc = srv.memcache()
    mc.must_set("w", b"first")
    assert mc.get("w") == b"first"
    fill(small_disk)

    waiting_mc = srv.memcache()
    waiting_mc.send_line("get w/t=1000")
    waiting_text = srv.text()
    waiting_text.send_line("get w 1000")
    Kestrel, _ = generated()
    waiting_thrift = RawThrift(srv.thrift_port)
    waiting_thrift.send(encode_call("get", Kestrel.get_args(queue_name="w", max_items=1,
                                                            timeout_msec=1000)))
    wait_for(lambda: mc.qstat("w", "waiters") == 3, message="three waiting readers")

    item = use_up_reservation(mc, small_disk, "w")
    assert_server_error(waiting_mc.read_line())
    assert_text_error(waiting_text.read_line(), "w")
    _, _, _, reply = waiting_thrift.read_reply()
    assert isinstance(reply, TApplicationException), reply
    assert reply.message.startswith("cannot take an item from queue 'w'")
    waiting_thrift.close()
    # the hand-off and each waiter's last look (which first retries the hand-offs to the
    # readers still waiting, if any: so 4 or more)
    assert mc.qstat("w", "remove_failures") >= 4
    assert mc.qstat("w", "items") == 1
    assert srv.stderr_text().count("reads of the queue fail until the journal can record") == 1

    os.unlink(small_disk / "filler")
    assert mc.get("w") == item
    assert mc.get("w") is None

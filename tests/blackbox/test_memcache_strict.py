"""memcacheStrict: the memcache port answering as memcache clients expect (docs/protocols.md),
checked byte for byte and with real clients; and the default staying Kestrel's bytes."""
import shutil
import subprocess
from pathlib import Path

import pylibmc
import pytest
from pymemcache.client.base import Client as PyMemcacheClient

from conftest import wait_for

STRICT = {"memcacheStrict": "true", "maxOpenTransactions": 10}


@pytest.fixture
def strict(kestrel_factory):
    return kestrel_factory(server=STRICT, text=False)


# ---- bytes

def test_default_mode_answers_kestrel_bytes(kestrel):
    c = kestrel.memcache()
    c.send(b"set kb 0 0 1 noreply\r\na\r\n")
    assert c.read_line() == b"STORED\r\n"                 # noreply ignored
    c.send_line("get kb/open")
    assert c.read_exact(len(b"VALUE kb 0 1\r\na\r\nEND\r\n")) == b"VALUE kb 0 1\r\na\r\nEND\r\n"
    c.send_line("delete kb noreply")
    assert c.read_line() == b"DELETED\r\n"
    c.send_line("flush_all")
    assert c.read_line() == b"Flushed all queues.\r\n"
    c.send_line("flush_all noreply")
    assert c.read_line() == b"Flushed all queues.\r\n"


def test_strict_get_echoes_key_as_sent(strict):
    c = strict.memcache()
    for x in ("a", "b", "c"):
        c.must_set("sk", x)
    for key, data in ((b"sk/open", b"a"), (b"sk/close/open", b"b"), (b"sk/close", None),
                      (b"sk/peek/t=5", b"c"), (b"sk/t=5", b"c"), (b"sk", None)):
        c.send(b"get " + key + b"\r\n")
        expected = b"VALUE %s 0 1\r\n%s\r\nEND\r\n" % (key, data) if data else b"END\r\n"
        assert c.read_exact(len(expected)) == expected


def test_strict_waiting_get_echoes_key(strict):
    c, w = strict.memcache(), strict.memcache()
    c.send_line("get sw/t=5000/open")
    wait_for(lambda: w.qstat("sw", "waiters") == 1, message="get waiting")
    w.must_set("sw", "late")
    expected = b"VALUE sw/t=5000/open 0 4\r\nlate\r\nEND\r\n"
    assert c.read_exact(len(expected)) == expected


def test_strict_key_longer_than_memcache_allows(strict):
    c = strict.memcache()
    c.send_line("get kl/t=" + "0" * 246)
    assert c.read_line() == b"CLIENT_ERROR key longer than 250 bytes\r\n"
    c.send_line("get kl/t=" + "0" * 245)               # 250 bytes
    assert c.read_line() == b"END\r\n"


def test_strict_noreply_set_delete_flush_all(kestrel_factory):
    srv = kestrel_factory(server=dict(STRICT), sections={"queue full": {"maxItems": 1}},
                          text=False)
    c = srv.memcache()
    c.send(b"set nr 0 0 1 noreply\r\na\r\n"
           b"set nr 0 0 1 0 noreply\r\nb\r\n"      # a 6th word that is not noreply: replied
           b"set full 0 0 1 noreply\r\nx\r\n"
           b"set full 0 0 1 noreply\r\ny\r\n"      # NOT_STORED, silenced too
           b"set bad\x00name 0 0 1 noreply\r\nz\r\n"  # CLIENT_ERROR, silenced too
           b"get nr\r\n")
    assert c.read_line() == b"STORED\r\n"
    expected = b"VALUE nr 0 1\r\na\r\nEND\r\n"
    assert c.read_exact(len(expected)) == expected
    assert c.nothing_pending()
    assert c.get_all("full") == [b"x"]
    c.send(b"delete nr noreply\r\ndelete nr2 0 noreply\r\nflush_all noreply\r\n"
           b"flush_all 0 noreply\r\nversion\r\n")
    assert c.read_line().startswith(b"VERSION ")
    assert c.nothing_pending()
    c.must_set("fa", "x")
    c.send_line("flush_all")
    assert c.read_line() == b"OK\r\n"
    c.send_line("flush_all 0")
    assert c.read_line() == b"OK\r\n"
    assert c.get("fa") is None
    c.send_line("delete fa")
    assert c.read_line() == b"DELETED\r\n"


def test_strict_mode_keeps_kestrel_commands(strict):
    c = strict.memcache()
    c.must_set("kc", "a")
    c.send_line("get kc/open")
    assert c.read_exact(len(b"VALUE kc/open 0 1\r\na\r\nEND\r\n")) == \
        b"VALUE kc/open 0 1\r\na\r\nEND\r\n"
    c.send_line("confirm kc 1")
    assert c.read_line() == b"END\r\n"
    c.send_line("flush kc")
    assert c.read_line() == b"END\r\n"
    c.send_line("flush_expired kc")
    assert c.read_line() == b"0\r\n"


# ---- real clients

def test_pymemcache_at_defaults(strict):
    client = PyMemcacheClient(("127.0.0.1", strict.memcache_port), connect_timeout=5, timeout=5)
    try:
        # pymemcache's default is noreply: set does not read a reply.
        assert client.set("jobs", b"one") is True
        assert client.set("jobs", b"two") is True
        assert client.get("jobs/open") == b"one"           # KeyError on Kestrel's reply
        assert client.get("jobs/close") is None
        assert client.get("jobs/t=100") == b"two"
        assert client.get("jobs") is None
        assert client.set("other", b"x") is True
        assert client.flush_all(noreply=False) is True
        assert client.flush_all() is True
        assert client.get("other") is None
        assert client.set("gone", b"x") is True
        assert client.delete("gone") is True
        assert client.set("kept", b"x", noreply=False) is True
        assert client.delete("kept", noreply=False) is True
    finally:
        client.close()
    c = strict.memcache()
    assert c.qstat("jobs", "items") == 0 and c.qstat("jobs", "open_transactions") == 0


def test_pymemcache_default_mode_misreads_kestrel_replies(kestrel):
    """Why strict mode exists: on Kestrel's replies pymemcache's default noreply set leaves a
    STORED behind that the next get misreads."""
    client = PyMemcacheClient(("127.0.0.1", kestrel.memcache_port), connect_timeout=5, timeout=5)
    try:
        client.set("dm", b"one")
        with pytest.raises(Exception):
            client.get("dm")
    finally:
        client.close()


def test_pylibmc(strict):
    client = pylibmc.Client(["127.0.0.1:%d" % strict.memcache_port])
    try:
        assert client.set("jobs", b"one")
        assert client.set("jobs", b"two")
        assert client.get("jobs/open") == b"one"
        assert client.get("jobs/close/open") == b"two"
        assert client.get("jobs/close") is None
        assert client.set("other", b"x")
        assert client.flush_all()
        assert client.get("other") is None
        assert client.set("gone", b"x")
        assert client.delete("gone")
    finally:
        client.disconnect_all()


def test_memcflush(strict, kestrel):
    for srv, rc in ((strict, 0), (kestrel, 1)):
        c = srv.memcache()
        c.must_set("mf", "x")
        run = subprocess.run(["memcflush", "--servers=127.0.0.1:%d" % srv.memcache_port],
                             capture_output=True, text=True, timeout=30)
        assert run.returncode == rc, run.stdout + run.stderr
        assert c.get("mf") is None       # flushed either way; only strict says OK


def test_spymemcached_under_java_ea(strict, tmp_path):
    jar = Path("/usr/share/java/spymemcached.jar")
    if not jar.exists() or not shutil.which("javac") or not shutil.which("java"):
        pytest.skip("needs javac and Debian's libspymemcached-java")
    source = Path(__file__).resolve().parent / "java" / "MemcacheStrictClient.java"
    classes = tmp_path / "classes"
    classes.mkdir()
    subprocess.run(["javac", "-nowarn", "-d", str(classes), "-cp", str(jar), str(source)],
                   check=True, timeout=80)
    run = subprocess.run(["java", "-ea", "-cp", "%s:%s" % (classes, jar), "MemcacheStrictClient",
                          "127.0.0.1", str(strict.memcache_port)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().endswith("OK"), run.stdout + run.stderr

"""kestrel-load against a real kestreld (every sub-command, small; memcache and Thrift), against a
real redis-server (--redis), and against a fake memcache server that loses or corrupts items, to
show that loss and corruption are detected."""
import json
import os
import re
import shutil
import socket
import socketserver
import subprocess
import threading
from collections import deque
from pathlib import Path

import pytest

from conftest import HOST, REPO_ROOT, RawClient, find_kestreld, free_port, port_accepts, wait_for

RUN_TIMEOUT = 60


def find_kestrel_load():
    env = os.environ.get("KESTREL_LOAD")
    if env:
        return str(Path(env).resolve())
    if os.environ.get("KESTRELD"):
        # next to the server in the same build tree: <build>/src/server/kestreld
        candidate = Path(find_kestreld()).parents[1] / "tools" / "kestrel-load"
        if candidate.exists():
            return str(candidate)
    builddir = os.environ.get("top_builddir")
    base = Path(builddir).resolve() if builddir else REPO_ROOT
    return str(base / "src" / "tools" / "kestrel-load")


def load(*args, port=None, timeout=RUN_TIMEOUT):
    cmd = [find_kestrel_load()] + [str(a) for a in args]
    if port is not None:
        cmd += ["-p", str(port)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def load_json(*args, port, expect_rc=0):
    res = load(*args, "--json", port=port)
    assert res.returncode == expect_rc, "rc %d\nstdout: %s\nstderr: %s" % (
        res.returncode, res.stdout, res.stderr)
    return json.loads(res.stdout)


def assert_clean(r, items):
    assert r["lost"] == 0 and r["corrupted"] == 0 and r["errors"] == 0, r
    assert r["puts"] == items and r["delivered"] == items, r


# ------------------------------------------------------------------------------------------
# against kestreld

FINAL = re.compile(r"^flood: (\d+) items in [0-9.]+ s: (\d+) puts/s, (\d+) gets/s; latency put "
                   r"p50=[0-9.]+ms p90=[0-9.]+ms p99=[0-9.]+ms p999=[0-9.]+ms, get p50=[0-9.]+ms "
                   r"p90=[0-9.]+ms p99=[0-9.]+ms p999=[0-9.]+ms; lost 0, duplicated 0, corrupted 0$")


def test_flood_plain_output(kestrel):
    res = load("flood", "-n", 500, "-k", 0, port=kestrel.memcache_port)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert "\r" not in res.stdout  # not a terminal: no progress line
    m = FINAL.match(lines[-1])
    assert m, lines[-1]
    assert int(m.group(1)) == 500 and int(m.group(2)) > 0


def test_flood_many_producers_consumers(kestrel):
    r = load_json("flood", "-n", 3000, "-R", 3, "-C", 3, "-r", 4, "-P", 200, "-k", 1,
                  port=kestrel.memcache_port)
    assert r["items"] == 3000
    assert r["puts"] == 3000          # prefill is not timed or counted as flood puts
    assert r["delivered"] == 3200 and r["gets"] == 3200
    assert r["lost"] == 0 and r["corrupted"] == 0 and r["duplicated"] == 0
    assert r["latency_ms"]["put"]["count"] == 3000
    assert 0 < r["latency_ms"]["put"]["p50"] <= r["latency_ms"]["put"]["p999"]
    mc = kestrel.memcache()
    assert mc.qstat("spam", "items") == 0


def test_flood_blocking_reads(kestrel):
    r = load_json("flood", "-n", 500, "-C", 4, "-B", "--block-ms", 200, "-q", "blk",
                  port=kestrel.memcache_port)
    assert_clean(r, 500)


def test_flood_item_size_in_bytes(kestrel_factory):
    srv = kestrel_factory(sections={"queue tiny": {"maxItemSize": "64B"}})
    r = load_json("flood", "-n", 50, "-b", 64, "-q", "tiny", port=srv.memcache_port)
    assert_clean(r, 50)
    r = load_json("flood", "-n", 50, "-b", 65, "-q", "tiny", port=srv.memcache_port)
    assert r["refused"] == 50 and r["puts"] == 0 and r["lost"] == 0


def test_flood_flushes_first_unless_F(kestrel):
    mc = kestrel.memcache()
    mc.must_set("spam", b"stray item")
    r = load_json("flood", "-n", 100, port=kestrel.memcache_port)
    assert_clean(r, 100)
    mc.must_set("spam", b"stray item")
    # -F keeps the stray item, which is not one of ours: counted as corrupted, exit 1
    r = load_json("flood", "-n", 100, "-F", port=kestrel.memcache_port, expect_rc=1)
    assert r["corrupted"] == 1 and r["lost"] == 0 and r["delivered"] == 100


def test_flood_spreads_connections_over_queues(kestrel):
    """flood -Q 3: producer i puts all its items into spam<i mod 3> and consumer i reads that
    queue; 4 producers of 300 items each give spam0 two producers' items, the others one."""
    r = load_json("flood", "-n", 1200, "-b", 64, "-R", 4, "-C", 3, "-Q", 3, "-r", 2,
                  port=kestrel.memcache_port)
    assert_clean(r, 1200)
    mc = kestrel.memcache()
    assert [mc.qstat(q, "total_items") for q in ("spam0", "spam1", "spam2")] == [600, 300, 300]
    assert [mc.qstat(q, "items") for q in ("spam0", "spam1", "spam2")] == [0, 0, 0]


def test_put_many_get_back(kestrel):
    r = load_json("put-many", "-c", 4, "-n", 1000, "-b", 100, "-r", 8, "-Q", 3, "-g",
                  port=kestrel.memcache_port)
    assert_clean(r, 1000)
    assert r["checked"] is True
    mc = kestrel.memcache()
    for q in ("spam0", "spam1", "spam2"):
        assert mc.qstat(q, "items") == 0
        assert mc.qstat(q, "total_items") in (333, 334)


def test_put_many_without_get_leaves_items(kestrel):
    r = load_json("put-many", "-c", 5, "-n", 250, "-b", 16, "-q", "pm",
                  port=kestrel.memcache_port)
    assert r["puts"] == 250 and r["gets"] == 0 and r["checked"] is False
    assert kestrel.memcache().qstat("pm", "items") == 250
    # -F: no flush, so the earlier 250 stay
    load_json("put-many", "-c", 1, "-n", 10, "-b", 16, "-q", "pm", "-F",
              port=kestrel.memcache_port)
    assert kestrel.memcache().qstat("pm", "items") == 260


def test_many_clients_killed_and_transactional(kestrel):
    r = load_json("many-clients", "-n", 30, "-s", 10, "-c", 10, "-k", 30, "-x",
                  "--block-ms", 300, port=kestrel.memcache_port)
    assert_clean(r, 30)
    mc = kestrel.memcache()
    assert mc.qstat("spam", "items") == 0
    assert mc.qstat("spam", "open_transactions") == 0


def test_many_clients_plain(kestrel):
    r = load_json("many-clients", "-n", 20, "-s", 5, "-c", 5, "--block-ms", 200,
                  port=kestrel.memcache_port)
    assert_clean(r, 20)


def test_packing_cycles(kestrel):
    r = load_json("packing", "-n", 300, "-c", 2, "-t", 0, "-k", 1, port=kestrel.memcache_port)
    assert r["items"] == 600
    assert_clean(r, 600)


def test_leaky_reader_every_item_confirmed(kestrel):
    res = load("leaky-reader", "-n", 300, "-d", 25, "-t", 4, "-v", port=kestrel.memcache_port)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "drops item" in res.stderr
    last = res.stdout.splitlines()[-1]
    assert last.startswith("leaky-reader: 300 items in ") and "lost 0," in last
    mc = kestrel.memcache()
    assert mc.qstat("spam", "items") == 0
    assert mc.qstat("spam", "open_transactions") == 0


def test_leaky_reader_same_seed_same_drops(kestrel):
    """Drops follow the seed. One reader takes every item in turn and draws once per item it
    gets, so the same seed drops the same number of reads however the run is timed; the seed a
    run drew for itself is in its report and repeats it."""
    args = ("leaky-reader", "-n", 200, "-d", 30, "-t", 1)
    first = load_json(*args, port=kestrel.memcache_port)
    assert isinstance(first["seed"], int) and 0 <= first["seed"] < 2 ** 32
    assert first["drops"] > 0 and first["lost"] == 0, first
    again = load_json(*args, "--seed", first["seed"], port=kestrel.memcache_port)
    assert again["seed"] == first["seed"]
    assert again["drops"] == first["drops"] and again["lost"] == 0, (first, again)
    # drawn twice from 2**32 values: another seed each run
    assert load_json(*args, port=kestrel.memcache_port)["seed"] != first["seed"]


def test_seed_in_plain_output(kestrel):
    # -x: a killed client's read was open, so the server hands its item to another
    res = load("many-clients", "-n", 5, "-s", 0, "-c", 2, "-k", 50, "-x", "--seed", 4294967295,
               "--block-ms", 100, port=kestrel.memcache_port)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines()[0].endswith(", seed 4294967295"), res.stdout


@pytest.mark.parametrize("args", [["flood", "-n", "12x"], ["flood", "-R", "0"],
                                  ["put-many", "-r", "100000"], ["nosuch"], ["flood", "extra"],
                                  ["leaky-reader", "-d", "150"], ["flood", "-q", "a/b"],
                                  ["flood", "--thrift", "--redis"],
                                  ["many-clients", "--thrift"], ["many-clients", "--redis"],
                                  ["leaky-reader", "--redis"],
                                  ["leaky-reader", "--thrift", "--abort-ms", "0"],
                                  ["flood", "--seed", "-1"], ["flood", "--seed", "4294967296"],
                                  ["leaky-reader", "--seed", "x"],
                                  ["flood", "-Q", "4", "-R", "3", "-C", "4"],
                                  ["flood", "-Q", "4", "-R", "4", "-C", "3"],
                                  ["flood", "-Q", "2", "-R", "2", "-C", "2", "-M"],
                                  ["flood", "-Q", "0"], ["flood", "--idle-ms", "0"],
                                  ["flood", "--idle-ms", "5", "-Z", "127.0.0.1:1/kestrel"]])
def test_bad_command_lines(args):
    res = load(*args)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr


def test_version_and_top_level_help():
    res = load("--version")
    assert (res.returncode, res.stdout) == (0, "kestrel-load %s\n" % kestreld_version()), res
    res = load("--help")
    assert res.returncode == 0, res
    assert res.stdout.startswith("Usage:\n  kestrel-load [OPTION...] COMMAND"), res.stdout
    for section in ("Help Options:", "Application Options:", "Commands:", "Exit status:"):
        assert "\n%s\n" % section in res.stdout, section
    res = load()
    assert res.returncode == 2 and res.stderr.startswith("Usage:"), res


def kestreld_version():
    out = subprocess.run([find_kestreld(), "--version"], capture_output=True, text=True).stdout
    return out.split()[1]


@pytest.mark.parametrize("name", ["put-many", "many-clients", "flood", "packing", "leaky-reader"])
def test_help_per_command(name):
    res = load(name, "--help")
    assert res.returncode == 0
    assert res.stdout.startswith("Usage:\n  kestrel-load %s" % name)
    assert "--no-flush" in res.stdout and "--json" in res.stdout
    assert "--thrift" in res.stdout and "--redis" in res.stdout
    assert "2229 with --thrift, 6379 with --redis" in res.stdout
    assert "\nExit status:\n" in res.stdout


def test_server_down_is_an_error():
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    res = load("flood", "-n", 10, port=port)
    assert res.returncode == 2 and "flush spam" in res.stderr


def test_wrapper_scripts(kestrel):
    env = dict(os.environ, KESTREL_LOAD=find_kestrel_load())
    res = subprocess.run([str(REPO_ROOT / "scripts" / "load" / "put-many"), "-n", "20", "-c", "2",
                          "-g", "-p", str(kestrel.memcache_port)],
                         capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[-1].startswith("put-many: 20 items in ")


# ------------------------------------------------------------------------------------------
# --thrift against kestreld's Thrift port

@pytest.fixture
def tsrv(kestrel_factory):
    return kestrel_factory(thrift=True)


def test_thrift_flood(tsrv):
    r = load_json("flood", "--thrift", "-n", 3000, "-R", 2, "-C", 2, "-k", 0, "-P", 100,
                  port=tsrv.thrift_port)
    assert r["puts"] == 3000 and r["delivered"] == 3100
    assert r["lost"] == 0 and r["corrupted"] == 0 and r["duplicated"] == 0 and r["errors"] == 0
    mc = tsrv.memcache()
    assert mc.qstat("spam", "items") == 0 and mc.qstat("spam", "total_items") == 3100


def test_thrift_flood_batched_calls(tsrv):
    # -r 100: 100 items per put call and up to 100 per get call; latency counts calls
    r = load_json("flood", "--thrift", "-n", 5000, "-r", 100, "-k", 0, port=tsrv.thrift_port)
    assert_clean(r, 5000)
    assert r["latency_ms"]["put"]["count"] == 50
    assert r["latency_ms"]["get"]["count"] < 5000


def test_thrift_flood_blocking_reads(tsrv):
    r = load_json("flood", "--thrift", "-n", 600, "-C", 3, "-r", 5, "-B", "--block-ms", 200,
                  "-q", "tblk", port=tsrv.thrift_port)
    assert_clean(r, 600)


def test_thrift_put_many_get_back(tsrv):
    r = load_json("put-many", "--thrift", "-c", 4, "-n", 1000, "-b", 100, "-r", 7, "-Q", 3, "-g",
                  port=tsrv.thrift_port)
    assert_clean(r, 1000)
    mc = tsrv.memcache()
    for q in ("spam0", "spam1", "spam2"):
        assert mc.qstat(q, "items") == 0
        assert mc.qstat(q, "total_items") in (333, 334)


def test_thrift_put_many_without_get_leaves_items(tsrv):
    r = load_json("put-many", "--thrift", "-c", 3, "-n", 250, "-b", 16, "-r", 10, "-q", "tpm",
                  port=tsrv.thrift_port)
    assert r["puts"] == 250 and r["checked"] is False
    assert tsrv.memcache().qstat("tpm", "items") == 250


def test_thrift_packing_cycles(tsrv):
    r = load_json("packing", "--thrift", "-n", 300, "-c", 2, "-t", 0, port=tsrv.thrift_port)
    assert_clean(r, 600)


def test_thrift_leaky_reader_every_dropped_item_comes_back(tsrv):
    res = load("leaky-reader", "--thrift", "-n", 300, "-d", 25, "-t", 4, "--abort-ms", 300, "-v",
               port=tsrv.thrift_port)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "(left to auto-abort)" in res.stderr
    m = re.search(r"dropped reads (\d+)", res.stdout)
    assert m and int(m.group(1)) > 0, res.stdout
    last = res.stdout.splitlines()[-1]
    assert last.startswith("leaky-reader: 300 items in ") and "lost 0," in last
    mc = tsrv.memcache()
    assert mc.qstat("spam", "items") == 0
    assert mc.qstat("spam", "open_transactions") == 0


def test_thrift_items_taken_behind_the_tools_back_are_missing(tsrv):
    """A thief blocks in a Thrift get before the run starts, so it takes the first items put:
    those were stored but never delivered to the tool, which must say so and exit 1."""
    from thrift_support import ThriftClient
    stolen = []
    with ThriftClient(tsrv.thrift_port) as thief:
        t = threading.Thread(target=lambda: stolen.extend(thief.get("spam", 5, 20000, 0)))
        t.start()
        wait_for(lambda: tsrv.memcache().qstat("spam", "waiters") == 1, message="thief waiting")
        r = load_json("flood", "--thrift", "-n", 2000, "-k", 0, "-B", "--block-ms", 100,
                      port=tsrv.thrift_port, expect_rc=1)
        t.join(30)
    assert len(stolen) == 5
    assert r["lost"] == 5 and r["delivered"] == 1995 and r["corrupted"] == 0
    res = load("flood", "--thrift", "-n", 2000, "-k", 0, "-F", "--json", port=tsrv.thrift_port)
    assert res.returncode == 0, res.stdout + res.stderr


def test_thrift_stolen_items_listed_in_plain_output(tsrv):
    from thrift_support import ThriftClient
    with ThriftClient(tsrv.thrift_port) as thief:
        t = threading.Thread(target=lambda: thief.get("spam", 3, 20000, 0))
        t.start()
        wait_for(lambda: tsrv.memcache().qstat("spam", "waiters") == 1, message="thief waiting")
        res = load("flood", "--thrift", "-n", 500, "-k", 0, "-B", "--block-ms", 100,
                   port=tsrv.thrift_port)
        t.join(30)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "missing items:" in res.stdout
    assert "lost 3," in res.stdout.splitlines()[-1]


def test_thrift_refused_puts_are_counted(kestrel_factory):
    srv = kestrel_factory(thrift=True, sections={"queue small": {"maxItems": 50}})
    r = load_json("put-many", "--thrift", "-c", 1, "-n", 100, "-r", 30, "-q", "small", "-b", 16,
                  port=srv.thrift_port)
    assert r["puts"] == 50 and r["refused"] == 50


def test_thrift_against_a_memcache_port_is_an_error(kestrel):
    # the flush's Thrift call gets a memcache error line back, not a frame
    res = load("flood", "--thrift", "-n", 10, "--timeout", 20, port=kestrel.memcache_port)
    assert res.returncode == 2 and "flush spam" in res.stderr


# ------------------------------------------------------------------------------------------
# --redis against Debian's redis-server (LPUSH/RPOP as the queue)

class Redis:
    def __init__(self, workdir):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(self.port),
             "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", str(workdir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.proc.poll() is not None or port_accepts(self.port), timeout=15,
                 message="redis-server listening")
        assert self.proc.poll() is None, "redis-server exited"

    def command(self, *words):
        """One command; the reply's first line (without CRLF)."""
        with RawClient(self.port) as c:
            req = b"*%d\r\n" % len(words)
            for w in words:
                w = w.encode() if isinstance(w, str) else w
                req += b"$%d\r\n%s\r\n" % (len(w), w)
            c.send(req)
            return c.read_line().rstrip(b"\r\n").decode()

    def llen(self, key):
        return int(self.command("LLEN", key)[1:])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(15)


@pytest.fixture
def redis(tmp_path):
    r = Redis(tmp_path)
    yield r
    r.stop()


def test_redis_flood_pipelined(redis):
    r = load_json("flood", "--redis", "-n", 3000, "-R", 2, "-C", 2, "-r", 8, "-k", 1,
                  port=redis.port)
    assert_clean(r, 3000)
    assert r["duplicated"] == 0
    assert redis.llen("spam") == 0


def test_redis_flood_blocking_reads(redis):
    r = load_json("flood", "--redis", "-n", 500, "-C", 3, "-B", "--block-ms", 200, "-q", "rblk",
                  port=redis.port)
    assert_clean(r, 500)


def test_redis_put_many_round_trip(redis):
    r = load_json("put-many", "--redis", "-c", 4, "-n", 900, "-b", 64, "-r", 4, "-Q", 3, "-g",
                  port=redis.port)
    assert_clean(r, 900)
    assert [redis.llen("spam%d" % i) for i in range(3)] == [0, 0, 0]


def test_redis_put_many_leaves_items_and_flushes_first(redis):
    redis.command("LPUSH", "rpm", "stray")
    r = load_json("put-many", "--redis", "-c", 2, "-n", 120, "-b", 16, "-q", "rpm",
                  port=redis.port)
    assert r["puts"] == 120
    assert redis.llen("rpm") == 120  # the stray item went with the flush (DEL)


def test_redis_error_reply_fails_the_run(redis):
    redis.command("SET", "str", "not a list")
    # -F keeps the string: every LPUSH gets WRONGTYPE, an unexpected reply
    r = load_json("flood", "--redis", "-n", 20, "-F", "-q", "str", "--timeout", 20,
                  port=redis.port, expect_rc=1)
    assert r["errors"] >= 1 and r["puts"] == 0


# ------------------------------------------------------------------------------------------
# a faulty server: kestrel-load must notice

class FakeMemcache(socketserver.ThreadingTCPServer):
    """Answers STORED to every set, but forgets every `drop_every`-th item and flips one byte
    of the `corrupt_at`-th item handed out. With `keep`, a get returns the key's latest value
    and leaves it there, as memcached does."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, drop_every=0, corrupt_at=0, fail_at=0, keep=False):
        super().__init__((HOST, 0), FakeHandler)
        self.keep = keep
        self.lock = threading.Lock()
        self.queues = {}
        self.sets = 0
        self.gets = 0
        self.drop_every = drop_every
        self.corrupt_at = corrupt_at
        self.fail_at = fail_at
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self):
        return self.server_address[1]

    def stop(self):
        self.shutdown()
        self.server_close()


class FakeHandler(socketserver.StreamRequestHandler):
    timeout = 30

    def handle(self):
        srv = self.server
        while True:
            line = self.rfile.readline()
            if not line:
                return
            words = line.split()
            if not words:
                continue
            cmd = words[0].lower()
            if cmd == b"set":
                data = self.rfile.read(int(words[4]) + 2)[:-2]
                with srv.lock:
                    srv.sets += 1
                    if srv.sets == srv.fail_at:
                        self.wfile.write(b"SERVER_ERROR out of luck\r\n")
                        return
                    if not (srv.drop_every and srv.sets % srv.drop_every == 0):
                        srv.queues.setdefault(words[1], deque()).append(data)
                self.wfile.write(b"STORED\r\n")
            elif cmd == b"get":
                name = words[1].split(b"/")[0]
                with srv.lock:
                    q = srv.queues.get(name)
                    data = (q[-1] if srv.keep else q.popleft()) if q else None
                    if data is not None:
                        srv.gets += 1
                        if srv.gets == srv.corrupt_at:
                            data = data[:-1] + bytes([data[-1] ^ 0x20])
                if data is None:
                    self.wfile.write(b"END\r\n")
                else:
                    self.wfile.write(b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (name, len(data), data))
            elif cmd == b"flush":
                with srv.lock:
                    srv.queues.pop(words[1], None)
                self.wfile.write(b"END\r\n")
            else:
                self.wfile.write(b"ERROR\r\n")


@pytest.fixture
def fake_factory():
    servers = []

    def make(**kw):
        srv = FakeMemcache(**kw)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop()


def test_lost_items_are_reported(fake_factory):
    fake = fake_factory(drop_every=10)
    res = load("flood", "-n", 200, "-k", 0, port=fake.port)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "lost 20," in res.stdout.splitlines()[-1]
    assert "missing items:" in res.stdout


def test_lost_items_json_put_many(fake_factory):
    fake = fake_factory(drop_every=10)
    r = load_json("put-many", "-c", 2, "-n", 100, "-b", 32, "-g", port=fake.port, expect_rc=1)
    assert r["puts"] == 100 and r["lost"] == 10 and r["delivered"] == 90


def test_corrupted_item_is_reported(fake_factory):
    fake = fake_factory(corrupt_at=7)
    r = load_json("flood", "-n", 50, "-k", 1, port=fake.port, expect_rc=1)
    assert r["corrupted"] == 1
    # the corrupted copy was the only one handed out: that item is also missing
    assert r["lost"] == 1 and r["delivered"] == 49


def test_flood_idle_ms_against_a_server_that_keeps_items(fake_factory):
    """Against a server that hands out its latest item forever, flood's consumers see no new
    item once the producers are done, and stop after --idle-ms of that (default 2 s). The 5
    items put before the flood (-P) replace each other unread, so some are always missing and
    only the wait ends the run."""
    fake = fake_factory(keep=True)
    r = load_json("flood", "-n", 30, "-P", 5, "-b", 32, "--idle-ms", 2500, port=fake.port,
                  expect_rc=1)
    assert r["seconds"] >= 2.5 and r["puts"] == 30 and r["lost"] >= 4
    r = load_json("flood", "-n", 30, "-P", 5, "-b", 32, "--idle-ms", 50, port=fake.port,
                  expect_rc=1)
    assert r["seconds"] < 2 and r["puts"] == 30 and r["lost"] >= 4


def test_server_error_counts_and_ends(fake_factory):
    fake = fake_factory(fail_at=5)
    r = load_json("flood", "-n", 40, "-k", 0, "--timeout", 20, port=fake.port, expect_rc=1)
    assert r["errors"] == 1 and r["seconds"] < 10
    # the producer gave up at the failed set: what it stored was all delivered
    assert r["puts"] == 4 and r["delivered"] == 4 and r["lost"] == 0

"""ZooKeeper server sets (docs/cluster.md) against a real ZooKeeper: the member data Kestrel
2.4's clients read, membership following the status in Kestrel's order, and sessions that
survive ZooKeeper restarts, expiry and a killed kestreld."""
import ipaddress
import json
import re
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from conftest import FREE_PORT, wait_for
from test_load import find_kestrel_load
import zookeeper_support
from zookeeper_support import ZooKeeperServer, members

# ZooKeeper and the JVM clients share the cores with the other tests running beside these
# (pytest-xdist) and, under ASan, a slower kestreld: registrations get a generous deadline.
ZK_WAIT = 30

pytestmark = pytest.mark.skipif(zookeeper_support.missing_reason() is not None,
                                reason=str(zookeeper_support.missing_reason()))


@pytest.fixture(scope="module")
def zookeeper(tmp_path_factory):
    zk = ZooKeeperServer(tmp_path_factory.mktemp("zookeeper")).start()
    yield zk
    zk.stop()


@pytest.fixture
def zk_client(zookeeper):
    client = zookeeper.client()
    yield client
    client.stop()
    client.close()


def zk_section(zookeeper, prefix, **extra):
    section = {"host": "127.0.0.1", "port": zookeeper.port, "pathPrefix": prefix}
    section.update(extra)
    return {"zookeeper": section}


def start_member(kestrel_factory, zookeeper, prefix, server=None, thrift=True, text=True,
                 **extra):
    opts = {"statusFile": "status"}
    opts.update(server or {})
    return kestrel_factory(server=opts, thrift=thrift, text=text,
                           sections=zk_section(zookeeper, prefix, **extra))


def sets(zk, prefix):
    return members(zk, prefix + "/read"), members(zk, prefix + "/write")


def counts(zk, prefix):
    read, write = sets(zk, prefix)
    return len(read), len(write)


def stat(srv, name):
    with srv.memcache() as mc:
        return mc.stat(name)


def answer(srv, line):
    """The first reply line to `line` on a connection of its own (a refusal closes it)."""
    with srv.memcache() as mc:
        mc.send(line.encode() + b"\r\n")
        return mc.read_line()


def write_refused(srv):
    return answer(srv, "set q 0 0 1\r\nx").startswith(b"SERVER_ERROR")


def read_refused(srv):
    return answer(srv, "get q").startswith(b"SERVER_ERROR")


def test_member_data_is_twitter_server_set_json(kestrel_factory, zookeeper, zk_client):
    srv = start_member(kestrel_factory, zookeeper, "/kestrel/json/prod",
                       server={"adminHttpPort": FREE_PORT})
    admin_port = srv.admin_port
    wait_for(lambda: counts(zk_client, "/kestrel/json/prod") == (1, 1), ZK_WAIT, 0.05, "both sets")
    read, write = sets(zk_client, "/kestrel/json/prod")
    for nodes, name in ((read, "read"), (write, "write")):
        (node, data), = nodes.items()
        assert re.fullmatch(r"member_\d{10}", node), node
        stat_ = zk_client.exists("/kestrel/json/prod/%s/%s" % (name, node))
        assert stat_.ephemeralOwner != 0, "member nodes are ephemeral"
        member = json.loads(data)
        assert list(member) == ["serviceEndpoint", "additionalEndpoints", "status"]
        host = member["serviceEndpoint"]["host"]
        # listenAddress is loopback: the machine's own address is advertised instead
        address = ipaddress.ip_address(host)
        assert not address.is_loopback and not address.is_unspecified, host
        assert member["serviceEndpoint"] == {"host": host, "port": srv.memcache_port}
        assert member["additionalEndpoints"] == {
            "memcache": {"host": host, "port": srv.memcache_port},
            "thrift": {"host": host, "port": srv.thrift_port},
            "text": {"host": host, "port": srv.text_port},
        }
        assert member["status"] == "ALIVE"
    assert list(read.values()) == list(write.values())
    with srv.memcache() as mc:
        stats = dict(mc.stats())
    assert stats["zookeeper_connected"] == "1"
    assert stats["zookeeper_registered"] == "1"
    assert stats["zookeeper_read_member"] == "1" and stats["zookeeper_write_member"] == "1"
    assert stats["zookeeper_sessions"] == "1"
    base = "http://127.0.0.1:%d" % admin_port
    with urllib.request.urlopen(base + "/kestreld/stats.json", timeout=5) as reply:
        server = json.loads(reply.read())["server"]
    assert server["zookeeper_connected"] == 1 and server["zookeeper_registered"] == 1
    with urllib.request.urlopen(base + "/stats.json", timeout=5) as reply:
        ostrich = json.loads(reply.read())
    assert ostrich["gauges"]["zookeeper_connected"] == 1, ostrich["gauges"]
    with urllib.request.urlopen(base + "/metrics", timeout=5) as reply:
        metrics = reply.read().decode()
    assert re.search(r"^\S*zookeeper_registered\S* 1$", metrics, re.M), metrics
    assert re.search(r"^\S*zookeeper_reconnects\S* 0$", metrics, re.M), metrics


def test_advertise_address_and_shard(kestrel_factory, zookeeper, zk_client):
    srv = start_member(kestrel_factory, zookeeper, "/kestrel/shard", thrift=False,
                       advertiseAddress="10.1.2.3", shard=7)
    wait_for(lambda: counts(zk_client, "/kestrel/shard") == (1, 1), ZK_WAIT, 0.05, "both sets")
    member = json.loads(next(iter(sets(zk_client, "/kestrel/shard")[1].values())))
    assert member == {
        "serviceEndpoint": {"host": "10.1.2.3", "port": srv.memcache_port},
        "additionalEndpoints": {"memcache": {"host": "10.1.2.3", "port": srv.memcache_port},
                                "text": {"host": "10.1.2.3", "port": srv.text_port}},
        "status": "ALIVE",
        "shard": 7,
    }


def test_status_moves_membership_in_kestrels_order(kestrel_factory, zookeeper, zk_client):
    prefix = "/kestrel/status"
    srv = start_member(kestrel_factory, zookeeper, prefix)
    wait_for(lambda: counts(zk_client, prefix) == (1, 1), ZK_WAIT, 0.05, "both sets")
    mc = srv.memcache()

    # Stricter: ZooKeeper first. While ZooKeeper cannot answer, writes still go through.
    zookeeper.pause()
    try:
        assert mc.request("status readonly") == b"END\r\n"
        mc.must_set("q", "before the write set is left")
    finally:
        zookeeper.resume()
    wait_for(lambda: counts(zk_client, prefix) == (1, 0), ZK_WAIT, 0.05, "write set left")
    wait_for(lambda: write_refused(srv), ZK_WAIT, 0.05, "writes refused")
    assert srv.memcache().get("q") == b"before the write set is left", "reads go on"
    mc = srv.memcache()

    # Looser: the change first, then ZooKeeper.
    zookeeper.pause()
    try:
        assert mc.request("status up") == b"END\r\n"
        mc.must_set("q", "accepted before the write set is joined")
    finally:
        zookeeper.resume()
    wait_for(lambda: counts(zk_client, prefix) == (1, 1), ZK_WAIT, 0.05, "write set joined again")

    assert mc.request("status quiescent") == b"END\r\n"
    wait_for(lambda: counts(zk_client, prefix) == (0, 0), ZK_WAIT, 0.05, "both sets left")
    wait_for(lambda: read_refused(srv) and stat(srv, "zookeeper_registered") == "1", ZK_WAIT, 0.05,
             "reads refused, membership as the status says")
    mc = srv.memcache()
    log = srv.stderr_text()
    assert log.index("left the write server set") < log.index("status QUIESCENT now enforced")

    # Shutdown: both sets left before the listeners close.
    assert mc.request("status up") == b"END\r\n"
    wait_for(lambda: counts(zk_client, prefix) == (1, 1), ZK_WAIT, 0.05, "both sets joined")
    srv.stop()
    assert counts(zk_client, prefix) == (0, 0)
    log = srv.stderr_text().rsplit("received SIGTERM", 1)[1]
    assert log.index("left the read server set") < log.index("shutting down")
    assert log.index("left the write server set") < log.index("shutting down")


def test_serves_without_zookeeper_and_rejoins_after_its_restart(kestrel_factory, tmp_path):
    zookeeper = ZooKeeperServer(tmp_path / "zk")  # not started yet
    srv = start_member(kestrel_factory, zookeeper, "/kestrel/restart", sessionTimeout="3s")
    try:
        mc = srv.memcache()
        mc.must_set("q", "served while ZooKeeper is down")
        assert mc.stat("zookeeper_connected") == "0"
        zookeeper.start()
        zk = zookeeper.client()
        wait_for(lambda: counts(zk, "/kestrel/restart") == (1, 1), 15, 0.05, "joined")
        zk.stop()
        zk.close()
        zookeeper.kill()
        wait_for(lambda: mc.stat("zookeeper_connected") == "0", 15, 0.05, "disconnected")
        assert mc.get("q") == b"served while ZooKeeper is down"
        zookeeper.start()
        zk = zookeeper.client()
        wait_for(lambda: counts(zk, "/kestrel/restart") == (1, 1)
                 and mc.stat("zookeeper_registered") == "1", 15, 0.05, "joined again")
        zk.stop()
        zk.close()
        log = srv.stderr_text()
        assert log.count("zookeeper: connection to %s lost" % zookeeper.address) == 1
    finally:
        zookeeper.stop()


def test_session_expiry_rejoins(kestrel_factory, zookeeper, zk_client):
    prefix = "/kestrel/expiry"
    srv = start_member(kestrel_factory, zookeeper, prefix, sessionTimeout="1s")
    wait_for(lambda: counts(zk_client, prefix) == (1, 1), ZK_WAIT, 0.05, "both sets")
    srv.proc.send_signal(signal.SIGSTOP)  # ZooKeeper hears nothing: it expires the session
    try:
        wait_for(lambda: counts(zk_client, prefix) == (0, 0), 15, 0.05, "session expired")
    finally:
        srv.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: counts(zk_client, prefix) == (1, 1), 15, 0.05, "joined with a new session")
    with srv.memcache() as mc:
        stats = dict(mc.stats())
    assert stats["zookeeper_session_expirations"] == "1"
    assert stats["zookeeper_sessions"] == "2"
    assert srv.stderr_text().count("session expired") == 1


def test_killed_server_leaves_when_its_session_lapses(kestrel_factory, zookeeper, zk_client):
    prefix = "/kestrel/kill9"
    srv = start_member(kestrel_factory, zookeeper, prefix, sessionTimeout="1s")
    wait_for(lambda: counts(zk_client, prefix) == (1, 1), ZK_WAIT, 0.05, "both sets")
    srv.kill9()
    wait_for(lambda: counts(zk_client, prefix) == (0, 0), 15, 0.05, "nodes gone with the session")


def test_cluster_load_follows_a_server_out_of_rotation_and_back(kestrel_factory, zookeeper,
                                                               zk_client):
    """kestrel-load --zookeeper moves numbered items through three servers with reliable reads
    while one is set READONLY, stopped and restarted on its spool: every item is consumed
    exactly once and none is refused."""
    prefix = "/kestrel/cluster"
    # Each phase waits for a fixed number of new puts; the flood must outlast them all, and the
    # second of grace before READONLY is enforced alone takes as many items as the flood puts
    # in a second, so the total is far above their sum.
    items, step = 600000, 10000
    servers = [start_member(kestrel_factory, zookeeper, prefix, thrift=False, text=False,
                            server={"statusChangeGracePeriod": "1s"},
                            advertiseAddress="127.0.0.1") for _ in range(3)]
    wait_for(lambda: counts(zk_client, prefix) == (3, 3), 15, 0.05, "three members")
    load = subprocess.Popen(
        [find_kestrel_load(), "flood", "--zookeeper", zookeeper.address + prefix,
         "-n", str(items), "-R", "6", "-C", "12", "-x", "-B", "--block-ms", "100", "-b", "64",
         "-q", "cluster", "--timeout", "150", "--spread", "random", "--seed", "12"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    leaving, staying = servers[2], servers[:2]

    def stored(srvs):
        total = 0
        for srv in srvs:
            with srv.memcache() as mc:
                total += mc.qstat("cluster", "total_items") or 0
        return total

    try:
        wait_for(lambda: stored(servers) >= 2 * step, 60, 0.02, "the load under way")
        assert answer(leaving, "status readonly") == b"END\r\n"
        wait_for(lambda: counts(zk_client, prefix) == (3, 2), ZK_WAIT, 0.02, "out of the write set")
        wait_for(lambda: "status READONLY now enforced" in leaving.stderr_text(), ZK_WAIT, 0.02,
                 "READONLY enforced after the grace period")
        progress = stored(staying)
        wait_for(lambda: stored(staying) >= progress + 2 * step, 60, 0.02, "more puts")
        leaving.stop()
        assert counts(zk_client, prefix) == (2, 2)
        progress = stored(staying)
        wait_for(lambda: stored(staying) >= progress + step, 60, 0.02, "puts without it")
        leaving.start()
        wait_for(lambda: counts(zk_client, prefix) == (3, 2), ZK_WAIT, 0.02, "back as a reader")
        out, err = load.communicate(timeout=160)
    finally:
        if load.poll() is None:
            load.kill()
            load.communicate()
    assert load.returncode == 0, out + err
    assert "flood: put %d (refused 0)" % items in out, out
    assert "delivered %d, errors 0" % items in out, out
    assert "lost 0, duplicated 0, corrupted 0" in out, out
    spread = re.findall(r"flood: server 127\.0\.0\.1:(\d+): put (\d+), got (\d+) \(now in: (.*)\)",
                        out)
    assert sorted(int(port) for port, _, _, _ in spread) == sorted(s.memcache_port for s in servers)
    assert all(int(put) > 0 and int(got) > 0 for _, put, got, _ in spread), out
    assert sum(int(put) for _, put, _, _ in spread) == items
    assert sum(int(got) for _, _, got, _ in spread) == items
    assert dict((int(port), sets_) for port, _, _, sets_ in spread)[leaving.memcache_port] == "read"
    for srv in servers:
        with srv.memcache() as mc:
            assert mc.qstat("cluster", "items") == 0
            assert mc.qstat("cluster", "open_transactions") == 0


def test_cluster_load_with_consistent_hashing(kestrel_factory, zookeeper, zk_client):
    prefix = "/kestrel/hashing"
    servers = [start_member(kestrel_factory, zookeeper, prefix, thrift=False, text=False,
                            advertiseAddress="127.0.0.1") for _ in range(2)]
    wait_for(lambda: counts(zk_client, prefix) == (2, 2), 15, 0.05, "two members")
    res = subprocess.run(
        [find_kestrel_load(), "flood", "--zookeeper", zookeeper.address + prefix, "-n", "3000",
         "-R", "8", "-C", "8", "-x", "-B", "--block-ms", "100", "-b", "64", "-q", "hashed",
         "--timeout", "30", "--spread", "hash", "--json"],
        capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    summary, per_server = [json.loads(line) for line in res.stdout.splitlines()]
    assert summary["delivered"] == 3000 and summary["duplicated"] == 0
    assert sorted(int(s["server"].split(":")[1]) for s in per_server["servers"]) == \
        sorted(s.memcache_port for s in servers)
    assert sum(s["puts"] for s in per_server["servers"]) == 3000
    assert sum(s["gets"] for s in per_server["servers"]) == 3000
    assert all(s["read"] and s["write"] for s in per_server["servers"])


def test_creator_acl_with_digest_credentials(kestrel_factory, zookeeper, zk_client):
    # A root of its own: the parents kestreld creates take the same ACL, and a shared /kestrel
    # made here first would refuse the other tests' members (they run in any order).
    prefix = "/kestrel-acl/members"
    start_member(kestrel_factory, zookeeper, prefix, thrift=False, acl="creator",
                 credentials="kestrel:secret")
    wait_for(lambda: counts(zk_client, prefix) == (1, 1), ZK_WAIT, 0.05, "both sets")
    from kazoo.exceptions import NoAuthError
    node = prefix + "/write/" + next(iter(members(zk_client, prefix + "/write")))
    acls = zk_client.get_acls(node)[0]
    # ZooKeeper shows the digest only to its owner: "kestrel:x" to others
    assert sorted((a.id.scheme, a.id.id.split(":")[0], a.perms) for a in acls) == [
        ("digest", "kestrel", 31),
        ("world", "anyone", 1),
    ]
    with pytest.raises(NoAuthError):
        zk_client.delete(node)  # everyone reads, only the creator changes


def test_java_server_set_reader_decodes_the_members(kestrel_factory, zookeeper, zk_client,
                                                    tmp_path):
    """ZooKeeper's Java client and a strict decoder of Twitter's ServiceInstance JSON, as the
    JVM clients of Kestrel clusters read server sets."""
    import shutil
    if not shutil.which("javac"):
        pytest.skip("needs javac (Debian package default-jdk-headless)")
    prefix = "/kestrel/java"
    srv = start_member(kestrel_factory, zookeeper, prefix, advertiseAddress="127.0.0.1", shard=2)
    wait_for(lambda: counts(zk_client, prefix) == (1, 1), ZK_WAIT, 0.05, "both sets")
    source = Path(__file__).resolve().parent / "java" / "ServerSetReader.java"
    classpath = str(zookeeper_support.ZOOKEEPER_JAR)  # its manifest brings Jackson along
    subprocess.run(["javac", "-nowarn", "-d", str(tmp_path), "-cp", classpath, str(source)],
                   check=True, capture_output=True, timeout=120)
    run = subprocess.run(["java", "-cp", "%s:%s" % (tmp_path, classpath), "ServerSetReader",
                          zookeeper.address, prefix + "/read", prefix + "/write"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    endpoints = "127.0.0.1:%d memcache=127.0.0.1:%d text=127.0.0.1:%d thrift=127.0.0.1:%d" % (
        srv.memcache_port, srv.memcache_port, srv.text_port, srv.thrift_port)
    assert run.stdout.splitlines() == [
        "%s/read member_0000000000 %s ALIVE shard=2" % (prefix, endpoints),
        "%s/write member_0000000000 %s ALIVE shard=2" % (prefix, endpoints),
    ]

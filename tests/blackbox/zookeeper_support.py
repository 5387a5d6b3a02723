"""A real ZooKeeper server (Debian's `zookeeper` package) for the server-set tests: standalone,
on a loopback port, with its data in a temporary folder, started in the foreground."""
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from loopback import HOST, free_port, port_accepts

ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")  # its manifest names its dependencies
START_TIMEOUT = 30.0

# A short tick lets the tests ask for short sessions (ZooKeeper allows 2 to 20 ticks).
ZOO_CFG = """tickTime=250
dataDir={data}
clientPort={port}
clientPortAddress={host}
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=srvr
"""


def missing_reason():
    """Why these tests cannot run here, or None."""
    java = shutil.which("java")
    if java is None or not ZOOKEEPER_JAR.exists():
        return "ZooKeeper server not installed (Debian package zookeeper)"
    try:
        import kazoo  # noqa: F401
    except ImportError:
        return "python3-kazoo not installed"
    return None


class ZooKeeperServer:
    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.data = self.workdir / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.cfg = self.workdir / "zoo.cfg"
        self.cfg.write_text(ZOO_CFG.format(data=self.data, port=self.port, host=HOST))
        self.log = self.workdir / "zookeeper.log"
        self.proc = None

    @property
    def address(self):
        return "%s:%d" % (HOST, self.port)

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["java", "-Xmx128m", "-XX:TieredStopAtLevel=1", "-Dzookeeper.jmx.log4j.disable=true",
                 "-cp", str(ZOOKEEPER_JAR), "org.apache.zookeeper.server.ZooKeeperServerMain",
                 str(self.cfg)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=str(self.workdir))
        deadline = time.monotonic() + START_TIMEOUT
        while not self.serving():
            assert self.proc.poll() is None, "ZooKeeper exited:\n" + self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "ZooKeeper did not start"
            time.sleep(0.05)
        return self

    def serving(self):
        """ZooKeeper accepts connections before it serves them; "srvr" tells (it answers
        "not currently serving requests" until then)."""
        if not port_accepts(self.port):
            return False
        try:
            with socket.create_connection((HOST, self.port), timeout=1.0) as s:
                s.sendall(b"srvr")
                reply = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    reply += chunk
                return b"Mode: standalone" in reply
        except OSError:
            return False

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def client(self):
        from kazoo.client import KazooClient
        # retry often: a ZooKeeper that has just started may turn the first attempts away
        zk = KazooClient(hosts=self.address, timeout=10.0,
                         connection_retry={"max_tries": -1, "delay": 0.05, "max_delay": 0.5})
        zk.start(timeout=30.0)
        return zk


def members(zk, path):
    """{child name: data as text} of a server set, {} when the set does not exist."""
    from kazoo.exceptions import NoNodeError
    try:
        children = zk.get_children(path)
    except NoNodeError:
        return {}
    out = {}
    for child in children:
        try:
            out[child] = zk.get(path + "/" + child)[0].decode()
        except NoNodeError:
            pass
    return out

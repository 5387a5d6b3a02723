"""Black-box fixtures for kestreld: start a real server on free loopback ports, talk raw sockets.

Environment:
  KESTRELD      path of the server binary (default <top_builddir>/src/server/kestreld)
  KESTRELD_WORKER_THREADS  workerThreads of every server the tests start (default: the
                server's own default, one per core)
  top_builddir  build tree (default: the repository root, two levels above this file)
"""
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from loopback import HOST, free_port, port_accepts  # noqa: F401 (used by the tests too)

IO_TIMEOUT = 5.0          # every socket read/write gives up after this long
START_TIMEOUT = 15.0      # server must accept connections within this long
STOP_TIMEOUT = 15.0       # server must exit within this long after SIGTERM / shutdown
TEST_TIMEOUT = 90         # hard limit for one test (SIGALRM)

REPO_ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------------------------
# helpers

def journal_records(data):
    """The whole records at the start of journal bytes (SPEC 7). A running server's live file
    also holds space reserved after its last record; this leaves that out."""
    pos = 0
    while pos < len(data):
        op, rest = data[pos], len(data) - pos - 1
        if op in (1, 3):                          # REMOVE, REMOVE_TENTATIVE
            size = 1
        elif op in (4, 5, 6, 9):                  # an xid
            size = 5
        elif op in (0, 2, 7, 8) and rest >= 4:    # a sized block, after an xid for 7 and 8
            skip = 5 if op in (7, 8) else 1
            if len(data) - pos < skip + 4:
                break
            (length,) = struct.unpack_from("<i", data, pos + skip)
            if length < (4 if op == 0 else 16):
                break
            size = skip + 4 + length
        else:
            break
        if pos + size > len(data):
            break
        pos += size
    return data[:pos]


def find_kestreld():
    env = os.environ.get("KESTRELD")
    if env:
        return str(Path(env).resolve())
    builddir = os.environ.get("top_builddir")
    base = Path(builddir).resolve() if builddir else REPO_ROOT
    return str(base / "src" / "server" / "kestreld")


def wait_for(predicate, timeout=5.0, interval=0.01, message="condition"):
    """Poll predicate() until it returns a truthy value; return that value or fail at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last value %r)"
                                 % (timeout, message, last))
        time.sleep(interval)


def server_side_socket(pid, client):
    """A duplicate of the server's end of `client`'s TCP connection, taken from process `pid`
    with pidfd_getfd(2), so a test can read the options the server set on its socket. The
    server must have accepted the connection (make one round trip first)."""
    import ctypes
    local_port, server_port = client.getsockname()[1], client.getpeername()[1]
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if (int(parts[1].rsplit(":", 1)[1], 16) == server_port and
                    int(parts[2].rsplit(":", 1)[1], 16) == local_port):
                inode = parts[9]
    assert inode is not None, "no server side for local port %d" % local_port
    fds = [int(fd) for fd in os.listdir("/proc/%d/fd" % pid)
           if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "socket:[%s]" % inode]
    assert fds, "process %d holds no socket for local port %d" % (pid, local_port)
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        dup = libc.syscall(438, pidfd, fds[0], 0)  # SYS_pidfd_getfd, the same on every arch
    finally:
        os.close(pidfd)
    assert dup >= 0, "pidfd_getfd: %s" % os.strerror(ctypes.get_errno())
    return socket.socket(fileno=dup)


class ConnectionClosed(AssertionError):
    pass


class RawClient:
    """A byte-exact line client over a plain TCP socket. Every operation has a timeout."""

    EOL = b"\r\n"

    def __init__(self, port, host=HOST, timeout=IO_TIMEOUT):
        self.port = port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.timeout = timeout

    # --- low level
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def send_line(self, line):
        if isinstance(line, str):
            line = line.encode()
        self.send(line + self.EOL)

    def _fill(self, timeout=None):
        """Read more bytes into the buffer; raise ConnectionClosed on EOF."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        finally:
            if timeout is not None:
                self.sock.settimeout(self.timeout)
        if not chunk:
            raise ConnectionClosed("connection closed by server (buffered: %r)" % self.buf[:200])
        self.buf += chunk

    def read_exact(self, n, timeout=None):
        while len(self.buf) < n:
            self._fill(timeout)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_line(self, timeout=None):
        """One line including its terminator (b'\\n', so b'\\r\\n' lines end with both bytes)."""
        while b"\n" not in self.buf:
            self._fill(timeout)
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def read_until(self, marker, timeout=None):
        while marker not in self.buf:
            self._fill(timeout)
        i = self.buf.index(marker) + len(marker)
        data, self.buf = self.buf[:i], self.buf[i:]
        return data

    def read_all_until_close(self, timeout=None, limit=1 << 20):
        """Everything the server sends until it closes the connection."""
        data = self.buf
        self.buf = b""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("server did not close the connection (received %r)"
                                     % data[:200])
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            except socket.timeout:
                raise AssertionError("server did not close the connection (received %r)"
                                     % data[:200])
            if not chunk:
                return data
            data += chunk
            if len(data) > limit:
                raise AssertionError("too much data before close")

    def assert_closed(self, timeout=None):
        rest = self.read_all_until_close(timeout)
        assert rest == b"", "expected the connection to close, got %r" % rest[:200]

    def nothing_pending(self, wait=0.05):
        """True if the server has sent nothing within `wait` seconds (connection still open)."""
        if self.buf:
            return False
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return True
        finally:
            self.sock.settimeout(self.timeout)
        if chunk:
            self.buf += chunk
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class MemcacheClient(RawClient):
    """Raw memcache-protocol client with byte-checking helpers."""

    EOL = b"\r\n"

    def request(self, line):
        self.send_line(line)
        return self.read_line()

    def set(self, queue, data, exptime=0, flags=0):
        """Send a set; return the raw response line (e.g. b'STORED\\r\\n')."""
        if isinstance(data, str):
            data = data.encode()
        if isinstance(queue, str):
            queue = queue.encode()
        self.send(b"set %s %d %d %d\r\n%s\r\n" % (queue, flags, exptime, len(data), data))
        return self.read_line()

    def must_set(self, queue, data, exptime=0):
        resp = self.set(queue, data, exptime)
        assert resp == b"STORED\r\n", "set %s: %r" % (queue, resp)

    def read_value(self, key, timeout=None):
        """Read one get response: the data of the VALUE block, or None for END. Checks bytes."""
        if isinstance(key, str):
            key = key.encode()
        line = self.read_line(timeout)
        if line == b"END\r\n":
            return None
        m = re.fullmatch(rb"VALUE (\S+) (\d+) (\d+)\r\n", line)
        assert m, "expected VALUE or END, got %r" % line
        assert m.group(1) == key, "VALUE echoes %r, expected queue name %r" % (m.group(1), key)
        assert m.group(2) == b"0", "flags must be 0, got %r" % m.group(2)
        n = int(m.group(3))
        data = self.read_exact(n + 2)
        assert data[-2:] == b"\r\n", "data block not terminated by CRLF: %r" % data[-10:]
        end = self.read_line(timeout)
        assert end == b"END\r\n", "expected END after VALUE block, got %r" % end
        return data[:-2]

    def get(self, queue, options="", timeout=None):
        """get <queue>[options]; options like '/open' or '/t=100/open'. Returns data or None."""
        self.send_line("get %s%s" % (queue, options))
        return self.read_value(queue, timeout)

    def get_all(self, queue, limit=100000):
        items = []
        while len(items) < limit:
            v = self.get(queue)
            if v is None:
                break
            items.append(v)
        return items

    def stats(self):
        """Ordered list of (name, value) pairs of `stats`."""
        self.send_line("stats")
        pairs = []
        while True:
            line = self.read_line()
            if line == b"END\r\n":
                return pairs
            m = re.fullmatch(rb"STAT (\S+) (.*)\r\n", line)
            assert m, "bad stats line %r" % line
            pairs.append((m.group(1).decode(), m.group(2).decode()))

    def stat(self, name):
        return dict(self.stats()).get(name)

    def qstat(self, queue, name):
        value = dict(self.stats()).get("queue_%s_%s" % (queue, name))
        return None if value is None else int(value)

    def block(self, command):
        """Send a command whose answer ends with END; return the lines before END (no CRLF)."""
        self.send_line(command)
        lines = []
        while True:
            line = self.read_line()
            assert line.endswith(b"\r\n"), "line not CRLF-terminated: %r" % line
            if line == b"END\r\n":
                return lines
            lines.append(line[:-2].decode())


class TextClient(RawClient):
    """Raw text-protocol client (lines end in \\n)."""

    EOL = b"\n"

    def request(self, line):
        self.send_line(line)
        return self.read_line()

    def put(self, queue, items, expiry=None):
        head = "put %s%s:" % (queue, "" if expiry is None else " %d" % expiry)
        body = b"".join((i.encode() if isinstance(i, str) else i) + b"\n" for i in items)
        self.send(head.encode() + b"\n" + body + b"\n")
        return self.read_line()


# ----------------------------------------------------------------------------------------------
# the server handle

def _format_sections(sections):
    out = []
    for name, keys in (sections or {}).items():
        out.append("[%s]" % name)
        for k, v in keys.items():
            if isinstance(v, bool):
                v = "true" if v else "false"
            out.append("%s=%s" % (k, v))
        out.append("")
    return "\n".join(out)


class _PortTaken(AssertionError):
    pass


# A server option given this value (for example adminHttpPort) gets a free port from the
# fixture, which picks another one and starts again if some other process took it first.
FREE_PORT = "free-port"


class Kestreld:
    """One kestreld process with its own config file, spool folder and ports."""

    def __init__(self, workdir, binary=None, server=None, sections=None, thrift=False,
                 text=True, extra_args=()):
        self.workdir = Path(workdir)
        self.binary = binary or find_kestreld()
        self.spool = self.workdir / "spool"
        self.spool.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "kestrel.conf"
        self.stderr_path = self.workdir / "stderr.log"
        self.stdout_path = self.workdir / "stdout.log"
        self.memcache_port = free_port()
        self.text_port = free_port() if text else 0
        self.thrift_port = free_port() if thrift else 0
        self.server_opts = dict(server or {})
        self._free_port_keys = [k for k, v in self.server_opts.items() if v == FREE_PORT]
        for key in self._free_port_keys:
            self.server_opts[key] = free_port()
        self.sections = dict(sections or {})
        self.extra_args = list(extra_args)
        self.proc = None
        self.exit_codes = []
        self._clients = []
        self.write_config()

    # --- configuration
    def config_text(self):
        srv = {
            "listenAddress": HOST,
            "memcacheListenPort": self.memcache_port,
            "textListenPort": self.text_port,
            "thriftListenPort": self.thrift_port,
            "adminHttpPort": 0,
            "queuePath": str(self.spool),
        }
        if os.environ.get("KESTRELD_WORKER_THREADS"):
            srv["workerThreads"] = os.environ["KESTRELD_WORKER_THREADS"]
        srv.update(self.server_opts)
        return _format_sections({"server": srv}) + "\n" + _format_sections(self.sections)

    def write_config(self, sections=None, server=None):
        """(Re)write the config file; pass sections/server to replace those parts."""
        if sections is not None:
            self.sections = dict(sections)
        if server is not None:
            self.server_opts.update(server)
        self.config_path.write_text(self.config_text())

    # --- process control
    def start(self, wait=True):
        for attempt in range(3):
            self._spawn()
            if not wait:
                break
            try:
                self.wait_ready()
                break
            except _PortTaken:
                # Another process bound one of our ports first: take others and start again.
                if attempt == 2:
                    raise
                self._choose_ports()
                self.write_config()
        return self

    def _spawn(self):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with open(self.stderr_path, "ab") as err, open(self.stdout_path, "ab") as out:
            err.write(b"\n===== start %s =====\n" % time.ctime().encode())
            err.flush()
            self.proc = subprocess.Popen(
                [self.binary, "-f", str(self.config_path)] + self.extra_args,
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=str(self.workdir))

    def _choose_ports(self):
        self.memcache_port = free_port()
        self.text_port = free_port() if self.text_port else 0
        self.thrift_port = free_port() if self.thrift_port else 0
        for key in self._free_port_keys:
            self.server_opts[key] = free_port()

    def _our_port_taken(self):
        """Start-up failed because a port this fixture chose was in use."""
        last = self.stderr_text().rsplit("===== start", 1)[-1]
        return any(re.search(r"cannot listen on (\S+ )?\S+:%d: Address already in use" % p, last)
                   for p in self.ports())

    def ports(self):
        return [p for p in (self.memcache_port, self.text_port, self.thrift_port) if p] + \
            [self.server_opts[k] for k in self._free_port_keys]

    @property
    def admin_port(self):
        return int(self.server_opts.get("adminHttpPort", 0))

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        pending = list(self.ports())
        while pending:
            code = self.proc.poll()
            if code is not None:
                self.exit_codes.append(code)
                if self._our_port_taken():
                    raise _PortTaken("kestreld could not bind its port:\n%s"
                                     % self.stderr_text()[-4000:])
                raise AssertionError("kestreld exited with %d during start-up:\n%s"
                                     % (code, self.stderr_text()[-4000:]))
            if port_accepts(pending[0]):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise AssertionError("kestreld did not accept on port %d within %.0fs:\n%s"
                                     % (pending[0], timeout, self.stderr_text()[-4000:]))
            time.sleep(0.01)

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout=STOP_TIMEOUT):
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("kestreld did not exit within %.0fs" % timeout)
        self.exit_codes.append(code)
        return code

    def stop(self, expect_code=0):
        """SIGTERM, wait, assert a clean exit (0)."""
        self.close_clients()
        assert self.running(), "kestreld is not running (exit code %r)" % (
            self.proc.poll() if self.proc else None)
        self.proc.send_signal(signal.SIGTERM)
        code = self.wait_exit()
        assert code == expect_code, "kestreld exited with %r after SIGTERM, expected %r:\n%s" % (
            code, expect_code, self.stderr_text()[-4000:])
        return code

    def kill9(self):
        self.close_clients()
        assert self.running(), "kestreld is not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT)
        self.exit_codes.append(self.proc.returncode)

    def restart(self):
        if self.running():
            self.stop()
        return self.start()

    # --- clients
    def wait_start_probes_counted(self, client):
        """Until the server has counted in and out the start-up probe of each protocol port, so
        that `client` (a memcache client, the only one open) sees connection counts that no
        late probe moves: an io thread counts a connection when it takes it, which can be after
        a later client's on another thread."""
        probes = len([p for p in (self.memcache_port, self.text_port, self.thrift_port) if p])
        wait_for(lambda: client.stat("curr_connections") == "1"
                 and int(client.stat("total_connections")) == probes + 1,
                 message="the start-up probes counted; only the client connected")

    def memcache(self, timeout=IO_TIMEOUT):
        c = MemcacheClient(self.memcache_port, timeout=timeout)
        self._clients.append(c)
        return c

    def text(self, timeout=IO_TIMEOUT):
        assert self.text_port, "text listener not enabled"
        c = TextClient(self.text_port, timeout=timeout)
        self._clients.append(c)
        return c

    def close_clients(self):
        for c in self._clients:
            c.close()
        self._clients = []

    # --- inspection
    def stderr_text(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def spool_files(self):
        return sorted(p.name for p in self.spool.iterdir())

    def journal(self, queue):
        return self.spool / queue

    def journal_bytes(self, queue):
        """The records of a queue's live journal file (without space reserved after them)."""
        path = self.journal(queue)
        return journal_records(path.read_bytes()) if path.exists() else b""

    def cleanup(self):
        self.close_clients()
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)


# ----------------------------------------------------------------------------------------------
# pytest plumbing

@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


class _TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _test_deadline():
    """A hard per-test time limit, so a hung server cannot hang the whole suite."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise _TestTimeout("test exceeded %ds" % TEST_TIMEOUT)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def kestrel_factory(request, tmp_path):
    """Start servers with custom configuration:

        srv = kestrel_factory(sections={"queue small": {"maxItems": 2}},
                              server={"maxOpenTransactions": 5}, thrift=True)

    `start=False` returns the handle without starting it (to prepare the spool folder first).
    Every server started here is stopped at the end of the test; its stderr is printed if the
    test failed.
    """
    servers = []

    def make(sections=None, server=None, thrift=False, text=True, start=True, extra_args=()):
        workdir = tmp_path / ("srv%d" % len(servers))
        workdir.mkdir()
        srv = Kestreld(workdir, server=server, sections=sections, thrift=thrift, text=text,
                       extra_args=extra_args)
        servers.append(srv)
        if start:
            srv.start()
        return srv

    yield make

    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for srv in servers:
        srv.cleanup()
        if failed:
            print("----- kestreld stderr (%s) -----" % srv.workdir)
            print(srv.stderr_text()[-8000:])


@pytest.fixture
def kestrel(kestrel_factory):
    """A server with default settings (memcache + text listeners)."""
    return kestrel_factory()


@pytest.fixture
def mc(kestrel):
    return kestrel.memcache()


@pytest.fixture
def txt(kestrel):
    return kestrel.text()

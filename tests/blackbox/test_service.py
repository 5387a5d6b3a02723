"""Running kestreld as a service: scripts/kestrel.sh (init script) and scripts/devel.sh against a
real kestreld on free ports with a temporary queue folder.

The admin HTTP port is not part of these tests' kestreld: `stop` is checked against a small
fake admin server whose /shutdown.txt sends SIGTERM to the server, and against a port where
nothing listens (the script falls back to SIGTERM).
"""
import http.server
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import (HOST, MemcacheClient, find_kestreld, free_port, port_accepts, wait_for)

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
INIT = SCRIPTS / "kestrel.sh"
DEVEL = SCRIPTS / "devel.sh"
SCRIPT_TIMEOUT = 60


# ----------------------------------------------------------------------------------------------
# helpers

def pid_alive(pid):
    """True while process `pid` exists and has not exited (a zombie counts as exited)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


class InitScript:
    """scripts/kestrel.sh with every path under a temporary directory."""

    def __init__(self, tmp_path, admin_port=0):
        self.dir = tmp_path
        self.port = free_port()
        self.pidfile = tmp_path / "run" / "kestrel.pid"
        self.log = tmp_path / "log" / "kestrel.log"
        self.spool = tmp_path / "spool"
        self.config = tmp_path / "kestrel.conf"
        self.config.write_text(
            "[server]\nlistenAddress = %s\nmemcacheListenPort = %d\ntextListenPort = 0\n"
            "thriftListenPort = 0\nadminHttpPort = %d\nqueuePath = /nonexistent/overridden\n"
            % (HOST, self.port, admin_port))
        self.env = dict(os.environ,
                        KESTRELD=find_kestreld(),
                        KESTREL_DEFAULTS=str(tmp_path / "no-defaults"),
                        KESTREL_CONFIG=str(self.config),
                        KESTREL_PIDFILE=str(self.pidfile),
                        KESTREL_QUEUE_PATH=str(self.spool),
                        KESTREL_LOG=str(self.log),
                        KESTREL_STOP_TIMEOUT="15")
        for key in ("KESTREL_ADMIN_PORT", "KESTREL_ADMIN_HOST", "KESTREL_CURL"):
            self.env.pop(key, None)

    def run(self, action, script=INIT, **env):
        full = dict(self.env, **env)
        return subprocess.run(["bash", str(script), action], env=full, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=SCRIPT_TIMEOUT)

    def pid(self):
        return int(self.pidfile.read_text().strip())

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def cleanup(self):
        """Stop a server a failed test left running (only the one our pid file names)."""
        try:
            pid = self.pid()
        except (FileNotFoundError, ValueError):
            return
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def init(tmp_path):
    script = InitScript(tmp_path)
    yield script
    script.cleanup()


class FakeAdmin:
    """An HTTP server on a free loopback port standing in for kestreld's admin port: GET
    /shutdown.txt sends SIGTERM to the pid in `pidfile` and answers "ok". Records each path."""

    def __init__(self, pidfile):
        calls = self.calls = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                calls.append(self.path)
                if self.path != "/shutdown.txt":
                    self.send_error(404)
                    return
                os.kill(int(Path(pidfile).read_text().strip()), signal.SIGTERM)
                body = b"ok\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


# ----------------------------------------------------------------------------------------------
# init script

@pytest.mark.parametrize("client", ["curl", "dev-tcp"])
def test_init_start_status_stop_through_admin(init, client):
    r = init.run("status")
    assert r.returncode == 3 and "not running" in r.stdout, r

    r = init.run("start")
    assert r.returncode == 0, r
    pid = init.pid()
    assert "done (pid %d)" % pid in r.stdout, r.stdout
    with MemcacheClient(init.port) as c:
        c.must_set("svc", "hello")
        assert c.get("svc") == b"hello"

    r = init.run("status")
    assert (r.returncode, r.stdout.strip()) == (0, "kestreld is running (pid %d)." % pid), r

    r = init.run("start")
    assert r.returncode == 0 and "already running (pid %d)" % pid in r.stdout, r
    assert init.pid() == pid

    admin = FakeAdmin(init.pidfile)
    try:
        env = {"KESTREL_ADMIN_PORT": str(admin.port)}
        if client == "dev-tcp":
            env["KESTREL_CURL"] = str(init.dir / "no-curl-here")
        r = init.run("stop", **env)
    finally:
        admin.close()
    assert r.returncode == 0, r
    assert "asked http://127.0.0.1:%d/shutdown.txt" % admin.port in r.stdout, r.stdout
    assert r.stdout.rstrip().endswith("done."), r.stdout
    assert "SIGTERM" not in r.stdout and "SIGKILL" not in r.stdout, r.stdout
    assert admin.calls == ["/shutdown.txt"]
    assert not pid_alive(pid)
    assert not init.pidfile.exists()          # removed by kestreld's clean exit
    assert "journals closed; goodbye" in init.log_text()

    r = init.run("status")
    assert r.returncode == 3 and "not running" in r.stdout, r
    r = init.run("stop")
    assert r.returncode == 0 and "wasn't running" in r.stdout, r


def test_init_stop_falls_back_to_term_when_admin_port_is_silent(init):
    assert init.run("start").returncode == 0
    pid = init.pid()
    silent = free_port()
    r = init.run("stop", KESTREL_ADMIN_PORT=str(silent))
    assert r.returncode == 0, r
    assert "no answer on admin port %d; sending SIGTERM... done." % silent in r.stdout, r.stdout
    assert not pid_alive(pid)
    log = init.log_text()
    assert "received SIGTERM" in log and "journals closed; goodbye" in log, log


def test_init_stop_with_admin_disabled_sends_term_and_restart_keeps_items(init):
    # adminHttpPort = 0 in the config: no HTTP request at all.
    assert init.run("start").returncode == 0
    first = init.pid()
    with MemcacheClient(init.port) as c:
        c.must_set("kept", "across restart")

    r = init.run("restart")
    assert r.returncode == 0, r
    assert "Stopping kestreld... sending SIGTERM... done." in r.stdout, r.stdout
    assert "admin" not in r.stdout, r.stdout
    second = init.pid()
    assert second != first and not pid_alive(first) and pid_alive(second)
    with MemcacheClient(init.port) as c:
        assert c.get("kept") == b"across restart"
    assert init.run("stop").returncode == 0
    assert not pid_alive(second)


def test_init_status_and_stop_with_a_stale_pid_file(init):
    dead = subprocess.Popen(["true"])
    dead.wait()
    init.pidfile.parent.mkdir(parents=True)
    init.pidfile.write_text("%d\n" % dead.pid)
    r = init.run("status")
    assert r.returncode == 1 and "pid file" in r.stdout, r
    r = init.run("stop")
    assert r.returncode == 0 and "wasn't running" in r.stdout, r
    assert not init.pidfile.exists()
    assert init.run("status").returncode == 3


def test_init_pid_file_naming_another_program_is_not_the_server(init):
    other = subprocess.Popen(["sleep", "60"])
    try:
        init.pidfile.parent.mkdir(parents=True)
        init.pidfile.write_text("%d\n" % other.pid)
        assert init.run("status").returncode == 1
        r = init.run("stop")
        assert r.returncode == 0 and "wasn't running" in r.stdout, r
        assert other.poll() is None, "stop signalled a process that is not kestreld"
    finally:
        other.kill()
        other.wait()


FAKE_STUBBORN = """#!%s
# Stands in for a kestreld that ignores SIGTERM; reports it is ready through a file.
import signal, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(sys.argv[1], "w").close()
while True:
    signal.pause()
"""


def test_init_stop_kills_a_server_that_ignores_term(init, tmp_path):
    fake = tmp_path / "bin" / "kestreld"
    fake.parent.mkdir()
    fake.write_text(FAKE_STUBBORN % sys.executable)
    fake.chmod(0o755)
    ready = tmp_path / "ready"
    proc = subprocess.Popen([str(fake), str(ready)])
    try:
        wait_for(ready.exists, message="fake server ready")
        init.pidfile.parent.mkdir(parents=True)
        init.pidfile.write_text("%d\n" % proc.pid)
        r = init.run("stop", KESTRELD=str(fake), KESTREL_ADMIN_PORT="0",
                     KESTREL_STOP_TIMEOUT="1")
        assert r.returncode == 0, r
        assert "sending SIGTERM... still running; sending SIGKILL... killed." in r.stdout, r
        assert proc.wait(10) == -signal.SIGKILL
        assert not init.pidfile.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_init_start_failure_is_reported(init):
    with __import__("socket").socket() as busy:
        busy.bind((HOST, init.port))
        busy.listen(1)
        r = init.run("start")
    assert r.returncode == 1, r
    assert "FAIL" in r.stdout, r
    assert str(init.port) in r.stderr, r
    assert not init.pidfile.exists()
    assert init.run("status").returncode == 3


def test_init_missing_binary_and_usage(init, tmp_path):
    r = init.run("start", KESTRELD=str(tmp_path / "nowhere" / "kestreld"))
    assert r.returncode == 1 and "missing or not executable" in r.stdout, r
    r = init.run("reload-everything")
    assert r.returncode == 2 and "Usage:" in r.stderr, r
    assert "force-reload" in r.stderr, r


def test_init_reads_settings_from_defaults_file(init, tmp_path):
    # The defaults file names the pid file; the environment still wins for what it sets.
    defaults = tmp_path / "defaults"
    other_pidfile = tmp_path / "other" / "k.pid"
    defaults.write_text('KESTREL_PIDFILE="%s"\nKESTREL_LOG="%s"\n'
                        % (other_pidfile, tmp_path / "ignored.log"))
    env = dict(KESTREL_DEFAULTS=str(defaults))
    init.env.pop("KESTREL_PIDFILE")
    r = init.run("start", **env)
    assert r.returncode == 0, r
    assert other_pidfile.exists()
    assert init.log.exists() and not (tmp_path / "ignored.log").exists()
    r = init.run("stop", **env)
    assert r.returncode == 0, r
    assert not other_pidfile.exists()


def test_init_reads_etc_default_and_etc_sysconfig_and_force_reload_restarts(init, tmp_path):
    # A copy of the script whose two system paths point into tmp_path.
    default = tmp_path / "etc-default-kestrel"
    sysconfig = tmp_path / "etc-sysconfig-kestrel"
    script = tmp_path / "kestrel.sh"
    script.write_text(INIT.read_text().replace("/etc/default/kestrel", str(default))
                      .replace("/etc/sysconfig/kestrel", str(sysconfig)))
    pidfile = tmp_path / "from-default" / "k.pid"
    log = tmp_path / "from-sysconfig" / "k.log"
    default.write_text('KESTREL_PIDFILE="%s"\nKESTREL_LOG="%s"\n' % (pidfile, tmp_path / "x.log"))
    sysconfig.write_text('KESTREL_LOG="%s"\n' % log)      # read second: it wins over default
    for key in ("KESTREL_DEFAULTS", "KESTREL_PIDFILE", "KESTREL_LOG"):
        init.env.pop(key)
    init.pidfile = pidfile
    r = init.run("start", script=script)
    assert r.returncode == 0, r
    first = init.pid()
    assert log.exists() and not (tmp_path / "x.log").exists()

    r = init.run("force-reload", script=script)
    assert r.returncode == 0, r
    assert r.stdout.startswith("Stopping kestreld...") and "\nStarting kestreld..." in r.stdout, r
    second = init.pid()
    assert second != first and not pid_alive(first) and pid_alive(second)

    # Only the sysconfig file present: it is read alone.
    default.unlink()
    r = init.run("status", script=script)
    assert r.returncode == 3, r     # the pid file named by the removed file is not looked at
    r = init.run("stop", script=script, KESTREL_PIDFILE=str(pidfile))
    assert r.returncode == 0 and not pid_alive(second), r


# ----------------------------------------------------------------------------------------------
# devel.sh

def test_devel_runs_in_foreground_and_stops_on_sigterm(tmp_path):
    port = free_port()
    spool = tmp_path / "spool"
    env = dict(os.environ, KESTRELD=find_kestreld(), KESTREL_QUEUE_PATH=str(spool))
    out = tmp_path / "devel.out"
    with open(out, "wb") as f:
        proc = subprocess.Popen(
            [str(DEVEL), "--listen", HOST, "--memcache-port", str(port), "--text-port", "0",
             "--thrift-port", "0", "--admin-port", "0"],
            env=env, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: port_accepts(port) or proc.poll() is not None, timeout=15,
                 message="devel.sh listening")
        assert proc.poll() is None, out.read_text()
        with MemcacheClient(port) as c:
            c.must_set("weather_updates", "sunny")
            assert c.get("weather_updates") == b"sunny"
            # The development config is the one in use: jobs_pending expires to jobs_ready.
            assert c.get("jobs_pending") is None
            assert "  expireToQueue=jobs_ready" in c.block("dump_config")
        assert (spool / "weather_updates").exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.read_text()
    assert text.startswith("Starting kestreld in development mode...\n"), text
    assert "listening on memcache %s:%d" % (HOST, port) in text, text


def test_devel_without_a_built_server_says_so(tmp_path):
    env = dict(os.environ, KESTRELD=str(tmp_path / "build" / "kestreld"))
    r = subprocess.run([str(DEVEL)], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r
    assert "kestreld is not built" in r.stderr and "scripts/build" in r.stderr, r.stderr

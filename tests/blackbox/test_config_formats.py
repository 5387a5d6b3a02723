"""Kestrel's own config files (2.x Scala, 1.x configgy) given to kestreld as they are: each
shipped Kestrel config starts a server (ports, queue folder and log from the command line)
whose dump_config is byte for byte the one of its key file translation (--print-config), and of
kestreld's own key file for the same configuration; errors stop start-up with status 2 and a
line and column; --check-config; reload keeps working and keeps the old settings on an error.
"""
import re
import subprocess
from pathlib import Path

import pytest

from conftest import HOST, Kestreld, MemcacheClient, find_kestreld

SRCDIR = Path(__file__).resolve().parents[2]


class KestrelConfigServer(Kestreld):
    """kestreld -f FILE with listeners, queue folder and log file given on the command line."""

    def __init__(self, workdir, config_file, config_format=None):
        super().__init__(workdir, text=False)
        self.config_path = Path(config_file)
        self.config_format = config_format
        self.log_path = self.workdir / "kestreld.log"

    def _spawn(self):
        self.extra_args = [
            "--listen", HOST, "--memcache-port", str(self.memcache_port), "--text-port", "0",
            "--thrift-port", "0", "--admin-port", "0", "--queue-path", str(self.spool),
            "--log-file", str(self.log_path),
        ] + (["--config-format", self.config_format] if self.config_format else [])
        super()._spawn()


@pytest.fixture
def start_server(tmp_path):
    servers = []

    def start(config_file, config_format=None):
        workdir = tmp_path / ("srv%d" % len(servers))
        workdir.mkdir()
        srv = KestrelConfigServer(workdir, config_file, config_format)
        servers.append(srv)
        return srv.start()

    yield start
    for srv in servers:
        srv.cleanup()


def run_kestreld(*args):
    return subprocess.run([find_kestreld()] + list(args), capture_output=True, text=True,
                          timeout=30)


def print_config(config_file, dest):
    """--print-config's key file for config_file, written to dest; returns its text."""
    result = run_kestreld("--print-config", "-f", str(config_file))
    assert result.returncode == 0, result.stderr
    dest.write_text(result.stdout)
    return result.stdout


def queue_names(key_file_text):
    return re.findall(r"^\[queue ([^\]]+)\]$", key_file_text, re.M)


def dump_config(srv, queues):
    """Create each queue with one item, then the raw dump_config reply."""
    with MemcacheClient(srv.memcache_port) as c:
        for name in queues:
            assert c.request("set %s 0 0 1\r\nx" % name) == b"STORED\r\n"
        c.send_line("dump_config")
        return c.read_until(b"END\r\n")


KESTREL_CONFIGS = [
    # (Kestrel file, kestreld's own key file saying the same, or None)
    ("config/kestrel-2.x/development.scala", "config/development.conf"),
    ("config/kestrel-2.x/production.scala", "config/production.conf"),
    ("config/kestrel-1.x/development.conf", None),
    ("config/kestrel-1.x/production.conf", None),
    ("tests/data/kestrel-configs/seed-000-development.scala", "config/development.conf"),
    ("tests/data/kestrel-configs/seed-001-production.conf", None),
]


@pytest.mark.parametrize("config,key_file", KESTREL_CONFIGS,
                         ids=[Path(c).name for c, _ in KESTREL_CONFIGS])
def test_kestrel_config_runs_as_its_translation(start_server, tmp_path, config, key_file):
    source = SRCDIR / config
    printed = print_config(source, tmp_path / "printed.conf")
    queues = queue_names(printed) + ["not_configured"]

    from_kestrel = dump_config(start_server(source), queues)
    from_printed = dump_config(start_server(tmp_path / "printed.conf"), queues)
    assert from_kestrel == from_printed
    assert from_kestrel.count(b"queue '") == len(queues)

    # Printing the printed file again changes nothing that dump_config shows.
    again = print_config(tmp_path / "printed.conf", tmp_path / "again.conf")
    assert queue_names(again) == queue_names(printed)
    assert dump_config(start_server(tmp_path / "again.conf"), queues) == from_kestrel

    if key_file is not None:
        assert dump_config(start_server(SRCDIR / key_file), queues) == from_kestrel


def test_warnings_reach_the_log_once(start_server):
    srv = start_server(SRCDIR / "config/kestrel-2.x/production.scala")
    with MemcacheClient(srv.memcache_port) as c:
        assert c.request("version").startswith(b"VERSION ")
    log = srv.log_path.read_text()
    assert log.count("admin.statsNodes has no equivalent in kestreld and is ignored") == 1


def test_check_config(tmp_path):
    good = run_kestreld("--check-config", "-f", str(SRCDIR / "config/kestrel-2.x/production.scala"))
    assert good.returncode == 0
    assert "production.scala: configuration OK (scala, 1 warning)" in good.stdout
    assert re.search(r"warning: .*production.scala:\d+:3: admin.statsNodes has no equivalent",
                     good.stderr)

    bad = tmp_path / "bad.scala"
    bad.write_text('new KestrelConfig {\n  queues = new QueueBuilder {\n'
                   '    name = "jobs"\n    maxItems = "1.5M"\n  }\n}\n')
    checked = run_kestreld("--check-config", "-f", str(bad))
    assert checked.returncode == 2
    assert "bad.scala:4:16: maxItems: expected a whole number or 'none', got '1.5M'" \
        in checked.stderr
    started = run_kestreld("-f", str(bad), "--memcache-port", "0", "--queue-path",
                           str(tmp_path / "spool"))
    assert started.returncode == 2
    assert "bad.scala:4:16: maxItems" in started.stderr


def test_config_format_option(tmp_path):
    scala = SRCDIR / "config/kestrel-2.x/development.scala"
    forced = run_kestreld("--check-config", "--config-format", "configgy", "-f", str(scala))
    assert forced.returncode == 2
    assert "development.scala:" in forced.stderr
    right = run_kestreld("--check-config", "--config-format", "scala", "-f", str(scala))
    assert right.returncode == 0, right.stderr
    unknown = run_kestreld("--check-config", "--config-format", "yaml", "-f", str(scala))
    assert unknown.returncode == 2
    assert "--config-format: expected keyfile, scala or configgy, got 'yaml'" in unknown.stderr


RELOAD_FILES = {
    # name: (template with {items}, a value that breaks it, where the error is reported)
    "kestrel.scala": ('new KestrelConfig {{\n  queues = new QueueBuilder {{\n'
                      '    name = "jobs"\n    maxItems = {items}\n  }}\n}}\n',
                      "Some(", "kestrel.scala:5:3: expected a value"),
    "kestrel.conf": ('queues {{\n  jobs {{\n    max_items = {items}\n  }}\n}}\n',
                     "lots", "kestrel.conf:3:17: max_items: expected a whole number"),
}


@pytest.mark.parametrize("name", sorted(RELOAD_FILES))
def test_reload_reads_the_same_format_and_keeps_settings_on_error(start_server, tmp_path, name):
    template, broken, error = RELOAD_FILES[name]
    config = tmp_path / name

    def write(max_items):
        config.write_text(template.format(items=max_items))

    write("5")
    srv = start_server(config)
    assert b"  maxItems=5\r\n" in dump_config(srv, ["jobs"])
    with MemcacheClient(srv.memcache_port) as c:
        write("7")
        assert c.request("reload") == b"Reloaded config.\r\n"
        assert b"  maxItems=7\r\n" in dump_config(srv, [])
        write(broken)
        assert c.request("reload") == b"ERROR\r\n"
        assert b"  maxItems=7\r\n" in dump_config(srv, [])
    assert error in srv.log_path.read_text()

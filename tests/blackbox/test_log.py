"""kestreld's log file on disk: SIGHUP reopen after the file was moved away (Kestrel's
Policy.SigHup), level filtering, --log-file, and an hourly roll across a real hour boundary
with the clock moved by libfaketime (the rename and period logic itself is unit-tested with a
fake clock in tests/unit/test-log.c).
"""
import os
import signal
import subprocess

from conftest import Kestreld, MemcacheClient, wait_for

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"


def reload_logged(srv, log_path, count):
    """Send `reload` (which logs one line) and wait until log_path holds `count` such lines."""
    with MemcacheClient(srv.memcache_port) as c:
        assert c.request("reload") == b"Reloaded config.\r\n"
    wait_for(lambda: log_path.exists()
             and log_path.read_text().count("reloaded queue settings") >= count,
             message="%d reload lines in %s" % (count, log_path))


def test_sighup_reopens_a_moved_log_file(kestrel_factory, tmp_path):
    log = tmp_path / "logs" / "kestrel.log"          # the directory is created by kestreld
    moved = tmp_path / "logs" / "kestrel.log.1"
    srv = kestrel_factory(server={"logFile": str(log), "logRoll": "sighup"})
    wait_for(lambda: log.exists() and "listening" in log.read_text(), message="start-up line")
    reload_logged(srv, log, 1)

    log.rename(moved)
    reload_logged(srv, moved, 2)                     # until HUP, lines go to the moved file
    assert not log.exists()

    srv.proc.send_signal(signal.SIGHUP)
    wait_for(log.exists, message="log file reopened")
    reload_logged(srv, log, 1)
    srv.stop()

    old, new = moved.read_text(), log.read_text()
    assert "listening" in old and old.count("reloaded queue settings") == 2, old
    assert "listening" not in new and new.count("reloaded queue settings") == 1, new
    assert "journals closed; goodbye" in new, new


def test_log_level_filters_lines(kestrel_factory, tmp_path):
    # logLevel = warning: the start-up MESSAGE line is dropped, the replay WARNING is kept.
    log = tmp_path / "kestrel.log"
    srv = kestrel_factory(server={"logFile": str(log), "logLevel": "warning"}, start=False)
    (srv.spool / "broken").write_bytes(b"\x63garbage")   # an unknown opcode: replay warns
    srv.start()
    wait_for(lambda: log.exists() and "WARNING" in log.read_text(), message="warning logged")
    with MemcacheClient(srv.memcache_port) as c:        # logs a MESSAGE line: dropped
        assert c.request("reload") == b"Reloaded config.\r\n"
    srv.stop()
    lines = log.read_text().splitlines()
    assert lines and all(" WARNING " in l or " CRITICAL " in l or " ERROR " in l
                         for l in lines), lines
    assert any("broken" in l for l in lines), lines


def test_log_file_option_overrides_config(kestrel_factory, tmp_path):
    in_config = tmp_path / "config.log"
    on_command_line = tmp_path / "cli.log"
    srv = kestrel_factory(server={"logFile": str(in_config)},
                          extra_args=("--log-file", str(on_command_line)))
    wait_for(lambda: on_command_line.exists() and "listening" in on_command_line.read_text(),
             message="start-up line in --log-file")
    srv.stop()
    assert not in_config.exists()


def test_hourly_roll_across_an_hour_boundary_under_faketime(tmp_path):
    """kestreld starts two seconds before 13:00 (libfaketime); the first line after 13:00
    moves kestrel.log to kestrel-20240501-12.log."""
    log = tmp_path / "kestrel.log"
    rolled = tmp_path / "kestrel-20240501-12.log"
    srv = Kestreld(tmp_path / "srv", server={"logFile": str(log), "logRoll": "hourly"})
    env = dict(os.environ, TZ="UTC", LD_PRELOAD=FAKETIME_LIB,
               FAKETIME="@2024-05-01 12:59:58", FAKETIME_DONT_RESET="1",
               # An ASan build must let libfaketime be preloaded ahead of its runtime.
               ASAN_OPTIONS=(os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"))
    with open(srv.stderr_path, "ab") as err:
        srv.proc = subprocess.Popen([srv.binary, "-f", str(srv.config_path)], env=env,
                                    stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                    cwd=str(srv.workdir))
    try:
        srv.wait_ready()
        wait_for(lambda: log.exists() and "listening" in log.read_text(), message="start line")
        assert log.read_text().startswith("2024-05-01 12:59:5"), log.read_text()
        with MemcacheClient(srv.memcache_port) as c:
            # Poll the server's own clock until it is past 13:00 (real time moves it).
            wait_for(lambda: int(c.stat("time")) >= 1714568400, timeout=10,
                     message="server clock past 13:00")
            assert c.request("reload") == b"Reloaded config.\r\n"
        wait_for(rolled.exists, message="rolled file")
        wait_for(lambda: "reloaded queue settings" in log.read_text(), message="new file line")
        srv.stop()
    finally:
        srv.cleanup()
    old, new = rolled.read_text(), log.read_text()
    assert "listening" in old and "reloaded" not in old, old
    assert new.startswith("2024-05-01 13:00:"), new
    assert "listening" not in new, new

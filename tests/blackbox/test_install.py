"""`make install DESTDIR=...` from the build tree under test: the systemd unit lands in the
unit directory with the installed binary and config paths substituted, and the example
configs land in $(sysconfdir)/kestrel. When systemd-analyze is present, the unit (pointed at
the DESTDIR copies) must also verify without a warning.
"""
import configparser
import os
import shutil
import subprocess
from pathlib import Path

from conftest import find_kestreld

SRCDIR = Path(__file__).resolve().parents[2]


def build_dir():
    """The build tree of the kestreld under test (BUILDDIR/src/server/kestreld)."""
    return Path(find_kestreld()).parents[2]


def parse_unit(path):
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str                       # keys are case-sensitive
    unit.read(path)
    return unit


def test_make_install_puts_unit_and_configs_in_place(tmp_path):
    dest = tmp_path / "dest"
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    r = subprocess.run(["make", "-s", "-C", str(build_dir()), "install", "DESTDIR=%s" % dest],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    units = sorted(dest.rglob("kestreld.service"))
    assert len(units) == 1, units
    unit_path = units[0]
    assert unit_path.parent.as_posix().endswith("/lib/systemd/system"), unit_path

    unit = parse_unit(unit_path)
    assert unit["Service"]["Type"] == "simple"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    # SIGHUP only reopens the log: no ExecReload may pretend it reloads the config.
    assert "ExecReload" not in unit["Service"]
    exec_start = unit["Service"]["ExecStart"].split()
    assert len(exec_start) == 3 and exec_start[1] == "-f", exec_start
    binary, config = exec_start[0], exec_start[2]
    assert "@" not in unit_path.read_text() and "$" not in unit_path.read_text()

    installed_binary = Path(str(dest) + binary)
    installed_config = Path(str(dest) + config)
    assert binary.endswith("/bin/kestreld") and os.access(installed_binary, os.X_OK), binary
    assert config.endswith("/kestrel/production.conf"), config
    assert installed_config.read_text() == (SRCDIR / "config" / "production.conf").read_text()
    assert (installed_config.parent / "development.conf").read_text() == \
        (SRCDIR / "config" / "development.conf").read_text()
    docs = unit["Unit"]["Documentation"]
    assert docs.startswith("file:///") and Path(str(dest) + docs[len("file://"):]).is_file(), docs

    analyze = shutil.which("systemd-analyze")
    if analyze:
        # Verify a copy pointing at the DESTDIR binary (the real prefix is not installed).
        copy = tmp_path / "kestreld.service"
        copy.write_text(unit_path.read_text().replace(binary, str(installed_binary)))
        v = subprocess.run([analyze, "verify", "--man=no", str(copy)],
                           capture_output=True, text=True, timeout=60)
        assert v.returncode == 0 and v.stderr.strip() == "", v

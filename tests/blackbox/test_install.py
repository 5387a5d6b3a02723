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
    # A bad config file (exit status 2) is not restarted over and over.
    assert unit["Service"]["Restart"] == "on-failure"
    assert unit["Service"]["RestartPreventExitStatus"] == "2"
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

    # The manual pages, README, documents and the embedding example.
    prefix = Path(str(dest) + binary).parents[1]
    for page in ("man8/kestreld.8", "man1/kestrel-load.1", "man1/kestrel-qdump.1",
                 "man1/kestrel-qpack.1", "man5/kestrel.conf.5"):
        assert (prefix / "share" / "man" / page).is_file(), page
    docdir = Path(str(dest) + docs[len("file://"):]).parent
    for doc in ("README.md", "operations.md", "configuration.md", "embedding.md", "tools.md",
                "load.md", "thrift.md", "examples/embed-queue.c"):
        assert (docdir / doc).is_file(), doc
    assert (docdir / "examples" / "embed-queue.c").read_text() == \
        (SRCDIR / "docs" / "examples" / "embed-queue.c").read_text()
    # Every installed file is listed in docs/operations.md's table.
    table = (SRCDIR / "docs" / "operations.md").read_text()
    for path in sorted(p for p in dest.rglob("*") if not p.is_dir()):
        name = path.name
        if name.endswith(".md") and path.parent == docdir:
            name = "*.md"
        assert name in table or path.parent.name in table, path

    analyze = shutil.which("systemd-analyze")
    if analyze:
        # Verify a copy pointing at the DESTDIR binary (the real prefix is not installed).
        copy = tmp_path / "kestreld.service"
        copy.write_text(unit_path.read_text().replace(binary, str(installed_binary)))
        v = subprocess.run([analyze, "verify", "--man=no", str(copy)],
                           capture_output=True, text=True, timeout=60)
        assert v.returncode == 0 and v.stderr.strip() == "", v

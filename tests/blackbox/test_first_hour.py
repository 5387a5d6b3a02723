"""A newcomer's first hour: scripts/run installs only what building and running needs, the
in-place ./configure route and scripts/build share one checkout, autogen is quiet, the manual
pages render cleanly, every program's --help has the same layout, and the documents refer to
nothing outside the repository.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import find_kestreld

SRCDIR = Path(__file__).resolve().parents[2]
SCRIPTS = SRCDIR / "scripts"


def copy_source_tree(dest):
    """The source tree without its version control and build folders."""
    def ignore(folder, names):
        skip = {".git", "autom4te.cache", ".libs", ".deps", "__pycache__"}
        if Path(folder) == SRCDIR:
            skip |= {"build", "spool"}
        return [n for n in names if n in skip or n.endswith((".o", ".lo"))]
    shutil.copytree(SRCDIR, dest, symlinks=True, ignore=ignore)
    # `make distcheck` runs the tests in a read-only source tree; the copy must be writable.
    for folder, _, files in os.walk(dest):
        os.chmod(folder, 0o755)
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | 0o200)


def build_dir():
    return Path(find_kestreld()).parents[2]


def package_list(name):
    return (SCRIPTS / name).read_text().split()


def fake_apt(tmp_path):
    """A bin folder whose dpkg-query says nothing is installed and whose apt-get and sudo
    record their arguments in apt.log instead of installing."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    (bin_dir / "dpkg-query").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "apt-get").write_text('#!/bin/sh\necho "$*" >> "%s"\n' % log)
    (bin_dir / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return bin_dir, log


def asked_for(log):
    installs = [line.split() for line in log.read_text().splitlines() if " install " in
                " %s " % line]
    assert len(installs) == 1, log.read_text()
    return [word for word in installs[0] if not word.startswith("-") and word != "install"]


def test_scripts_run_installs_only_build_and_runtime_packages(tmp_path):
    # A copy of scripts/ whose build step stops the run once the packages were asked for.
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    for name in ("run", "install-deps", "packages-run", "packages-test"):
        shutil.copy2(SCRIPTS / name, checkout / "scripts" / name)
    marker = tmp_path / "build-called"
    (checkout / "scripts" / "build").write_text("#!/bin/sh\ntouch '%s'\nexit 3\n" % marker)
    (checkout / "scripts" / "build").chmod(0o755)
    bin_dir, log = fake_apt(tmp_path)
    env = dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ["PATH"]))
    r = subprocess.run([str(checkout / "scripts" / "run")], env=env, capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 3 and marker.exists(), r
    run_packages = package_list("packages-run")
    assert sorted(asked_for(log)) == sorted(run_packages)
    test_only = set(package_list("packages-test"))
    assert not test_only & set(run_packages)
    for tool in ("valgrind", "clang", "default-jdk-headless", "redis-server", "chromium",
                 "gnuplot-nox", "python3-pytest"):
        assert tool in test_only and tool not in run_packages, tool

    # scripts/test's step asks for both lists.
    log.unlink()
    r = subprocess.run([str(checkout / "scripts" / "install-deps"), "test"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    assert sorted(asked_for(log)) == sorted(run_packages + package_list("packages-test"))


def test_scripts_build_clears_an_in_place_configuration(tmp_path):
    # A copy of the source tree that was configured in place (its Makefile's distclean is a
    # stand-in that records the call); configure is then run with a compiler that does not
    # exist, so it stops right after the source-folder check it used to fail.
    tree = tmp_path / "tree"
    copy_source_tree(tree)
    for leftover in ("config.status", "config.h", "Makefile", "config.log", "libtool"):
        (tree / leftover).unlink(missing_ok=True)
    if not (tree / "configure").exists():
        pytest.fail("the source tree under test has no configure script")
    (tree / "config.status").write_text("#!/bin/sh\n")
    (tree / "config.h").write_text("/* in-place */\n")
    (tree / "Makefile").write_text("distclean:\n\trm -f config.status config.h Makefile\n"
                                   "\ttouch distclean-ran\n")
    r = subprocess.run([str(tree / "scripts" / "build"), "build/x", "CC=/nonexistent/cc"],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "configured in place" in out and "make distclean" in out, out
    assert (tree / "distclean-ran").exists() and not (tree / "config.status").exists()
    assert "already configured" not in out, out
    assert "C compiler" in (tree / "build" / "x" / "config.log").read_text()


def test_autogen_prints_no_warning(tmp_path):
    tree = tmp_path / "tree"
    copy_source_tree(tree)
    r = subprocess.run([str(tree / "autogen.sh")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r
    assert "warning" not in (r.stdout + r.stderr).lower(), r.stdout + r.stderr


MAN_PAGES = ["kestreld.8", "kestrel-load.1", "kestrel-qdump.1", "kestrel-qpack.1",
             "kestrel.conf.5"]


@pytest.mark.parametrize("page", MAN_PAGES)
def test_man_page_renders_without_warnings(page):
    path = build_dir() / "man" / page
    assert path.is_file(), path
    env = dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat")
    warn = subprocess.run(["man", "-l", "--warnings", str(path)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert warn.returncode == 0 and warn.stderr == "", warn.stderr
    text = warn.stdout
    name = page.rsplit(".", 1)[0]
    assert re.search(r"^NAME\n\s+%s - \S" % re.escape(name), text, re.M), text[:500]
    assert "\nSEE ALSO\n" in text
    if page != "kestrel.conf.5":
        assert re.search(r"^SYNOPSIS\n\s+%s \[OPTION\.\.\.\]" % re.escape(name), text, re.M), \
            text[:800]
        assert "\n       -h, --help\n" in text and "\n       -V, --version\n" in text
    else:
        for key in ("queuePath", "maxItems", "adminHttpPort", "destinationQueues"):
            assert key in text, key


def programs():
    build = build_dir()
    return {"kestreld": build / "src/server/kestreld",
            "kestrel-load": build / "src/tools/kestrel-load",
            "kestrel-qdump": build / "src/tools/kestrel-qdump",
            "kestrel-qpack": build / "src/tools/kestrel-qpack"}


@pytest.mark.parametrize("name", ["kestreld", "kestrel-load", "kestrel-qdump", "kestrel-qpack"])
def test_help_has_one_layout(name):
    binary = str(programs()[name])
    version = subprocess.run([str(programs()["kestreld"]), "--version"], capture_output=True,
                             text=True).stdout.split()[1]
    r = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stdout) == (0, "%s %s\n" % (name, version)), r
    r = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, LC_ALL="C"))
    assert r.returncode == 0, r
    help_text = r.stdout
    assert re.match(r"Usage:\n  %s \[OPTION(\.\.\.|\?)\]" % re.escape(name), help_text), help_text
    sections = re.findall(r"^([A-Z][A-Za-z ]*):$", help_text, re.M)
    assert sections[:3] == ["Usage", "Help Options", "Application Options"], sections
    assert sections[-1] == "Exit status", sections
    assert re.search(r"^  -V, --version +Print \"%s VERSION\" and exit\.$" % re.escape(name),
                     help_text, re.M), help_text
    # Option descriptions are sentences.
    options = help_text.split("Application Options:\n", 1)[1].split("\n\n", 1)[0]
    for line in options.splitlines():
        text = re.split(r"\s{2,}", line.strip(), maxsplit=1)[1]
        assert text[0].isupper() and text.endswith("."), line
    exit_codes = re.findall(r"^  (\d+)  \S", help_text.split("Exit status:\n", 1)[1], re.M)
    assert exit_codes == ["0", "1", "2"], help_text


def test_documents_refer_to_nothing_outside_the_repository():
    pages = [SRCDIR / "README.md"] + sorted((SRCDIR / "docs").rglob("*.md"))
    bad = re.compile(r"(?<!\.)\.\./|shared/|SPEC|DESIGN\.md|STYLE\.md|specification")
    found = []
    for page in pages:
        for n, line in enumerate(page.read_text().splitlines(), 1):
            if bad.search(line):
                found.append("%s:%d: %s" % (page.relative_to(SRCDIR), n, line))
        # every relative link names a file of the repository
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            if not (page.parent / target).exists():
                found.append("%s: link to missing %s" % (page.relative_to(SRCDIR), target))
    assert not found, "\n".join(found)

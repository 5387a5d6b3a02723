"""Admin HTTP service (docs/admin.md): every endpoint over real HTTP, the Prometheus output
through a strict parser, and the dashboard in headless Chromium."""
import calendar
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import FREE_PORT, HOST, IO_TIMEOUT, port_accepts, wait_for

ENDPOINTS = ["/", "/ping.txt", "/ping.json", "/server_info.json", "/server_info.txt",
             "/stats.json", "/stats.txt", "/kestreld/stats.json", "/kestreld/stats.txt", "/metrics",
             "/shutdown.txt", "/shutdown.json", "/reload.txt", "/reload.json", "/quiesce.txt",
             "/quiesce.json", "/status.txt", "/graph_data.json"]
OP_STATS = ["set_count", "set_latency_p50_ns", "set_latency_p90_ns", "set_latency_p99_ns",
            "set_latency_p999_ns", "set_latency_max_ns", "get_count", "get_latency_p50_ns",
            "get_latency_p90_ns", "get_latency_p99_ns", "get_latency_p999_ns",
            "get_latency_max_ns", "read_items"]
# Stats that move by themselves or with the very requests that read them.
MOVING = {"uptime", "time", "bytes_read", "bytes_written"}


def http_request(port, path, method="GET"):
    conn = http.client.HTTPConnection(HOST, port, timeout=IO_TIMEOUT)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def get(port, path):
    status, headers, body = http_request(port, path)
    assert status == 200, "%s: %d %r" % (path, status, body[:200])
    return headers, body


def start_admin(kestrel_factory, **kw):
    server = dict(kw.pop("server", {}))
    server["adminHttpPort"] = FREE_PORT
    srv = kestrel_factory(server=server, **kw)
    wait_for(lambda: port_accepts(srv.admin_port), START_WAIT,
             message="admin port %d" % srv.admin_port)
    return srv


START_WAIT = 15.0


@pytest.fixture
def admin(kestrel_factory):
    return start_admin(kestrel_factory)


def test_ping(admin):
    headers, body = get(admin.admin_port, "/ping.txt")
    assert body == b"pong\n"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    # Ostrich answers a command in the format of its extension, JSON wrapped in "response"
    headers, body = get(admin.admin_port, "/ping.json")
    assert json.loads(body) == {"response": "pong"}
    assert headers["Content-Type"] == "application/json"


def test_server_info(admin):
    """Ostrich's fields, sorted by name: start_time as Java's Date prints it, uptime in ms."""
    headers, body = get(admin.admin_port, "/server_info.json")
    assert headers["Content-Type"] == "application/json"
    pairs = json.loads(body, object_pairs_hook=list)
    assert [k for k, _ in pairs] == ["build", "build_branch_name", "build_last_few_commits",
                                     "build_revision", "name", "start_time", "start_time_iso",
                                     "uptime", "version"]
    info = dict(pairs)
    with admin.memcache() as mc:
        version = mc.request("version").decode().split()[1]
        stats = dict(mc.stats())
    assert info["name"] == "kestreld"
    assert info["version"] == version
    assert isinstance(info["build"], str) and info["build"]
    assert info["build_last_few_commits"] == []
    start = int(stats["time"]) - int(stats["uptime"])
    assert re.fullmatch(r"\w{3} \w{3} \d\d \d\d:\d\d:\d\d \S+ \d{4}", info["start_time"])
    iso = time.strptime(info["start_time_iso"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(calendar.timegm(iso) - start) <= 2
    assert 0 <= info["uptime"] <= int(stats["uptime"]) * 1000 + 1000
    headers, body = get(admin.admin_port, "/server_info.txt")
    lines = body.decode().splitlines()
    assert lines[0].startswith("build: ") and "name: kestreld" in lines
    assert "build_last_few_commits:" in lines


def fill(mc):
    """Queues of every kind: plain, fanout parent + child, an alias, a read open."""
    mc.must_set("jobs", "one")
    mc.must_set("jobs", "two")
    mc.must_set("jobs", "three")
    assert mc.get("jobs") == b"one"
    assert mc.get("orders+audit") is None
    mc.must_set("orders", "o1")
    mc.must_set("mirror", "m1")
    assert mc.get("jobs", "/open") == b"two"


ALIAS = {"alias mirror": {"destinationQueues": "copy1;copy2"}}


def number(text):
    return float(text) if "." in text else int(text)


def check_against_memcache(before, after, server, queues):
    """Every global and per-queue stat of the memcache `stats` equals the JSON one, in the same
    order; stats that move between the two `stats` commands lie between them."""
    b, a = dict(before), dict(after)
    pairs = list(server.items()) + [("queue_%s_%s" % (q, s), v) for q in queues
                                    for s, v in queues[q].items() if s not in OP_STATS]
    assert [n for n, _ in pairs] == [n for n, _ in before], "same stats in the same order"
    for name, value in pairs:
        if isinstance(value, str):
            assert value == b[name] == a[name], name
        elif name in MOVING:
            assert number(b[name]) <= value <= number(a[name]), name
        else:
            assert value == number(b[name]) == number(a[name]), name


def test_stats_json_equals_memcache(kestrel_factory):
    srv = start_admin(kestrel_factory, sections=ALIAS)
    mc = srv.memcache()
    srv.wait_start_probes_counted(mc)
    fill(mc)
    before = mc.stats()
    headers, body = get(srv.admin_port, "/kestreld/stats.json")
    after = mc.stats()
    assert headers["Content-Type"] == "application/json"
    doc = json.loads(body, object_pairs_hook=lambda pairs: dict(pairs))
    check_against_memcache(before, after, doc["server"], doc["queues"])
    assert doc["queues"]["orders"]["children"] == "orders+audit"
    assert doc["queues"]["mirror"] == {"put_items": 1, "put_bytes": 2, "children": "copy1,copy2"}
    jobs = doc["queues"]["jobs"]
    assert jobs["set_count"] == 3
    assert jobs["read_items"] == 2
    assert jobs["get_count"] == 2
    for op in ("set", "get"):
        lat = [jobs["%s_latency_%s_ns" % (op, p)] for p in ("p50", "p90", "p99", "p999", "max")]
        assert lat == sorted(lat) and lat[0] > 0, lat


def test_stats_txt_equals_memcache(kestrel_factory):
    srv = start_admin(kestrel_factory, sections=ALIAS)
    mc = srv.memcache()
    srv.wait_start_probes_counted(mc)
    fill(mc)
    before = mc.stats()
    headers, body = get(srv.admin_port, "/kestreld/stats.txt")
    after = mc.stats()
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    lines = body.decode().splitlines()
    pairs = [re.fullmatch(r"(\S+): (.*)", line).groups() for line in lines]
    extra = [(n, v) for n, v in pairs if any(n.endswith("_" + s) for s in OP_STATS)]
    assert len(extra) == len(OP_STATS) * 5  # jobs, orders, orders+audit, copy1, copy2
    plain = [(n, v) for n, v in pairs if (n, v) not in extra]
    assert [n for n, _ in plain] == [n for n, _ in before]
    b, a = dict(before), dict(after)
    for name, value in plain:
        if name in MOVING:
            assert number(b[name]) <= number(value) <= number(a[name]), name
        else:
            assert value == b[name] == a[name], name


PROM_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
PROM_SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{queue="((?:[^"\\\n]|\\[\\"n])*)"'
                         r'(?:,quantile="[0-9.]+")?\}|\{version="[^"\\\n]*"\})? (\S+)')


def test_metrics_prometheus(kestrel_factory):
    srv = start_admin(kestrel_factory, sections=ALIAS)
    mc = srv.memcache()
    fill(mc)
    mc.must_set('odd"name\\', "x")
    before = dict(mc.stats())
    headers, body = get(srv.admin_port, "/metrics")
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = body.decode()
    assert text.endswith("\n")

    # Our own checks: HELP then TYPE before each family's samples, families not interleaved.
    seen, current = set(), None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert PROM_NAME.fullmatch(name) and name not in seen, line
            seen.add(name)
            current = name
            expect_type = True
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name == current and expect_type and kind in ("gauge", "counter", "summary"), line
            # a counter's name ends in _total
            assert (kind == "counter") == name.endswith("_total"), line
            expect_type = False
        else:
            m = PROM_SAMPLE.fullmatch(line)
            assert m, "bad sample line %r" % line
            assert m.group(1) in (current, current + "_sum", current + "_count"), line
            assert not expect_type, line
            float(m.group(4))

    # The strict parser, and the values against memcache `stats`.
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["kestrel_curr_items"].samples[0].value == int(before["curr_items"])
    assert families["kestrel_info"].samples[0].labels == {"version": before["version"]}

    def queue_value(family, queue):
        f = families[family]
        return next(s.value for s in f.samples if s.labels == {"queue": queue})

    assert queue_value("kestrel_queue_items", "jobs") == 1
    assert queue_value("kestrel_queue_items", "orders+audit") == 1
    assert queue_value("kestrel_queue_open_transactions", "jobs") == 1
    assert queue_value("kestrel_queue_items", 'odd"name\\') == 1
    assert queue_value("kestrel_queue_put_items", "mirror") == 1
    # a counter family (the parser names counters without _total)
    assert families["kestrel_queue_total_items"].type == "counter"
    assert queue_value("kestrel_queue_total_items", "jobs") == 3
    for name, value in before.items():
        m = re.fullmatch(r"queue_jobs_(\w+)", name)
        if m:
            fam = "kestrel_queue_" + m.group(1)
            assert queue_value(fam, "jobs") == number(value), fam
    # operation latencies as summaries: quantiles of the timed samples, every operation counted
    sets = families["kestrel_queue_set_latency_seconds"]
    assert sets.type == "summary"
    jobs = {(s.name, s.labels.get("quantile")): s.value for s in sets.samples
            if s.labels["queue"] == "jobs"}
    assert jobs[("kestrel_queue_set_latency_seconds_count", None)] == 3
    assert jobs[("kestrel_queue_set_latency_seconds_sum", None)] > 0
    quantiles = [jobs[("kestrel_queue_set_latency_seconds", q)]
                 for q in ("0.5", "0.9", "0.99", "0.999")]
    assert quantiles == sorted(quantiles) and quantiles[0] > 0
    gets = families["kestrel_queue_get_latency_seconds"]
    assert next(s.value for s in gets.samples if s.labels == {"queue": "jobs"}
                and s.name.endswith("_count")) == 2


def test_status_out_of_the_box(admin):
    """No statusFile in the config: the status is kept in the queue folder under a name no
    queue can have, so `status`, `status readonly` and a restart work, and the engine neither
    takes the file for a journal nor warns about it."""
    mc = admin.memcache()
    headers, body = get(admin.admin_port, "/status.txt")
    assert body == b"UP\n" and headers["Content-Type"] == "text/plain; charset=utf-8"
    assert mc.request("status") == b"UP\r\n"
    mc.must_set("jobs", "a")
    assert mc.request("status readonly") == b"END\r\n"
    assert get(admin.admin_port, "/status.txt")[1] == b"READONLY\n"
    assert mc.set("jobs", "b") == b"SERVER_ERROR\r\n"
    assert ".kestrel.status" in admin.spool_files()
    admin.restart()
    wait_for(lambda: port_accepts(admin.admin_port), START_WAIT, message="admin port")
    mc = admin.memcache()
    assert mc.request("status") == b"READONLY\r\n"
    assert mc.get("jobs") == b"a"  # reads still allowed
    queues = {n.split("_")[1] for n, _ in mc.stats() if n.startswith("queue_")
              and n not in ("queue_creates", "queue_deletes", "queue_expires")}
    assert queues == {"jobs"}, queues
    assert "kestrel.status" not in admin.stderr_text()
    assert mc.request("status up") == b"END\r\n"
    mc.must_set("jobs", "c")


def test_status_file_none(kestrel_factory):
    srv = start_admin(kestrel_factory, server={"statusFile": "none"})
    assert get(srv.admin_port, "/status.txt")[1] == b"NOT_CONFIGURED\n"
    assert ".kestrel.status" not in srv.spool_files()


def test_quiesce_shuts_down(admin):
    """Kestrel keeps Ostrich's quiesce, which is a clean shutdown."""
    admin.memcache().must_set("jobs", "kept")
    headers, body = get(admin.admin_port, "/quiesce.json")
    assert json.loads(body) == {"response": "ok"}
    assert admin.wait_exit() == 0
    admin.start()
    wait_for(lambda: port_accepts(admin.admin_port), START_WAIT, message="admin port")
    assert admin.memcache().get("jobs") == b"kept"


def test_reload(kestrel_factory):
    srv = start_admin(kestrel_factory, sections={"queue small": {"maxItems": 1}})
    mc = srv.memcache()
    mc.must_set("small", "a")
    assert mc.set("small", "b") == b"NOT_STORED\r\n"
    srv.write_config(sections={"queue small": {"maxItems": 5}})
    assert get(srv.admin_port, "/reload.txt")[1] == b"ok\n"
    mc.must_set("small", "b")
    # a broken file: the error is reported and the server keeps its settings and serves on
    srv.config_path.write_text(srv.config_text() + "\n[queue small]\nmaxItems = lots\n")
    status, _, body = http_request(srv.admin_port, "/reload.txt")
    assert status == 500 and b"maxItems" in body
    mc.must_set("small", "c")


def test_shutdown(admin):
    mc = admin.memcache()
    mc.must_set("jobs", "kept")
    headers, body = get(admin.admin_port, "/shutdown.txt")
    assert body == b"ok\n"
    assert admin.wait_exit() == 0
    admin.start()
    wait_for(lambda: port_accepts(admin.admin_port), START_WAIT, message="admin port")
    assert admin.memcache().get("jobs") == b"kept"


def test_not_found_and_method_not_allowed(admin):
    for path in ("/nope", "/stats", "/ping.txt/x", "/STATS.JSON"):
        status, headers, body = http_request(admin.admin_port, path)
        assert status == 404 and headers["Content-Type"] == "text/plain; charset=utf-8", path
    status, _, _ = http_request(admin.admin_port, "/nope", "POST")
    assert status == 404
    for path in ENDPOINTS:
        for method in ("POST", "PUT", "DELETE", "HEAD"):
            status, headers, _ = http_request(admin.admin_port, path, method)
            assert status == 405 and headers["Allow"] == "GET", (method, path)
    # the server is still up after all of that
    assert get(admin.admin_port, "/ping.txt")[1] == b"pong\n"
    assert admin.running()


def test_graph_data(admin):
    mc = admin.memcache()
    mc.must_set("jobs", "a")
    mc.must_set("jobs", "b")

    def sampled():
        status, _, body = http_request(admin.admin_port, "/graph_data.json?q=jobs&stat=items")
        if status != 200:
            return None
        doc = json.loads(body)
        return doc if doc["data"] and doc["data"][-1][1] == 2 else None

    doc = wait_for(sampled, 5.0, message="a history sample of jobs")
    assert doc["queue"] == "jobs" and doc["stat"] == "items" and doc["interval_s"] == 1
    times = [t for t, _ in doc["data"]]
    assert times == sorted(times) and len(times) <= 3600
    now = time.time()
    assert now - 10 <= times[-1] <= now + 1
    headers, _ = get(admin.admin_port, "/graph_data.json?q=jobs&stat=put_rate")
    assert headers["Content-Type"] == "application/json"

    assert http_request(admin.admin_port, "/graph_data.json")[0] == 400
    assert http_request(admin.admin_port, "/graph_data.json?q=jobs")[0] == 400
    status, _, body = http_request(admin.admin_port, "/graph_data.json?q=jobs&stat=children")
    assert status == 400 and b"items" in body
    assert http_request(admin.admin_port, "/graph_data.json?q=nobody&stat=items")[0] == 404

    # a deleted queue loses its history
    assert mc.request("delete jobs") == b"DELETED\r\n"
    wait_for(lambda: http_request(admin.admin_port,
                                  "/graph_data.json?q=jobs&stat=items")[0] == 404,
             5.0, message="history of the deleted queue dropped")


def test_admin_port_in_use_is_startup_error(kestrel_factory):
    import socket
    with socket.socket() as s:
        s.bind((HOST, 0))
        s.listen(1)
        port = s.getsockname()[1]
        srv = kestrel_factory(server={"adminHttpPort": port}, start=False)
        srv.start(wait=False)
        code = srv.wait_exit()
        assert code != 0
        assert re.search(r"cannot listen on admin 127\.0\.0\.1:%d" % port, srv.stderr_text())


def test_admin_disabled_by_default_in_tests(kestrel):
    """adminHttpPort = 0 starts no listener (the fixtures' default)."""
    assert "admin" not in kestrel.stderr_text().split("listening on")[-1].split(";")[0]


# ----------------------------------------------------------------------------------------------
# the dashboard in a real browser

def artifacts_dir():
    base = Path(os.environ.get("top_builddir") or Path(__file__).resolve().parents[2])
    path = base.resolve() / "tests" / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_dashboard_page(admin):
    headers, body = get(admin.admin_port, "/")
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    page = body.decode()
    assert page.startswith("<!DOCTYPE html>")
    # self-contained: nothing fetched from elsewhere
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert 'name="viewport"' in page


def test_dashboard_in_chromium(admin, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,800", "--user-data-dir=%s" % (tmp_path / "chromium"),
                "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver",
                      log_output=subprocess.DEVNULL) if _service_takes_log_output() else \
        Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(30)
        driver.get("http://%s:%d/" % (HOST, admin.admin_port))
        mc = admin.memcache()
        for i in range(7):
            mc.must_set("dash", "item%d" % i)
        mc.must_set("other", "x")

        def row_text(queue):
            rows = driver.find_elements(By.CSS_SELECTOR, 'tr[data-queue="%s"] td.items' % queue)
            return rows[0].text if rows else None

        # the table shows the items within two seconds
        wait_for(lambda: row_text("dash") == "7", 2.0, interval=0.05,
                 message="the dashboard row of queue dash showing 7 items")
        assert row_text("other") == "1"
        wait_for(lambda: driver.find_element(By.ID, "status").text == "UP", 2.0,
                 interval=0.05, message="server status shown")
        # a sparkline appears once the history has a sample
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR,
                                              'tr[data-queue="dash"] svg.spark polyline'),
                 10.0, interval=0.1, message="sparkline of queue dash")
        shot = artifacts_dir() / "dashboard.png"
        assert driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 1000
        # the phone layout: every row becomes a card, the header row is hidden
        driver.set_window_size(390, 844)
        wait_for(lambda: not driver.find_element(By.CSS_SELECTOR, "thead").is_displayed(), 2.0,
                 interval=0.05, message="phone layout")
        assert driver.save_screenshot(str(artifacts_dir() / "dashboard-phone.png"))
    finally:
        driver.quit()


def _service_takes_log_output():
    import inspect
    from selenium.webdriver.chrome.service import Service
    return "log_output" in inspect.signature(Service.__init__).parameters

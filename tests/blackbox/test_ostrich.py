"""Kestrel's Ostrich admin stats (docs/admin.md): /stats.json and /stats.txt checked name by name
against the names Kestrel 2.4 registers, ?period=N, counters that never go down across queue
deletes (memcache `stats` and `dump_stats`, JSON, Prometheus), and /metrics through promtool."""
import json
import re
import subprocess

from conftest import wait_for
from test_admin import get, http_request, start_admin

# The names Kestrel 2.4.1 registers with Ostrich, from its sources
# (twitter-archive/kestrel, tag version=2.4.1, src/main/scala/net/lag/kestrel/):
#   Kestrel.scala        Stats.incr bytes_read / bytes_written; Stats.addGauge items, bytes,
#                        reserved_memory_ratio, connections; Stats.setLabel version
#   KestrelHandler.scala Stats.incr total_connections, cmd_get, cmd_set, cmd_peek;
#                        Stats.addMetric set_latency_usec (and q/<name>/set_latency_usec)
#   QueueCollection.scala Stats.incr total_items, get_hits, get_misses, queue_creates,
#                        queue_deletes, queue_expires
#   ServerStatus.scala   Stats.addGauge status/readable, status/writeable; Stats.setLabel status
#   PersistentQueue.scala q/<name>/ counters total_items, put_items, put_bytes, get_items_hit,
#                        get_items_miss, transactions, canceled_transactions, expired_items,
#                        discarded, total_flushes (journal_rewrites, journal_rotations: later
#                        2.4 sources); gauges items, bytes, journal_size, mem_items, mem_bytes,
#                        age_msec, waiters, open_transactions, create_time; metrics
#                        set_latency_usec, get_timeout_msec, delivery_latency_msec,
#                        get_hit_latency_usec, get_miss_latency_usec (each also global)
#   AliasedQueue.scala   q/<name>/ counters put_items, put_bytes; gauge create_time
# Not served: Kestrel's counters made only on first use (cmd_monitor, cmd_monitor_get,
# cmd_get_timeout_dropped, cmd_get_open_dropped, fsync_error_*), fsync_delay_usec, and the
# JVM's gauges Ostrich adds (jvm_*).
GLOBAL_COUNTERS = ["bytes_read", "bytes_written", "total_connections", "cmd_get", "cmd_set",
                   "cmd_peek", "total_items", "get_hits", "get_misses", "queue_creates",
                   "queue_deletes", "queue_expires"]
GLOBAL_GAUGES = ["items", "bytes", "reserved_memory_ratio", "connections", "status/readable",
                 "status/writeable"]
LABELS = ["version", "status"]
METRICS = ["set_latency_usec", "get_timeout_msec", "delivery_latency_msec",
           "get_hit_latency_usec", "get_miss_latency_usec"]
QUEUE_COUNTERS = ["total_items", "put_items", "put_bytes", "get_items_hit", "get_items_miss",
                  "transactions", "canceled_transactions", "expired_items", "discarded",
                  "total_flushes", "journal_rewrites", "journal_rotations"]
QUEUE_GAUGES = ["items", "bytes", "journal_size", "mem_items", "mem_bytes", "age_msec",
                "waiters", "open_transactions", "create_time"]
ALIAS_COUNTERS = ["put_items", "put_bytes"]
ALIAS_GAUGES = ["create_time"]
# Ostrich 8.2.9's Distribution: only the count while empty, else these (sorted)
DISTRIBUTION = ["average", "count", "maximum", "minimum", "p25", "p50", "p75", "p90", "p95",
                "p99", "p999", "p9999", "sum"]

ALIAS = {"alias mirror": {"destinationQueues": "jobs;copy"}}


def expected_names(queues, aliases):
    counters = set(GLOBAL_COUNTERS)
    gauges = set(GLOBAL_GAUGES)
    metrics = set(METRICS)
    for q in queues:
        counters |= {"q/%s/%s" % (q, s) for s in QUEUE_COUNTERS}
        gauges |= {"q/%s/%s" % (q, s) for s in QUEUE_GAUGES}
        metrics |= {"q/%s/%s" % (q, s) for s in METRICS}
    for a in aliases:
        counters |= {"q/%s/%s" % (a, s) for s in ALIAS_COUNTERS}
        gauges |= {"q/%s/%s" % (a, s) for s in ALIAS_GAUGES}
    return counters, gauges, set(LABELS), metrics


def stats_json(srv, query=""):
    headers, body = get(srv.admin_port, "/stats.json" + query)
    assert headers["Content-Type"] == "application/json"
    return json.loads(body, object_pairs_hook=list)


def as_dicts(doc):
    return {k: dict(v) if k != "metrics" else {n: dict(d) for n, d in v} for k, v in doc}


def test_ostrich_json_names(kestrel_factory):
    srv = start_admin(kestrel_factory, sections=ALIAS)
    mc = srv.memcache()
    for i in range(3):
        mc.must_set("jobs", "item%d" % i)
    mc.must_set("mirror", "m")
    assert mc.get("jobs") == b"item0"
    assert mc.get("jobs", "/open") == b"item1"
    assert mc.get("idle", "/t=20") is None  # a read that times out
    doc = stats_json(srv)
    # Ostrich's four sections, in its (sorted) order, each sorted by name
    assert [k for k, _ in doc] == ["counters", "gauges", "labels", "metrics"]
    for _, section in doc:
        names = [n for n, _ in section]
        assert names == sorted(names)
    d = as_dicts(doc)
    counters, gauges, labels, metrics = expected_names(["jobs", "copy", "idle"], ["mirror"])
    assert set(d["counters"]) == counters
    assert set(d["gauges"]) == gauges
    assert set(d["labels"]) == labels
    assert set(d["metrics"]) == metrics
    assert all(isinstance(v, int) for v in d["counters"].values())

    c, g, m = d["counters"], d["gauges"], d["metrics"]
    assert d["labels"]["status"] == "Up"
    assert g["status/readable"] == 1 and g["status/writeable"] == 1
    assert d["labels"]["version"] == mc.request("version").decode().split()[1]
    assert c["total_items"] == 4  # one per accepted add: jobs x3, and the alias once
    assert c["q/jobs/total_items"] == c["q/jobs/put_items"] == 4
    assert c["q/jobs/put_bytes"] == 3 * 5 + 1
    assert c["q/jobs/get_items_hit"] == 2 and c["q/idle/get_items_miss"] == 1
    assert c["q/jobs/transactions"] == 1
    assert c["q/mirror/put_items"] == 1 and c["q/mirror/put_bytes"] == 1
    assert g["items"] == 3 and g["q/jobs/items"] == 2 and g["q/jobs/open_transactions"] == 1
    assert g["q/copy/items"] == 1 and g["q/jobs/journal_size"] > 0
    assert g["connections"] >= 1
    assert isinstance(g["reserved_memory_ratio"], (int, float))
    assert m["q/jobs/set_latency_usec"]["count"] == 4
    assert m["set_latency_usec"]["count"] == 5  # the alias's add went to two queues
    assert m["q/jobs/delivery_latency_msec"]["count"] == 2
    assert list(m["q/jobs/delivery_latency_msec"]) == DISTRIBUTION  # every item is timed
    assert m["q/idle/get_timeout_msec"]["count"] == 1
    assert m["q/idle/get_timeout_msec"]["minimum"] >= 15
    assert m["q/copy/get_hit_latency_usec"] == {"count": 0}
    for name, dist in m.items():
        assert list(dist) in (["count"], DISTRIBUTION), name
        if len(dist) > 1:
            p = [dist[k] for k in DISTRIBUTION if k.startswith("p")]
            assert p == sorted(p) and dist["minimum"] <= p[0] and p[-1] <= dist["maximum"]


def test_ostrich_text_format(kestrel_factory):
    """Ostrich's text: a section name per line, then its entries indented by two spaces;
    a distribution on one line as (key=value, ...)."""
    srv = start_admin(kestrel_factory)
    mc = srv.memcache()
    mc.must_set("jobs", "abc")
    assert mc.get("jobs") == b"abc"
    headers, body = get(srv.admin_port, "/stats.txt")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    d = as_dicts(stats_json(srv))
    section, seen = None, {}
    for line in body.decode().splitlines():
        m = re.fullmatch(r"(counters|gauges|labels|metrics):", line)
        if m:
            section = m.group(1)
            seen[section] = {}
            continue
        m = re.fullmatch(r"  (\S+): (.*)", line)
        assert m and section, line
        seen[section][m.group(1)] = m.group(2)
    assert list(seen) == ["counters", "gauges", "labels", "metrics"]
    for section in ("counters", "gauges", "labels", "metrics"):
        assert list(seen[section]) == sorted(d[section]), section
    assert seen["counters"]["q/jobs/total_items"] == "1"
    assert seen["gauges"]["q/jobs/items"] == "0"
    assert seen["labels"]["status"] == "Up"
    assert seen["metrics"]["q/jobs/get_miss_latency_usec"] == "(count=0)"
    dist = seen["metrics"]["q/jobs/delivery_latency_msec"]
    m = re.fullmatch(r"\((.*)\)", dist)
    assert m, dist
    assert [kv.split("=")[0] for kv in m.group(1).split(", ")] == DISTRIBUTION


def test_period(kestrel_factory):
    """?period=N: latched at first use (counting since start), then every N seconds the
    change over the last N seconds; between latches the same numbers."""
    srv = start_admin(kestrel_factory)
    mc = srv.memcache()
    mc.must_set("jobs", "a")
    first = as_dicts(stats_json(srv, "?period=1"))
    assert first["counters"]["q/jobs/total_items"] == 1
    mc.must_set("jobs", "b")
    mc.must_set("jobs", "c")

    def latched():
        d = as_dicts(stats_json(srv, "?period=1"))
        return d if d["counters"]["q/jobs/total_items"] == 2 else None
    d = wait_for(latched, 5.0, interval=0.1, message="the next latch counts the two adds")
    assert d["metrics"]["q/jobs/set_latency_usec"]["count"] == 2
    assert d["gauges"]["q/jobs/items"] == 3
    # the other view still counts since start
    assert as_dicts(stats_json(srv))["counters"]["q/jobs/total_items"] == 3
    for bad in ("0", "x", "86401"):
        status, _, body = http_request(srv.admin_port, "/stats.json?period=" + bad)
        assert status == 400, bad


LIFETIME = ["total_items", "cmd_get", "cmd_set", "get_hits", "get_misses", "total_connections",
            "queue_creates", "queue_deletes"]


def test_counters_never_go_down(kestrel_factory):
    """Deleting queues lowers no lifetime counter: memcache stats, JSON, Prometheus; and
    dump_stats of a queue made again starts from zero, as Kestrel's does."""
    srv = start_admin(kestrel_factory)
    mc = srv.memcache()

    def snapshot():
        st = dict(mc.stats())
        js = as_dicts(stats_json(srv))
        _, body = get(srv.admin_port, "/metrics")
        prom = {}
        for line in body.decode().splitlines():
            m = re.fullmatch(r"kestrel_(\w+)_total (\S+)", line)
            if m:
                prom[m.group(1)] = float(m.group(2))
        return st, js, prom

    history = []
    for round_ in range(3):
        for q in ("a", "b"):
            mc.must_set(q, "x%d" % round_)
            mc.must_set(q, "y%d" % round_)
            assert mc.get(q) is not None
        history.append(snapshot())
        assert mc.request("delete a") == b"DELETED\r\n"
        history.append(snapshot())
    st, js, prom = history[-1]
    assert int(st["total_items"]) == js["counters"]["total_items"] == prom["total_items"] == 12
    for (st0, js0, prom0), (st1, js1, prom1) in zip(history, history[1:]):
        for name in LIFETIME:
            assert int(st0[name]) <= int(st1[name]), name
            assert js0["counters"][name] <= js1["counters"][name], name
            assert prom0[name] <= prom1[name], name
        for name in ("set_latency_usec", "get_hit_latency_usec", "delivery_latency_msec"):
            assert js0["metrics"][name]["count"] <= js1["metrics"][name]["count"], name
    assert js["metrics"]["set_latency_usec"]["count"] == 12
    # the queue made again counts from zero (Kestrel drops a deleted queue's stats)
    mc.must_set("a", "again")
    dump = mc.block("dump_stats a")
    assert "  total_items=1" in dump, dump
    assert int(dict(mc.stats())["total_items"]) == 13


def test_metrics_pass_promtool(kestrel_factory):
    srv = start_admin(kestrel_factory, sections=ALIAS)
    mc = srv.memcache()
    mc.must_set("jobs", "a")
    mc.must_set('odd"name\\', "x")
    mc.must_set("mirror", "m")
    assert mc.get("jobs", "/open") == b"a"
    assert mc.get("none") is None
    _, body = get(srv.admin_port, "/metrics")
    assert b"# TYPE kestrel_queue_set_latency_seconds summary" in body
    assert b"# TYPE kestrel_total_items_total counter" in body
    out = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                         timeout=30)
    assert out.returncode == 0 and out.stdout + out.stderr == b"", out

/* Kestrel's stats in Ostrich's model, and the latched listeners (see ostrich-stats.h).
 * The names are those Kestrel 2.4.1 registers with Ostrich (Kestrel.scala, KestrelHandler.scala,
 * QueueCollection.scala, PersistentQueue.scala, AliasedQueue.scala, ServerStatus.scala). */
#include "config.h"

#include "ostrich-stats.h"

#include <string.h>

#include <event2/event.h>

#include "stats-report.h"

G_DEFINE_QUARK(kq-ostrich-error-quark, kq_ostrich_error)

static gint
name_compare(gconstpointer a, gconstpointer b, gpointer unused)
{
  return strcmp(a, b);
}

static GTree *
tree_new(void)
{
  return g_tree_new_full(name_compare, NULL, g_free, g_free);
}

static void
put_counter(KqOstrichSummary *s, gchar *name, gint64 value)
{
  g_tree_replace(s->counters, name, g_memdup2(&value, sizeof(value)));
}

static void
put_gauge(KqOstrichSummary *s, gchar *name, gdouble value)
{
  g_tree_replace(s->gauges, name, g_memdup2(&value, sizeof(value)));
}

static void
put_metric(KqOstrichSummary *s, gchar *name, const KqLatency *value)
{
  g_tree_replace(s->metrics, name, g_memdup2(value, sizeof(*value)));
}

static KqOstrichSummary *
summary_new(void)
{
  KqOstrichSummary *s = g_new(KqOstrichSummary, 1);

  s->counters = tree_new();
  s->gauges = tree_new();
  s->labels = tree_new();
  s->metrics = tree_new();
  return s;
}

void
kq_ostrich_summary_free(KqOstrichSummary *s)
{
  if (s == NULL)
    return;
  g_tree_unref(s->counters);
  g_tree_unref(s->gauges);
  g_tree_unref(s->labels);
  g_tree_unref(s->metrics);
  g_free(s);
}

/* The numbers the memcache `stats` command reports, by name (one module gathers them). */
static gint64
global_stat(GHashTable *stats, const gchar *name)
{
  const gchar *value = g_hash_table_lookup(stats, name);
  return value != NULL ? g_ascii_strtoll(value, NULL, 10) : 0;
}

static void
add_global(KqOstrichSummary *s, KqServer *server)
{
  static const gchar *const counters[] = {
    "bytes_read", "bytes_written", "cmd_get", "cmd_peek", "cmd_set", "get_hits", "get_misses",
    "total_connections", "total_items", "queue_creates", "queue_deletes", "queue_expires",
  };
  KqCollection *collection = kq_server_get_collection(server);
  g_autoptr(GPtrArray) report = kq_stats_report_global(server);
  g_autoptr(GHashTable) stats = g_hash_table_new(g_str_hash, g_str_equal);
  KqStatus status = kq_server_get_status(server);
  KqQueueOpStats ops;

  for (guint i = 0; i < report->len; i++) {
    const KqStat *stat = report->pdata[i];
    g_hash_table_insert(stats, (gpointer) stat->name, stat->value);
    /* Kestrel had no ZooKeeper numbers of its own: they keep their names and kinds. */
    if (g_str_has_prefix(stat->name, "zookeeper_")) {
      if (stat->kind == KQ_STAT_COUNTER)
        put_counter(s, g_strdup(stat->name), g_ascii_strtoll(stat->value, NULL, 10));
      else
        put_gauge(s, g_strdup(stat->name), g_ascii_strtod(stat->value, NULL));
    }
  }
  for (gsize i = 0; i < G_N_ELEMENTS(counters); i++)
    put_counter(s, g_strdup(counters[i]), global_stat(stats, counters[i]));
  put_gauge(s, g_strdup("connections"), (gdouble) global_stat(stats, "curr_connections"));
  put_gauge(s, g_strdup("items"), (gdouble) global_stat(stats, "curr_items"));
  put_gauge(s, g_strdup("bytes"), (gdouble) global_stat(stats, "bytes"));
  put_gauge(s, g_strdup("reserved_memory_ratio"),
            kq_stats_report_reserved_memory_ratio(collection));
  g_tree_replace(s->labels, g_strdup("version"), g_strdup(PACKAGE_VERSION));
  if (kq_status_kestrel_name(status) != NULL) {
    g_tree_replace(s->labels, g_strdup("status"), g_strdup(kq_status_kestrel_name(status)));
    put_gauge(s, g_strdup("status/readable"), kq_server_allows_reads(server) ? 1 : 0);
    put_gauge(s, g_strdup("status/writeable"), kq_server_allows_writes(server) ? 1 : 0);
  }
  kq_collection_get_op_stats(collection, &ops);
  put_metric(s, g_strdup("set_latency_usec"), &ops.add_latency);
  put_metric(s, g_strdup("get_hit_latency_usec"), &ops.read_hit_latency);
  put_metric(s, g_strdup("get_miss_latency_usec"), &ops.read_miss_latency);
  put_metric(s, g_strdup("delivery_latency_msec"), &ops.delivery_latency);
  put_metric(s, g_strdup("get_timeout_msec"), &ops.wait_timeout_latency);
}

static gchar *
queue_stat(const gchar *queue, const gchar *stat)
{
  return g_strconcat("q/", queue, "/", stat, NULL);
}

static void
add_queue(KqOstrichSummary *s, KqQueue *queue)
{
  const gchar *name = kq_queue_get_name(queue);
  KqQueueStats q;
  KqQueueOpStats ops;

  kq_queue_get_stats(queue, &q);
  kq_queue_get_op_stats(queue, &ops);
  put_counter(s, queue_stat(name, "total_items"), q.total_items);
  put_counter(s, queue_stat(name, "put_items"), q.total_items);
  put_counter(s, queue_stat(name, "put_bytes"), q.put_bytes);
  put_counter(s, queue_stat(name, "get_items_hit"), q.get_items_hit);
  put_counter(s, queue_stat(name, "get_items_miss"), q.get_items_miss);
  put_counter(s, queue_stat(name, "transactions"), q.transactions);
  put_counter(s, queue_stat(name, "canceled_transactions"), q.canceled_transactions);
  put_counter(s, queue_stat(name, "expired_items"), q.expired_items);
  put_counter(s, queue_stat(name, "discarded"), q.discarded);
  put_counter(s, queue_stat(name, "total_flushes"), q.total_flushes);
  put_counter(s, queue_stat(name, "journal_rewrites"), q.journal_rewrites);
  put_counter(s, queue_stat(name, "journal_rotations"), q.journal_rotations);
  put_gauge(s, queue_stat(name, "items"), (gdouble) q.items);
  put_gauge(s, queue_stat(name, "bytes"), (gdouble) q.bytes);
  put_gauge(s, queue_stat(name, "journal_size"), (gdouble) q.logsize);
  put_gauge(s, queue_stat(name, "mem_items"), (gdouble) q.mem_items);
  put_gauge(s, queue_stat(name, "mem_bytes"), (gdouble) q.mem_bytes);
  put_gauge(s, queue_stat(name, "age_msec"), (gdouble) q.age_ms);
  put_gauge(s, queue_stat(name, "waiters"), (gdouble) q.waiters);
  put_gauge(s, queue_stat(name, "open_transactions"), (gdouble) q.open_transactions);
  put_gauge(s, queue_stat(name, "create_time"), (gdouble) (q.create_time / 1000));
  put_metric(s, queue_stat(name, "set_latency_usec"), &ops.add_latency);
  put_metric(s, queue_stat(name, "get_hit_latency_usec"), &ops.read_hit_latency);
  put_metric(s, queue_stat(name, "get_miss_latency_usec"), &ops.read_miss_latency);
  put_metric(s, queue_stat(name, "delivery_latency_msec"), &ops.delivery_latency);
  put_metric(s, queue_stat(name, "get_timeout_msec"), &ops.wait_timeout_latency);
}

KqOstrichSummary *
kq_ostrich_summary_take(KqServer *server)
{
  KqCollection *collection = kq_server_get_collection(server);
  KqOstrichSummary *s = summary_new();
  g_autoptr(GPtrArray) queues = kq_collection_queue_names(collection);
  g_autoptr(GPtrArray) aliases = kq_collection_alias_names(collection);

  add_global(s, server);
  for (guint i = 0; i < queues->len; i++) {
    g_autoptr(KqQueue) queue = kq_collection_get(collection, queues->pdata[i], FALSE, NULL);
    if (queue != NULL) /* else deleted meanwhile */
      add_queue(s, queue);
  }
  for (guint i = 0; i < aliases->len; i++) {
    const gchar *name = aliases->pdata[i];
    gint64 put_items = 0, put_bytes = 0;
    kq_collection_get_alias_stats(collection, name, &put_items, &put_bytes);
    put_counter(s, queue_stat(name, "put_items"), put_items);
    put_counter(s, queue_stat(name, "put_bytes"), put_bytes);
    /* aliases are made when the config is read, at start */
    put_gauge(s, queue_stat(name, "create_time"), (gdouble) kq_server_start_time_s(server));
  }
  return s;
}

/* ---- latched listeners ------------------------------------------------------------------- */

typedef struct {
  KqOstrichListeners *owner;
  gint64 period_s;
  struct event *timer;
  GHashTable *last_counters; /* name -> gint64*, as at the previous latch */
  GHashTable *last_metrics;  /* name -> KqLatency* */
  KqOstrichSummary *latched;
} Listener;

struct _KqOstrichListeners {
  KqServer *server;
  struct event_base *base;
  GPtrArray *listeners; /* Listener* */
};

typedef struct {
  Listener *listener;
  KqOstrichSummary *out;
  GHashTable *counters;
  GHashTable *metrics;
} LatchState;

static gboolean
latch_counter(gpointer key, gpointer value, gpointer data)
{
  LatchState *st = data;
  gint64 now = *(gint64 *) value;
  GHashTable *last = st->listener->last_counters;
  gint64 *before = last != NULL ? g_hash_table_lookup(last, key) : NULL;
  /* a counter below its last value is a new queue of the same name: count from zero */
  gint64 delta = before != NULL && *before <= now ? now - *before : now;

  put_counter(st->out, g_strdup(key), delta);
  g_hash_table_replace(st->counters, g_strdup(key), g_memdup2(&now, sizeof(now)));
  return FALSE;
}

static gboolean
latch_metric(gpointer key, gpointer value, gpointer data)
{
  LatchState *st = data;
  const KqLatency *now = value;
  GHashTable *last = st->listener->last_metrics;
  const KqLatency *before = last != NULL ? g_hash_table_lookup(last, key) : NULL;
  KqLatency zero = { 0 }, delta;

  if (before == NULL || before->count > now->count)
    before = &zero;
  kq_latency_since(now, before, &delta);
  put_metric(st->out, g_strdup(key), &delta);
  g_hash_table_replace(st->metrics, g_strdup(key), g_memdup2(now, sizeof(*now)));
  return FALSE;
}

/* Names gone since the last latch (deleted queues) are forgotten: the tables are rebuilt. */
static void
latch(Listener *l)
{
  g_autoptr(KqOstrichSummary) now = kq_ostrich_summary_take(l->owner->server);
  LatchState st = {
    .listener = l,
    .out = summary_new(),
    .counters = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free),
    .metrics = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free),
  };

  g_tree_foreach(now->counters, latch_counter, &st);
  g_tree_foreach(now->metrics, latch_metric, &st);
  g_tree_unref(st.out->gauges);
  g_tree_unref(st.out->labels);
  st.out->gauges = g_tree_ref(now->gauges);
  st.out->labels = g_tree_ref(now->labels);
  g_clear_pointer(&l->last_counters, g_hash_table_unref);
  g_clear_pointer(&l->last_metrics, g_hash_table_unref);
  l->last_counters = st.counters;
  l->last_metrics = st.metrics;
  g_clear_pointer(&l->latched, kq_ostrich_summary_free);
  l->latched = st.out;
}

static void
latch_cb(evutil_socket_t fd, short what, void *arg)
{
  latch(arg);
}

static void
listener_free(gpointer p)
{
  Listener *l = p;

  g_clear_pointer(&l->timer, event_free);
  g_clear_pointer(&l->last_counters, g_hash_table_unref);
  g_clear_pointer(&l->last_metrics, g_hash_table_unref);
  g_clear_pointer(&l->latched, kq_ostrich_summary_free);
  g_free(l);
}

KqOstrichListeners *
kq_ostrich_listeners_new(KqServer *server, struct event_base *base)
{
  KqOstrichListeners *ls = g_new0(KqOstrichListeners, 1);

  ls->server = server;
  ls->base = base;
  ls->listeners = g_ptr_array_new_with_free_func(listener_free);
  return ls;
}

void
kq_ostrich_listeners_free(KqOstrichListeners *ls)
{
  if (ls == NULL)
    return;
  g_ptr_array_unref(ls->listeners);
  g_free(ls);
}

const KqOstrichSummary *
kq_ostrich_listeners_get(KqOstrichListeners *ls, gint64 period_s, GError **error)
{
  Listener *l;
  struct timeval tv = { 0, 0 };

  if (period_s < 1 || period_s > KQ_OSTRICH_MAX_PERIOD_S) {
    g_set_error(error, KQ_OSTRICH_ERROR, KQ_OSTRICH_ERROR_BAD_PERIOD,
                "period must be 1 to %d seconds", KQ_OSTRICH_MAX_PERIOD_S);
    return NULL;
  }
  for (guint i = 0; i < ls->listeners->len; i++) {
    l = ls->listeners->pdata[i];
    if (l->period_s == period_s)
      return l->latched;
  }
  if (ls->listeners->len >= KQ_OSTRICH_MAX_PERIODS) {
    g_set_error(error, KQ_OSTRICH_ERROR, KQ_OSTRICH_ERROR_TOO_MANY_PERIODS,
                "at most %d different periods are kept", KQ_OSTRICH_MAX_PERIODS);
    return NULL;
  }
  l = g_new0(Listener, 1);
  l->owner = ls;
  l->period_s = period_s;
  latch(l);
  if (ls->base != NULL) {
    tv.tv_sec = (time_t) period_s;
    l->timer = event_new(ls->base, -1, EV_PERSIST, latch_cb, l);
    event_add(l->timer, &tv);
  }
  g_ptr_array_add(ls->listeners, l);
  return l->latched;
}

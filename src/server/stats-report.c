/* Gathers the stats of SPEC 6 (see stats-report.h). The global list, and every queue's, keep
 * the order the memcache `stats` command has always printed. */
#include "config.h"

#include "stats-report.h"

#include <unistd.h>

#include "zookeeper/zk-registry.h"

static void
stat_free(gpointer p)
{
  KqStat *stat = p;

  g_free(stat->value);
  g_free(stat);
}

static GPtrArray *
stat_list_new(void)
{
  return g_ptr_array_new_with_free_func(stat_free);
}

static void
add_text(GPtrArray *list, const gchar *name, KqStatKind kind, const gchar *help, gchar *value)
{
  KqStat *stat = g_new(KqStat, 1);

  stat->name = name;
  stat->help = help;
  stat->kind = kind;
  stat->value = value != NULL ? value : g_strdup("");
  stat->latency = FALSE;
  g_ptr_array_add(list, stat);
}

static void
add_int(GPtrArray *list, const gchar *name, KqStatKind kind, const gchar *help, gint64 value)
{
  add_text(list, name, kind, help, g_strdup_printf("%" G_GINT64_FORMAT, value));
}

/* Sum of the queues' maxMemorySize over physical memory (Kestrel: over the JVM heap). */
double
kq_stats_report_reserved_memory_ratio(KqCollection *collection)
{
  g_autoptr(GPtrArray) names = kq_collection_queue_names(collection);
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  double total = 0;

  if (pages <= 0 || page_size <= 0)
    return 0;
  for (guint i = 0; i < names->len; i++) {
    g_autoptr(KqQueue) queue = kq_collection_get(collection, names->pdata[i], FALSE, NULL);
    KqQueueSettings settings;
    if (queue == NULL)
      continue;
    kq_queue_get_settings(queue, &settings);
    if (settings.max_memory_size > 0)
      total += (double) settings.max_memory_size;
    kq_settings_clear(&settings);
  }
  return total / ((double) pages * (double) page_size);
}

/* Only with [zookeeper]: the server-set session and membership. */
static void
add_zookeeper(GPtrArray *list, KqZkRegistry *registry)
{
  KqZkStats zs;

  kq_zk_registry_get_stats(registry, &zs);
  add_int(list, "zookeeper_connected", KQ_STAT_GAUGE,
          "1 while the server has a live ZooKeeper session.", zs.connected);
  add_int(list, "zookeeper_registered", KQ_STAT_GAUGE,
          "1 while the server sets hold this server exactly as its status says.",
          zs.registered);
  add_int(list, "zookeeper_read_member", KQ_STAT_GAUGE,
          "1 while this server is a member of the read server set.", zs.read_member);
  add_int(list, "zookeeper_write_member", KQ_STAT_GAUGE,
          "1 while this server is a member of the write server set.", zs.write_member);
  add_int(list, "zookeeper_sessions", KQ_STAT_COUNTER,
          "ZooKeeper sessions established (the first one included).", zs.sessions);
  add_int(list, "zookeeper_reconnects", KQ_STAT_COUNTER,
          "ZooKeeper connections regained within a session.", zs.reconnects);
  add_int(list, "zookeeper_session_expirations", KQ_STAT_COUNTER,
          "ZooKeeper sessions expired (the nodes made again with a new one).", zs.expirations);
}

GPtrArray *
kq_stats_report_global(KqServer *server)
{
  KqCollection *collection = kq_server_get_collection(server);
  KqServerStats sum, *st = &sum;
  GPtrArray *list = stat_list_new();
  KqCollectionStats cs;

  kq_collection_get_stats(collection, &cs);
  kq_server_read_stats(server, &sum);
#define LOAD(field) __atomic_load_n(&st->field, __ATOMIC_RELAXED)
  add_int(list, "uptime", KQ_STAT_GAUGE, "Seconds since the server started.",
          kq_server_uptime_s(server));
  add_int(list, "time", KQ_STAT_GAUGE, "Server time in seconds since the epoch.",
          g_get_real_time() / G_USEC_PER_SEC);
  add_text(list, "version", KQ_STAT_TEXT, "Server version.", g_strdup(PACKAGE_VERSION));
  add_int(list, "curr_items", KQ_STAT_GAUGE, "Items in all queues.", cs.curr_items);
  add_int(list, "total_items", KQ_STAT_COUNTER, "Items ever added to any queue.",
          cs.total_items);
  add_int(list, "bytes", KQ_STAT_GAUGE, "Bytes of item data in all queues.", cs.bytes);
  add_text(list, "reserved_memory_ratio", KQ_STAT_GAUGE,
           "Sum of the queues' maxMemorySize over physical memory.",
           g_strdup_printf("%.3f", kq_stats_report_reserved_memory_ratio(collection)));
  add_int(list, "curr_connections", KQ_STAT_GAUGE, "Open client connections.",
          LOAD(curr_connections));
  add_int(list, "total_connections", KQ_STAT_COUNTER, "Client connections ever accepted.",
          LOAD(total_connections));
  add_int(list, "cmd_get", KQ_STAT_COUNTER, "Get requests.", LOAD(cmd_get));
  add_int(list, "cmd_set", KQ_STAT_COUNTER, "Set requests.", LOAD(cmd_set));
  add_int(list, "cmd_peek", KQ_STAT_COUNTER, "Peek requests.", LOAD(cmd_peek));
  add_int(list, "get_hits", KQ_STAT_COUNTER, "Gets that returned an item.", LOAD(get_hits));
  add_int(list, "get_misses", KQ_STAT_COUNTER, "Gets that found no item.", LOAD(get_misses));
  add_int(list, "bytes_read", KQ_STAT_COUNTER, "Bytes read from clients.", LOAD(bytes_read));
  add_int(list, "bytes_written", KQ_STAT_COUNTER, "Bytes written to clients.",
          LOAD(bytes_written));
  add_int(list, "queue_creates", KQ_STAT_COUNTER, "Queues created.", cs.queue_creates);
  add_int(list, "queue_deletes", KQ_STAT_COUNTER, "Queues deleted.", cs.queue_deletes);
  add_int(list, "queue_expires", KQ_STAT_COUNTER, "Queues deleted by maxQueueAge.",
          cs.queue_expires);
#undef LOAD
  if (kq_server_get_zookeeper(server) != NULL)
    add_zookeeper(list, kq_server_get_zookeeper(server));
  return list;
}

/* Counters and latency percentiles (ns) of one operation. */
static void
add_latency(GPtrArray *list, const KqLatency *latency, const gchar *const names[6],
            const gchar *const helps[6])
{
  static const double fractions[] = { 0.5, 0.9, 0.99, 0.999 };

  guint first = list->len;

  add_int(list, names[0], KQ_STAT_COUNTER, helps[0], (gint64) latency->count);
  for (gsize i = 0; i < G_N_ELEMENTS(fractions); i++)
    add_int(list, names[i + 1], KQ_STAT_GAUGE, helps[i + 1],
            (gint64) kq_latency_percentile_ns(latency, fractions[i]));
  add_int(list, names[5], KQ_STAT_GAUGE, helps[5], (gint64) latency->max_ns);
  for (guint i = first; i < list->len; i++)
    ((KqStat *) list->pdata[i])->latency = TRUE;
}

static void
add_op_stats(GPtrArray *list, KqQueue *queue)
{
  static const gchar *const set_names[6] = {
    "set_count", "set_latency_p50_ns", "set_latency_p90_ns", "set_latency_p99_ns",
    "set_latency_p999_ns", "set_latency_max_ns",
  };
  static const gchar *const set_helps[6] = {
    "Adds to the queue (stored or refused).",
    "Median time of an add in the engine, in nanoseconds (one add in eight is timed).",
    "90th percentile time of an add in the engine, in nanoseconds (one add in eight is timed).",
    "99th percentile time of an add in the engine, in nanoseconds (one add in eight is timed).",
    "99.9th percentile time of an add in the engine, in nanoseconds (one add in eight is timed).",
    "Longest timed add in the engine, in nanoseconds.",
  };
  static const gchar *const get_names[6] = {
    "get_count", "get_latency_p50_ns", "get_latency_p90_ns", "get_latency_p99_ns",
    "get_latency_p999_ns", "get_latency_max_ns",
  };
  static const gchar *const get_helps[6] = {
    "Reads answered at once (hit or miss; a read that waits is not counted).",
    "Median time of a read in the engine, in nanoseconds (one read in eight is timed).",
    "90th percentile time of a read in the engine, in nanoseconds (one read in eight is timed).",
    "99th percentile time of a read in the engine, in nanoseconds (one read in eight is timed).",
    "99.9th percentile time of a read in the engine, in nanoseconds (one read in eight is timed).",
    "Longest timed read in the engine, in nanoseconds.",
  };
  KqQueueOpStats ops;
  KqLatency reads;

  kq_queue_get_op_stats(queue, &ops);
  reads = ops.read_hit_latency;
  kq_latency_merge(&reads, &ops.read_miss_latency);
  add_latency(list, &ops.add_latency, set_names, set_helps);
  add_latency(list, &reads, get_names, get_helps);
  add_int(list, "read_items", KQ_STAT_COUNTER,
          "Items taken by reads (not peeks), waiting readers included.", ops.items_read);
}

GPtrArray *
kq_stats_report_queue(KqCollection *collection, const gchar *name, gboolean with_ops)
{
  g_autoptr(KqQueue) queue = NULL;
  GPtrArray *list;
  KqQueueStats s;
  KqQueueOpStats ops;

  if (kq_collection_is_alias(collection, name)) {
    gint64 put_items = 0, put_bytes = 0;
    list = stat_list_new();
    kq_collection_get_alias_stats(collection, name, &put_items, &put_bytes);
    add_int(list, "put_items", KQ_STAT_COUNTER, "Items written through the alias.", put_items);
    add_int(list, "put_bytes", KQ_STAT_COUNTER, "Bytes written through the alias.", put_bytes);
    add_text(list, "children", KQ_STAT_TEXT, "Destination queues.",
             kq_collection_children(collection, name));
    return list;
  }
  queue = kq_collection_get(collection, name, FALSE, NULL);
  if (queue == NULL)
    return NULL;

  list = stat_list_new();
  kq_queue_get_stats(queue, &s);
  add_int(list, "items", KQ_STAT_GAUGE, "Items in the queue.", s.items);
  add_int(list, "bytes", KQ_STAT_GAUGE, "Bytes of item data in the queue.", s.bytes);
  add_int(list, "total_items", KQ_STAT_COUNTER, "Items ever added.", s.total_items);
  add_int(list, "logsize", KQ_STAT_GAUGE, "Bytes of journal files.", s.logsize);
  add_int(list, "expired_items", KQ_STAT_COUNTER, "Items that expired.", s.expired_items);
  add_int(list, "mem_items", KQ_STAT_GAUGE, "Items held in memory.", s.mem_items);
  add_int(list, "mem_bytes", KQ_STAT_GAUGE, "Bytes of items held in memory.", s.mem_bytes);
  add_int(list, "age", KQ_STAT_GAUGE,
          "Milliseconds the last fetched item had waited (0 when empty).", s.age_ms);
  add_int(list, "discarded", KQ_STAT_COUNTER, "Items dropped by discardOldWhenFull.",
          s.discarded);
  add_int(list, "waiters", KQ_STAT_GAUGE, "Clients waiting in blocking reads.", s.waiters);
  add_int(list, "open_transactions", KQ_STAT_GAUGE, "Open reliable reads.",
          s.open_transactions);
  add_int(list, "transactions", KQ_STAT_COUNTER, "Reliable reads ever opened.",
          s.transactions);
  add_int(list, "canceled_transactions", KQ_STAT_COUNTER, "Reliable reads aborted.",
          s.canceled_transactions);
  add_int(list, "total_flushes", KQ_STAT_COUNTER, "Flushes.", s.total_flushes);
  add_int(list, "journal_rewrites", KQ_STAT_COUNTER, "Journal rewrites.", s.journal_rewrites);
  add_int(list, "journal_rotations", KQ_STAT_COUNTER, "Journal rotations.",
          s.journal_rotations);
  /* Beyond Kestrel: reads refused because the item could not be taken for good. */
  kq_queue_get_op_stats(queue, &ops);
  add_int(list, "remove_failures", KQ_STAT_COUNTER,
          "Reads that failed because the journal could not record the removal (disk full, "
          "I/O error); the items stayed queued.", ops.remove_failures);
  /* Only a fanout parent lists its children. */
  g_autofree gchar *children = kq_collection_children(collection, name);
  if (children != NULL && *children != '\0')
    add_text(list, "children", KQ_STAT_TEXT, "Fanout children.", g_steal_pointer(&children));
  if (with_ops)
    add_op_stats(list, queue);
  return list;
}

GPtrArray *
kq_stats_report_names(KqCollection *collection)
{
  GPtrArray *names = kq_collection_queue_names(collection);
  g_autoptr(GPtrArray) aliases = kq_collection_alias_names(collection);

  for (guint i = 0; i < aliases->len; i++)
    g_ptr_array_add(names, g_strdup(aliases->pdata[i]));
  return names;
}

KqStatsSnapshot *
kq_stats_snapshot_take(KqServer *server)
{
  KqCollection *collection = kq_server_get_collection(server);
  KqStatsSnapshot *snapshot = g_new0(KqStatsSnapshot, 1);
  g_autoptr(GPtrArray) names = kq_stats_report_names(collection);

  snapshot->global = kq_stats_report_global(server);
  snapshot->names = g_ptr_array_new_with_free_func(g_free);
  snapshot->queues = g_ptr_array_new_with_free_func((GDestroyNotify) g_ptr_array_unref);
  snapshot->ops = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < names->len; i++) {
    GPtrArray *stats = kq_stats_report_queue(collection, names->pdata[i], TRUE);
    g_autoptr(KqQueue) queue = NULL;
    KqQueueOpStats *ops = NULL;
    if (stats == NULL)
      continue; /* deleted meanwhile */
    if (!kq_collection_is_alias(collection, names->pdata[i]) &&
        (queue = kq_collection_get(collection, names->pdata[i], FALSE, NULL)) != NULL) {
      ops = g_new(KqQueueOpStats, 1);
      kq_queue_get_op_stats(queue, ops);
    }
    g_ptr_array_add(snapshot->names, g_strdup(names->pdata[i]));
    g_ptr_array_add(snapshot->queues, stats);
    g_ptr_array_add(snapshot->ops, ops);
  }
  return snapshot;
}

void
kq_stats_snapshot_free(KqStatsSnapshot *snapshot)
{
  if (snapshot == NULL)
    return;
  g_ptr_array_unref(snapshot->global);
  g_ptr_array_unref(snapshot->names);
  g_ptr_array_unref(snapshot->queues);
  g_ptr_array_unref(snapshot->ops);
  g_free(snapshot);
}

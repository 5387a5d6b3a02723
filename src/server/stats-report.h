/* The stats of SPEC 6 as ordered name/value lists: one place gathers them for the memcache
 * `stats` and `dump_stats` commands and for every admin HTTP format (JSON, text, Prometheus). */
#pragma once
#include <glib.h>
#include "server.h"

G_BEGIN_DECLS

typedef enum {
  KQ_STAT_GAUGE,   /* a number that goes up and down */
  KQ_STAT_COUNTER, /* a number that only grows (until restart) */
  KQ_STAT_TEXT,    /* not a number: version, children */
} KqStatKind;

typedef struct {
  const gchar *name; /* "curr_items", or a queue's "items" (static string) */
  const gchar *help; /* one line for humans and Prometheus HELP (static string) */
  KqStatKind kind;
  gchar *value;      /* exactly as the memcache `stats` command prints it */
  gboolean latency;  /* set_count, get_count and their percentiles: Prometheus shows them as
                      * summaries instead (KqStatsSnapshot.ops) */
} KqStat;

/* Global stats in the order of SPEC 6. A GPtrArray of KqStat, freed with g_ptr_array_unref. */
GPtrArray *kq_stats_report_global(KqServer *server);
/* A queue's stats in Kestrel's order (an alias's: put_items, put_bytes, children); NULL when
 * `name` is neither. With `with_ops`, the counters and latency percentiles of sets and gets
 * follow (beyond Kestrel; the memcache commands leave them out). */
GPtrArray *kq_stats_report_queue(KqCollection *collection, const gchar *name, gboolean with_ops);
/* Sum of the queues' maxMemorySize over physical memory (Kestrel: over the JVM heap). */
double kq_stats_report_reserved_memory_ratio(KqCollection *collection);
/* Queue names, then alias names, as Kestrel listed them. Caller unrefs. */
GPtrArray *kq_stats_report_names(KqCollection *collection);

/* Everything at one moment: the global stats, then every queue and alias with its stats
 * (set/get counters and latencies included), for the admin formats. */
typedef struct {
  GPtrArray *global; /* KqStat */
  GPtrArray *names;  /* gchar*, queues then aliases */
  GPtrArray *queues; /* GPtrArray of KqStat, parallel to names */
  GPtrArray *ops;    /* KqQueueOpStats*, parallel to names; NULL for an alias */
} KqStatsSnapshot;

KqStatsSnapshot *kq_stats_snapshot_take(KqServer *server);
void kq_stats_snapshot_free(KqStatsSnapshot *snapshot);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KqStatsSnapshot, kq_stats_snapshot_free)

G_END_DECLS

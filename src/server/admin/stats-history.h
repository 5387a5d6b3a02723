/* One hour of per-second history of a few stats of every queue, for the admin graphs
 * (/graph_data.json and the dashboard's sparklines). Runs on the main thread's loop. */
#pragma once
#include <glib.h>
#include <kestrel/kestrel.h>

struct event_base;

G_BEGIN_DECLS

#define KQ_HISTORY_SECONDS 3600
/* Queues beyond this many are not graphed (bounds memory; see docs/admin.md). */
#define KQ_HISTORY_MAX_QUEUES 100

typedef struct _KqStatsHistory KqStatsHistory;

/* With a base, samples every second on it; with NULL, only when told (tests). */
KqStatsHistory *kq_stats_history_new(KqCollection *collection, struct event_base *base);
void kq_stats_history_free(KqStatsHistory *history);
/* Take one sample of every queue, stamped `time_s` (epoch seconds). Queues gone since the last
 * sample lose their history. */
void kq_stats_history_sample(KqStatsHistory *history, gint64 time_s);
/* Names of the stats kept: items, bytes, mem_bytes, age, logsize, waiters, open_transactions,
 * and put_rate / get_rate (items added / taken in the second before the sample). */
const gchar *const *kq_stats_history_stat_names(void);
gboolean kq_stats_history_knows_stat(const gchar *stat);
/* Samples of `stat` for `queue`, oldest first, as a GArray of KqHistoryPoint; NULL when the
 * queue has no history (unknown, or beyond KQ_HISTORY_MAX_QUEUES). */
typedef struct {
  gint64 time_s;
  gint64 value;
} KqHistoryPoint;
GArray *kq_stats_history_get(KqStatsHistory *history, const gchar *queue, const gchar *stat);

G_END_DECLS

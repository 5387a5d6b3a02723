/* Per-second history of queue stats (see stats-history.h).
 *
 * All queues are sampled at the same ticks, so one ring of timestamps serves them all. A
 * queue's ring of a stat is only allocated once that stat is first non-zero (most queues never
 * have waiters, say), which keeps the usual cost far below the bound of
 * KQ_HISTORY_MAX_QUEUES x stats x KQ_HISTORY_SECONDS x 8 bytes. */
#include "config.h"

#include "stats-history.h"

#include <event2/event.h>

enum {
  S_ITEMS,
  S_BYTES,
  S_MEM_BYTES,
  S_AGE,
  S_LOGSIZE,
  S_WAITERS,
  S_OPEN_TRANSACTIONS,
  S_PUT_RATE,
  S_GET_RATE,
  N_STATS,
};

static const gchar *const stat_names[N_STATS + 1] = {
  "items", "bytes", "mem_bytes", "age", "logsize", "waiters", "open_transactions",
  "put_rate", "get_rate", NULL,
};

typedef struct {
  gint64 *ring[N_STATS]; /* NULL: the stat has been 0 at every sample so far */
  gint64 first_tick;     /* first sample this queue took part in */
  gint64 last_tick;      /* latest sample it took part in */
  gint64 create_time;    /* tells a queue deleted and created again between two samples */
  gint64 last_total_items, last_items_read;
} QueueHistory;

struct _KqStatsHistory {
  KqCollection *collection;
  struct event *timer;
  GHashTable *queues; /* name -> QueueHistory */
  gint64 ticks;       /* samples taken; the latest is ticks - 1 */
  gint64 times[KQ_HISTORY_SECONDS];
};

static void
queue_history_free(gpointer p)
{
  QueueHistory *qh = p;

  for (int i = 0; i < N_STATS; i++)
    g_free(qh->ring[i]);
  g_free(qh);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
  kq_stats_history_sample(arg, g_get_real_time() / G_USEC_PER_SEC);
}

KqStatsHistory *
kq_stats_history_new(KqCollection *collection, struct event_base *base)
{
  KqStatsHistory *history = g_new0(KqStatsHistory, 1);

  history->collection = collection;
  history->queues = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, queue_history_free);
  if (base != NULL) {
    struct timeval second = { 1, 0 };
    history->timer = event_new(base, -1, EV_PERSIST, timer_cb, history);
    event_add(history->timer, &second);
  }
  return history;
}

void
kq_stats_history_free(KqStatsHistory *history)
{
  if (history == NULL)
    return;
  g_clear_pointer(&history->timer, event_free);
  g_hash_table_unref(history->queues);
  g_free(history);
}

static void
record(QueueHistory *qh, int stat, gint64 slot, gint64 value)
{
  if (qh->ring[stat] == NULL) {
    if (value == 0)
      return;
    qh->ring[stat] = g_new0(gint64, KQ_HISTORY_SECONDS);
  }
  qh->ring[stat][slot] = value;
}

void
kq_stats_history_sample(KqStatsHistory *history, gint64 time_s)
{
  g_autoptr(GPtrArray) names = kq_collection_queue_names(history->collection);
  gint64 tick = history->ticks++;
  gint64 slot = tick % KQ_HISTORY_SECONDS;
  GHashTableIter it;
  gpointer value;

  history->times[slot] = time_s;
  for (guint i = 0; i < names->len; i++) {
    const gchar *name = names->pdata[i];
    g_autoptr(KqQueue) queue = kq_collection_get(history->collection, name, FALSE, NULL);
    QueueHistory *qh;
    KqQueueStats s;
    KqQueueOpStats ops;

    if (queue == NULL)
      continue;
    kq_queue_get_stats(queue, &s);
    kq_queue_get_op_stats(queue, &ops);
    qh = g_hash_table_lookup(history->queues, name);
    if (qh != NULL && qh->create_time != s.create_time) {
      g_hash_table_remove(history->queues, name);
      qh = NULL;
    }
    if (qh == NULL) {
      if (g_hash_table_size(history->queues) >= KQ_HISTORY_MAX_QUEUES)
        continue;
      qh = g_new0(QueueHistory, 1);
      qh->first_tick = tick;
      qh->create_time = s.create_time;
      g_hash_table_insert(history->queues, g_strdup(name), qh);
    }
    /* A slot is reused after an hour: a stat that is 0 now must overwrite the old value. */
    record(qh, S_ITEMS, slot, s.items);
    record(qh, S_BYTES, slot, s.bytes);
    record(qh, S_MEM_BYTES, slot, s.mem_bytes);
    record(qh, S_AGE, slot, s.age_ms);
    record(qh, S_LOGSIZE, slot, s.logsize);
    record(qh, S_WAITERS, slot, s.waiters);
    record(qh, S_OPEN_TRANSACTIONS, slot, s.open_transactions);
    /* The first sample of a queue has no earlier one to count from. */
    record(qh, S_PUT_RATE, slot,
           qh->first_tick == tick ? 0 : MAX(0, s.total_items - qh->last_total_items));
    record(qh, S_GET_RATE, slot,
           qh->first_tick == tick ? 0 : MAX(0, ops.items_read - qh->last_items_read));
    qh->last_total_items = s.total_items;
    qh->last_items_read = ops.items_read;
    qh->last_tick = tick;
  }
  /* Deleted queues drop their history. */
  g_hash_table_iter_init(&it, history->queues);
  while (g_hash_table_iter_next(&it, NULL, &value))
    if (((QueueHistory *) value)->last_tick != tick)
      g_hash_table_iter_remove(&it);
}

const gchar *const *
kq_stats_history_stat_names(void)
{
  return stat_names;
}

static int
stat_index(const gchar *stat)
{
  for (int i = 0; i < N_STATS; i++)
    if (g_strcmp0(stat, stat_names[i]) == 0)
      return i;
  return -1;
}

gboolean
kq_stats_history_knows_stat(const gchar *stat)
{
  return stat_index(stat) >= 0;
}

GArray *
kq_stats_history_get(KqStatsHistory *history, const gchar *queue, const gchar *stat)
{
  QueueHistory *qh = g_hash_table_lookup(history->queues, queue);
  int index = stat_index(stat);
  GArray *points;
  gint64 from;

  if (qh == NULL || index < 0)
    return NULL;
  from = MAX(qh->first_tick, history->ticks - KQ_HISTORY_SECONDS);
  points = g_array_sized_new(FALSE, FALSE, sizeof(KqHistoryPoint),
                             (guint) (history->ticks - from));
  for (gint64 tick = from; tick < history->ticks; tick++) {
    gint64 slot = tick % KQ_HISTORY_SECONDS;
    KqHistoryPoint point = { history->times[slot],
                             qh->ring[index] != NULL ? qh->ring[index][slot] : 0 };
    g_array_append_val(points, point);
  }
  return points;
}

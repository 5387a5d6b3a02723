/* Expiry and flushing: items past their expiry leave the head (to expireToQueue when set),
 * flush discards the queued items, open reads past openTransactionTimeout are aborted, and
 * an idle queue past maxQueueAge is stale. Lock discipline as in queue.c. */
#include "queue-private.h"
#include <kestrel/clock.h>
#include <kestrel/error.h>

/* Remove expired items at the head (at most `limit`, < 0 for all). */
gint64 discard_expired_locked(KqQueue *q, gint64 now, gint64 limit, Deferred *d)
{
  gint64 n = 0;
  KqStoreHead head;
  while ((limit < 0 || n < limit) && head_locked(q, &head) && head.expiry != 0 &&
         head.expiry <= now) {
    if (has_journal(q) && !kq_journal_write_remove(q->journal, NULL))
      break;
    if (q->settings.expire_to_queue != NULL) {
      if (d->expired == NULL)
        d->expired = g_ptr_array_new_with_free_func((GDestroyNotify)kq_item_unref);
      g_ptr_array_add(d->expired, kq_item_new(head.data, head.len, head.add_time, 0));
    }
    pop_head_locked(q, head.len);
    q->expired_items++;
    n++;
  }
  return n;
}

/* ---------- flushing and expiry ---------- */

/* Discard the queued items. The journal goes first: until a rewrite holding only the open
 * reads is in place the items stay, so a flush that could not be journalled is not done at
 * all, rather than done in memory and undone by the next restart. */
gboolean kq_queue_try_flush(KqQueue *q, GError **error)
{
  g_mutex_lock(&q->lock);
  gboolean ok = check_open_locked(q, error);
  if (ok && q->items > 0) {
    ok = !has_journal(q) || rewrite_locked(q, FALSE, error);
    if (ok) {
      kq_item_store_clear(&q->store);
      rb_stop_locked(q);
      q->items = q->bytes = 0;
    }
  }
  if (ok)
    q->total_flushes++;
  g_mutex_unlock(&q->lock);
  return ok;
}

void kq_queue_flush(KqQueue *q)
{
  g_autoptr(GError) error = NULL;
  if (!kq_queue_try_flush(q, &error) && !g_error_matches(error, KQ_ERROR, KQ_ERROR_CLOSED))
    g_warning("queue '%s': not flushed: %s", q->name, error->message);
}

gint64 kq_queue_flush_expired(KqQueue *q, gboolean limited)
{
  Deferred d;
  deferred_init(&d);
  g_mutex_lock(&q->lock);
  gint64 n = 0;
  if (!q->closed) {
    gint64 limit = limited ? q->settings.max_expire_sweep : -1;
    n = discard_expired_locked(q, kq_clock_now_ms(), limit, &d);
    if (n > 0 && q->items == 0)
      check_journal_locked(q);
  }
  g_mutex_unlock(&q->lock);
  queue_finish(q, &d);
  return n;
}

gint64 kq_queue_timeout_open_reads(KqQueue *q)
{
  g_mutex_lock(&q->lock);
  gint64 timeout = q->settings.open_transaction_timeout_ms;
  g_autoptr(GPtrArray) due = g_ptr_array_new();
  if (timeout >= 0 && !q->closed) {
    gint64 now = kq_clock_now_ms();
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, q->open);
    while (g_hash_table_iter_next(&it, &key, &value))
      if (((KqOpenRead *)value)->opened_at + timeout <= now)
        g_ptr_array_add(due, key);
  }
  g_mutex_unlock(&q->lock);
  gint64 n = 0;
  for (guint i = 0; i < due->len; i++)
    n += kq_queue_abort(q, GPOINTER_TO_UINT(due->pdata[i]), NULL) ? 1 : 0;
  return n;
}

gboolean kq_queue_is_stale(KqQueue *q)
{
  g_mutex_lock(&q->lock);
  gboolean stale = q->settings.max_queue_age_ms >= 0 && q->items == 0 &&
                   g_hash_table_size(q->open) == 0 && q->waiters.length == 0 &&
                   kq_clock_now_ms() - q->create_time > q->settings.max_queue_age_ms;
  g_mutex_unlock(&q->lock);
  return stale;
}

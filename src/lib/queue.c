/* One durable queue: memory store + journal + open reads + waiters (SPEC 1, 7).
 * Lock discipline: public functions take q->lock; functions ending in _locked expect it held.
 * Callbacks (waiters, durability) and cross-queue work (expireToQueue) run after unlocking. */
#include "queue-private.h"
#include <kestrel/clock.h>
#include <kestrel/error.h>
#include <kestrel/io.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Monotonic nanoseconds for the add/read latency histograms (a vDSO call, no syscall). */
static gint64 now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (gint64)ts.tv_sec * G_GINT64_CONSTANT(1000000000) + ts.tv_nsec;
}

/* Two clock reads cost as much as the rest of an in-memory add, so each thread times one add
 * and one read in eight (the first of each included); every operation is still counted. */
#define LATENCY_SAMPLE_EVERY 8
static _Thread_local guint add_ticks, read_ticks;

static inline gint64 latency_start(guint *ticks)
{
  return (*ticks)++ % LATENCY_SAMPLE_EVERY == 0 ? now_ns() : 0;
}

static inline void latency_end(KqLatency *latency, gint64 start_ns)
{
  if (start_ns != 0)
    kq_latency_record(latency, now_ns() - start_ns);
  else
    kq_latency_count(latency);
}

#define XID_MAX 0x7fffffffu

typedef struct {
  KqWaiter *waiter;
  KqItem *item;
  gboolean timer_ref;  /* the timer still held a reference that we now drop */
} ServedWaiter;

void deferred_init(Deferred *d)
{
  d->served = NULL;
  d->expired = NULL;
  g_queue_init(&d->durable);
}

/* ---------- helpers under the lock ---------- */

gboolean has_journal(KqQueue *q)
{
  return q->journal != NULL;
}

/* Drop the head (already journalled by the caller) and keep counters and read-behind right. */
void pop_head_locked(KqQueue *q, gsize len)
{
  kq_item_store_pop(&q->store);
  q->items--;
  q->bytes -= (gint64)len;
  if (q->rb_path != NULL)
    rb_fill_locked(q);
}

gboolean head_locked(KqQueue *q, KqStoreHead *head)
{
  if (q->store.count == 0 && q->rb_path != NULL)
    rb_fill_locked(q);
  return kq_item_store_head(&q->store, head);
}

guint32 next_xid_locked(KqQueue *q)
{
  do {
    q->last_xid = q->last_xid >= XID_MAX ? 1 : q->last_xid + 1;
  } while (g_hash_table_contains(q->open, GUINT_TO_POINTER(q->last_xid)));
  return q->last_xid;
}

/* The journal could not record a removal: the item stays queued and the read fails. Counted
 * each time; logged once per episode (until a removal is recorded again), not once per read. */
static KqItem *remove_failed_locked(KqQueue *q, GError *local, GError **error)
{
  g_prefix_error(&local, "cannot take an item from queue '%s': ", q->name);
  q->remove_failures++;
  if (!q->remove_failing)
    g_warning("%s; reads of the queue fail until the journal can record them (items kept: %"
              G_GINT64_FORMAT ")", local->message, q->items);
  q->remove_failing = TRUE;
  g_propagate_error(error, local);
  return NULL;
}

/* Take the head for a remove/open/peek. Journal failure leaves the queue unchanged. */
static KqItem *take_head_locked(KqQueue *q, KqRemoveFlags flags, gint64 now, GError **error)
{
  KqStoreHead head;
  if (!head_locked(q, &head))
    return NULL;
  if (flags & KQ_REMOVE_PEEK) {
    if (head.front_item != NULL)
      return kq_item_ref(head.front_item);
    return kq_item_new(head.data, head.len, head.add_time, head.expiry);
  }
  guint32 xid = 0;
  GError *local = NULL;
  if (flags & KQ_REMOVE_OPEN) {
    guint32 saved = q->last_xid;
    xid = next_xid_locked(q);
    if (has_journal(q) &&
        !kq_journal_write_xid(q->journal, KQ_OP_REMOVE_TENTATIVE_XID, xid, &local)) {
      q->last_xid = saved;
      return remove_failed_locked(q, local, error);
    }
  } else if (has_journal(q) && !kq_journal_write_remove(q->journal, &local)) {
    return remove_failed_locked(q, local, error);
  }
  if (q->remove_failing) {
    q->remove_failing = FALSE;
    g_message("queue '%s': the journal records removals again; reads are served", q->name);
  }
  /* The head held as an item (put back, or too large for a segment) is handed out itself, not
   * copied, unless an open read would mark it while others hold it (a peek's reference). */
  KqItem *item;
  if (head.front_item != NULL && head.front_item->xid == 0 &&
      (xid == 0 || g_atomic_int_get(&head.front_item->ref_count) == 1))
    item = kq_item_ref(head.front_item);
  else
    item = kq_item_new(head.data, head.len, head.add_time, head.expiry);
  if (xid != 0)
    item->xid = xid;
  pop_head_locked(q, head.len);
  q->age_ms = MAX(0, now - item->add_time);
  kq_latency_record(&q->delivery_latency, q->age_ms);
  if (xid != 0) {
    KqOpenRead *open = g_new(KqOpenRead, 1);
    open->item = kq_item_ref(item);
    open->opened_at = now;
    g_hash_table_insert(q->open, GUINT_TO_POINTER(xid), open);
    q->transactions++;
  }
  q->items_read++;
  return item;
}

/* Hand items to waiters in arrival order while there are items. */
static void serve_waiters_locked(KqQueue *q, gint64 now, Deferred *d)
{
  while (q->waiters.length > 0) {
    discard_expired_locked(q, now, -1, d);
    KqWaiter *w = q->waiters.head->data;
    KqItem *item = take_head_locked(q, w->flags, now, NULL);
    if (item == NULL)
      return;
    g_queue_unlink(&q->waiters, &w->link);
    w->state = KQ_WAITER_DONE;
    q->get_items_hit++;
    if (d->served == NULL)
      d->served = g_array_new(FALSE, FALSE, sizeof(ServedWaiter));
    ServedWaiter s = { w, item, w->timed && kq_timer_remove(q->timer, &w->timer) };
    g_array_append_val(d->served, s);
  }
}

static void open_read_free(gpointer p)
{
  KqOpenRead *open = p;
  kq_item_unref(open->item);
  g_free(open);
}

/* ---------- lifecycle ---------- */

/* Set once any queue of the process has had a syncJournal setting other than never: until then
 * no add can wait to be durable, and the front-ends' durability check after every set can
 * answer without looking the queue up. Set before the setting takes effect (under the queue's
 * lock), so an add made under it sees the flag afterwards. */
static gint sync_in_use;

static void note_sync_setting(const KqQueueSettings *settings)
{
  if (settings->sync_journal_ms >= 0 && !g_atomic_int_get(&sync_in_use))
    g_atomic_int_set(&sync_in_use, TRUE);
}

gboolean queue_sync_in_use(void)
{
  return g_atomic_int_get(&sync_in_use);
}

KqQueue *kq_queue_new(const gchar *dir, const gchar *name, const KqQueueSettings *settings,
                      KqExpireFunc expire_into, gpointer expire_owner, KqTimer *timer,
                      KqSyncer *syncer, GError **error)
{
  KqQueue *q = g_new0(KqQueue, 1);
  q->ref_count = 1;
  q->name = g_strdup(name);
  q->expire_into = expire_into;
  q->expire_owner = expire_owner;
  q->timer = timer;
  q->syncer = syncer;
  g_mutex_init(&q->lock);
  kq_settings_copy(&q->settings, settings);
  note_sync_setting(settings);
  kq_item_store_init(&q->store);
  q->open = g_hash_table_new_full(NULL, NULL, NULL, open_read_free);
  g_queue_init(&q->waiters);
  g_queue_init(&q->durable_waits);
  q->create_time = kq_clock_now_ms();
  q->last_compact_ms = q->create_time;
  if (dir != NULL && settings->keep_journal) {
    q->journal = kq_journal_new(dir, name);
    g_mutex_lock(&q->lock);
    gboolean ok = replay_locked(q, error);
    if (ok)
      check_journal_locked(q);
    g_mutex_unlock(&q->lock);
    if (!ok) {
      kq_queue_unref(q);
      return NULL;
    }
  }
  return q;
}

KqQueue *kq_queue_ref(KqQueue *q)
{
  g_atomic_int_inc(&q->ref_count);
  return q;
}

void kq_queue_unref(KqQueue *q)
{
  if (q == NULL || !g_atomic_int_dec_and_test(&q->ref_count))
    return;
  rb_stop_locked(q);
  if (q->journal != NULL)
    kq_journal_free(q->journal);
  kq_item_store_clear(&q->store);
  g_hash_table_unref(q->open);
  kq_settings_clear(&q->settings);
  g_mutex_clear(&q->lock);
  g_free(q->name);
  g_free(q);
}

const gchar *kq_queue_get_name(KqQueue *q)
{
  return q->name;
}

gboolean check_open_locked(KqQueue *q, GError **error)
{
  if (q->closed) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_CLOSED, "queue '%s' is closed", q->name);
    return FALSE;
  }
  return TRUE;
}

/* ---------- adding ---------- */

/* `whole`: NULL, or an item of the bytes that the store may hold instead of a copy. */
static gboolean add_locked(KqQueue *q, const guint8 *data, gsize len, KqItem *whole,
                           gint64 add_time, gint64 expiry, gint64 now, Deferred *d,
                           GError **error)
{
  if (!check_open_locked(q, error))
    return FALSE;
  discard_expired_locked(q, now, -1, d);
  if (q->settings.max_item_size >= 0 && (gint64)len > q->settings.max_item_size) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_TOO_LARGE,
                "item of %" G_GSIZE_FORMAT " bytes is over maxItemSize of queue '%s'", len,
                q->name);
    return FALSE;
  }
  while ((q->settings.max_items >= 0 && q->items >= q->settings.max_items) ||
         (q->settings.max_size >= 0 && q->bytes >= q->settings.max_size)) {
    KqStoreHead head;
    if (!q->settings.discard_old_when_full || !head_locked(q, &head)) {
      g_set_error(error, KQ_ERROR, KQ_ERROR_FULL, "queue '%s' is full", q->name);
      return FALSE;
    }
    if (has_journal(q) && !kq_journal_write_remove(q->journal, error))
      return FALSE;
    pop_head_locked(q, head.len);
    q->discarded++;
  }
  if (q->settings.max_age_ms >= 0) {
    gint64 cap = now + q->settings.max_age_ms;
    expiry = (expiry == 0 || expiry > cap) ? cap : expiry;
  }
  if (has_journal(q)) {
    if (!kq_journal_write_addx(q->journal, add_time, expiry, data, len, error))
      return FALSE;
    if (q->rb_path == NULL && q->store.count > 0 &&
        q->store.bytes + (gint64)len > q->settings.max_memory_size) {
      /* read-behind starts at the record just written */
      q->rb_path = g_strdup(kq_journal_get_live_path(q->journal));
      q->rb_offset = kq_journal_size(q->journal) - (gint64)KQ_JOURNAL_ADDX_SIZE(len);
    }
  }
  if (q->rb_path == NULL)
    kq_item_store_push(&q->store, add_time, expiry, data, len, whole);
  q->items++;
  q->bytes += (gint64)len;
  q->total_items++;
  q->put_bytes += (gint64)len;
  serve_waiters_locked(q, now, d);
  check_journal_locked(q);
  return TRUE;
}

G_ALWAYS_INLINE static inline gboolean add_now(KqQueue *q, const guint8 *data, gsize len,
                                               KqItem *whole, gint64 expiry, GError **error)
{
  Deferred d;
  deferred_init(&d);
  gint64 start_ns = latency_start(&add_ticks);
  gint64 now = kq_clock_now_ms();
  g_mutex_lock(&q->lock);
  gboolean ok = add_locked(q, data, len, whole, now, expiry, now, &d, error);
  latency_end(&q->add_latency, start_ns);
  g_mutex_unlock(&q->lock);
  queue_finish(q, &d);
  return ok;
}

gboolean kq_queue_add(KqQueue *q, const void *data, gsize len, gint64 expiry, GError **error)
{
  return add_now(q, data, len, NULL, expiry, error);
}

gboolean kq_queue_add_whole(KqQueue *q, KqItem *item, gint64 expiry, GError **error)
{
  return add_now(q, item->data, item->len, item, expiry, error);
}

gboolean kq_queue_add_item(KqQueue *q, KqItem *item, GError **error)
{
  Deferred d;
  deferred_init(&d);
  gint64 now = kq_clock_now_ms();
  g_mutex_lock(&q->lock);
  gboolean ok = add_locked(q, item->data, item->len, item, item->add_time, item->expiry, now,
                           &d, error);
  g_mutex_unlock(&q->lock);
  queue_finish(q, &d);
  return ok;
}

void kq_queue_return_item(KqQueue *q, KqItem *item)
{
  /* The journal has no record that undoes a REMOVE: the item is journalled again (at the tail
   * for a replay) and put back at the head in memory, so nothing is lost. */
  Deferred d;
  deferred_init(&d);
  g_autoptr(GError) error = NULL;
  g_mutex_lock(&q->lock);
  if (!q->closed) {
    if (has_journal(q) &&
        !kq_journal_write_addx(q->journal, item->add_time, item->expiry, item->data, item->len,
                               &error))
      g_critical("queue '%s': cannot journal a returned item: %s", q->name, error->message);
    KqItem *copy = kq_item_new(item->data, item->len, item->add_time, item->expiry);
    kq_item_store_push_front(&q->store, copy);
    kq_item_unref(copy);
    q->items++;
    q->bytes += (gint64)item->len;
    serve_waiters_locked(q, kq_clock_now_ms(), &d);
  }
  g_mutex_unlock(&q->lock);
  queue_finish(q, &d);
}

/* ---------- removing ---------- */

KqItem *kq_queue_remove(KqQueue *q, KqRemoveFlags flags, GError **error)
{
  KqItem *item = NULL;
  kq_queue_remove_wait(q, flags, 0, NULL, NULL, &item, error);
  return item;
}

static void waiter_fire(gpointer data)
{
  KqWaiter *w = data;
  KqQueue *q = w->queue;
  g_mutex_lock(&q->lock);
  gboolean pending = w->state == KQ_WAITER_PENDING;
  if (pending) {
    g_queue_unlink(&q->waiters, &w->link);
    w->state = KQ_WAITER_DONE;
    /* no miss counted here: the caller's last look at the deadline counts it (see queue.h) */
    kq_latency_record(&q->wait_timeout_latency, (g_get_monotonic_time() - w->parked_us) / 1000);
  }
  g_mutex_unlock(&q->lock);
  if (pending) {
    w->func(q, NULL, w->user_data);
    kq_waiter_unref(w);  /* the pending reference */
  }
  kq_waiter_unref(w);    /* the timer's reference */
}

KqWaiter *kq_queue_remove_wait(KqQueue *q, KqRemoveFlags flags, gint64 timeout_ms,
                               KqWaitFunc func, gpointer user_data, KqItem **item_out,
                               GError **error)
{
  Deferred d;
  deferred_init(&d);
  KqWaiter *w = NULL;
  *item_out = NULL;
  gint64 start_ns = latency_start(&read_ticks);
  gint64 now = kq_clock_now_ms();
  g_mutex_lock(&q->lock);
  if (!check_open_locked(q, error))
    goto out;
  discard_expired_locked(q, now, -1, &d);
  /* earlier waiters come first: a new caller only gets an item when nobody is waiting. Items
   * queued while readers wait are ones the journal could not hand over: try again, and when
   * that fails still, this caller gets the error rather than "empty". */
  KqStoreHead head;
  if (q->waiters.length > 0 && head_locked(q, &head))
    serve_waiters_locked(q, now, &d);
  if (q->waiters.length == 0 || head_locked(q, &head))
    *item_out = take_head_locked(q, flags, now, error);
  if (*item_out == NULL && (error == NULL || *error == NULL) && func != NULL && timeout_ms != 0) {
    w = kq_waiter_new(q, flags, func, user_data);
    g_queue_push_tail_link(&q->waiters, &w->link);
    if (timeout_ms > 0) {
      w->timed = TRUE;
      w->parked_us = g_get_monotonic_time();
      w->timer.deadline = w->parked_us + timeout_ms * 1000;
      w->timer.fire = waiter_fire;
      w->timer.data = kq_waiter_ref(w);
      kq_timer_add(q->timer, &w->timer);
    }
  }
  if (*item_out != NULL && q->items == 0)
    check_journal_locked(q);
  /* a parked read's time is the client's wait, not the engine's */
  if (*item_out != NULL) {
    q->get_items_hit++;
    latency_end(&q->read_hit_latency, start_ns);
  } else if (w == NULL && (error == NULL || *error == NULL)) {
    q->get_items_miss++;
    latency_end(&q->read_miss_latency, start_ns);
  }
out:
  g_mutex_unlock(&q->lock);
  queue_finish(q, &d);
  return w;
}

KqWaiter *kq_waiter_new(KqQueue *queue, KqRemoveFlags flags, KqWaitFunc func,
                        gpointer user_data)
{
  KqWaiter *w = g_new0(KqWaiter, 1);
  w->ref_count = 1;
  w->queue = kq_queue_ref(queue);
  w->flags = flags;
  w->func = func;
  w->user_data = user_data;
  w->state = KQ_WAITER_PENDING;
  w->link.data = w;
  return w;
}

KqWaiter *kq_waiter_ref(KqWaiter *w)
{
  g_atomic_int_inc(&w->ref_count);
  return w;
}

void kq_waiter_unref(KqWaiter *w)
{
  if (w != NULL && g_atomic_int_dec_and_test(&w->ref_count)) {
    kq_queue_unref(w->queue);
    g_free(w);
  }
}

gboolean kq_waiter_cancel(KqWaiter *w)
{
  KqQueue *q = w->queue;
  g_mutex_lock(&q->lock);
  gboolean pending = w->state == KQ_WAITER_PENDING;
  gboolean timer_ref = FALSE;
  if (pending) {
    g_queue_unlink(&q->waiters, &w->link);
    w->state = KQ_WAITER_CANCELLED;
    timer_ref = w->timed && kq_timer_remove(q->timer, &w->timer);
  }
  g_mutex_unlock(&q->lock);
  if (pending) {
    if (timer_ref)
      kq_waiter_unref(w);
    kq_waiter_unref(w);
  }
  return pending;
}

gboolean kq_queue_confirm(KqQueue *q, guint32 xid, GError **error)
{
  g_mutex_lock(&q->lock);
  gboolean ok = FALSE;
  if (!check_open_locked(q, error)) {
    /* closed or deleted: the journal is gone, writing would recreate it */
  } else if (!g_hash_table_contains(q->open, GUINT_TO_POINTER(xid))) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_NO_SUCH_XID, "no open read %u on queue '%s'", xid,
                q->name);
  } else if (!has_journal(q) ||
             kq_journal_write_xid(q->journal, KQ_OP_CONFIRM_REMOVE, xid, error)) {
    g_hash_table_remove(q->open, GUINT_TO_POINTER(xid));
    ok = TRUE;
    if (q->items == 0)
      check_journal_locked(q);
  }
  g_mutex_unlock(&q->lock);
  return ok;
}

gboolean kq_queue_abort(KqQueue *q, guint32 xid, GError **error)
{
  Deferred d;
  deferred_init(&d);
  g_mutex_lock(&q->lock);
  gboolean ok = FALSE;
  KqOpenRead *open = g_hash_table_lookup(q->open, GUINT_TO_POINTER(xid));
  if (!check_open_locked(q, error)) {
    /* closed or deleted: the journal is gone, writing would recreate it */
  } else if (open == NULL) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_NO_SUCH_XID, "no open read %u on queue '%s'", xid,
                q->name);
  } else if (!has_journal(q) || kq_journal_write_xid(q->journal, KQ_OP_UNREMOVE, xid, error)) {
    KqItem *back = kq_item_new(open->item->data, open->item->len, open->item->add_time,
                               open->item->expiry);
    kq_item_store_push_front(&q->store, back);
    kq_item_unref(back);
    q->items++;
    q->bytes += (gint64)open->item->len;
    q->canceled_transactions++;
    g_hash_table_remove(q->open, GUINT_TO_POINTER(xid));
    ok = TRUE;
    serve_waiters_locked(q, kq_clock_now_ms(), &d);
  }
  g_mutex_unlock(&q->lock);
  queue_finish(q, &d);
  return ok;
}

/* ---------- stats and settings ---------- */

void kq_queue_get_stats(KqQueue *q, KqQueueStats *s)
{
  g_mutex_lock(&q->lock);
  s->items = q->items;
  s->bytes = q->bytes;
  s->total_items = q->total_items;
  s->put_bytes = q->put_bytes;
  s->get_items_hit = q->get_items_hit;
  s->get_items_miss = q->get_items_miss;
  s->logsize = q->journal ? kq_journal_size(q->journal) + kq_journal_archived_size(q->journal) : 0;
  s->expired_items = q->expired_items;
  s->mem_items = q->store.count;
  s->mem_bytes = q->store.bytes;
  s->age_ms = q->items > 0 ? q->age_ms : 0;
  s->discarded = q->discarded;
  s->waiters = q->waiters.length;
  s->open_transactions = g_hash_table_size(q->open);
  s->transactions = q->transactions;
  s->canceled_transactions = q->canceled_transactions;
  s->total_flushes = q->total_flushes;
  s->journal_rewrites = q->journal_rewrites;
  s->journal_rotations = q->journal_rotations;
  s->create_time = q->create_time;
  g_mutex_unlock(&q->lock);
}

void kq_queue_get_op_stats(KqQueue *q, KqQueueOpStats *s)
{
  g_mutex_lock(&q->lock);
  s->add_latency = q->add_latency;
  s->read_hit_latency = q->read_hit_latency;
  s->read_miss_latency = q->read_miss_latency;
  s->delivery_latency = q->delivery_latency;
  s->wait_timeout_latency = q->wait_timeout_latency;
  s->items_read = q->items_read;
  s->remove_failures = q->remove_failures;
  g_mutex_unlock(&q->lock);
}

void kq_queue_get_settings(KqQueue *q, KqQueueSettings *settings)
{
  g_mutex_lock(&q->lock);
  kq_settings_copy(settings, &q->settings);
  g_mutex_unlock(&q->lock);
}

void kq_queue_set_settings(KqQueue *q, const KqQueueSettings *settings)
{
  g_mutex_lock(&q->lock);
  gboolean keep = q->settings.keep_journal;
  kq_settings_clear(&q->settings);
  kq_settings_copy(&q->settings, settings);
  note_sync_setting(settings);
  /* A live queue keeps the journalling it started with: switching needs a restart. */
  q->settings.keep_journal = keep;
  g_mutex_unlock(&q->lock);
}

/* ---------- durability ---------- */

static void collect_durable_locked(KqQueue *q, Deferred *d)
{
  while (q->durable_waits.length > 0) {
    KqDurableWait *dw = q->durable_waits.head->data;
    if (dw->target > q->synced)
      break;
    g_queue_push_tail(&d->durable, g_queue_pop_head(&q->durable_waits));
  }
}

gboolean kq_queue_when_durable(KqQueue *q, KqDurableFunc func, gpointer user_data)
{
  g_mutex_lock(&q->lock);
  if (q->journal == NULL || q->settings.sync_journal_ms < 0 || q->closed ||
      q->synced >= kq_journal_written(q->journal)) {
    g_mutex_unlock(&q->lock);
    return TRUE;
  }
  KqDurableWait *dw = g_new(KqDurableWait, 1);
  dw->target = kq_journal_written(q->journal);
  dw->func = func;
  dw->user_data = user_data;
  g_queue_push_tail(&q->durable_waits, dw);
  gint64 due = q->last_sync_us + q->settings.sync_journal_ms * 1000;
  gboolean schedule = !q->sync_scheduled;
  q->sync_scheduled = TRUE;
  g_mutex_unlock(&q->lock);
  if (schedule)
    kq_syncer_schedule(q->syncer, q, due);
  return FALSE;
}

void kq_queue_sync_now(KqQueue *q)
{
  Deferred d;
  deferred_init(&d);
  g_mutex_lock(&q->lock);
  q->sync_scheduled = FALSE;
  if (q->journal == NULL || q->closed) {
    g_mutex_unlock(&q->lock);
    return;
  }
  guint64 target = kq_journal_written(q->journal);
  int fd = kq_journal_dup_fd(q->journal);
  g_mutex_unlock(&q->lock);

  /* the fsync runs without the lock: writers keep appending, and share the next one */
  gboolean ok = fd >= 0 && kq_io_get()->fsync(fd) == 0;
  int err = errno;
  if (fd >= 0)
    close(fd);

  g_mutex_lock(&q->lock);
  q->last_sync_us = g_get_monotonic_time();
  gboolean again = FALSE;
  gint64 due = 0;
  if (ok) {
    q->synced = MAX(q->synced, target);
    collect_durable_locked(q, &d);
  } else {
    g_critical("queue '%s': fsync failed (%s); writes stay unacknowledged, retrying",
               q->name, g_strerror(err));
  }
  if (q->durable_waits.length > 0 && !q->sync_scheduled) {
    again = TRUE;
    q->sync_scheduled = TRUE;
    due = q->last_sync_us + (ok ? q->settings.sync_journal_ms * 1000 : G_USEC_PER_SEC);
  }
  g_mutex_unlock(&q->lock);
  if (again)
    kq_syncer_schedule(q->syncer, q, due);
  queue_finish(q, &d);
}

/* ---------- closing ---------- */

void kq_queue_close(KqQueue *q, gboolean erase)
{
  Deferred d;
  deferred_init(&d);
  GQueue woken = G_QUEUE_INIT;
  g_mutex_lock(&q->lock);
  if (q->closed) {
    g_mutex_unlock(&q->lock);
    return;
  }
  q->closed = TRUE;
  while (q->waiters.length > 0) {
    KqWaiter *w = q->waiters.head->data;
    g_queue_unlink(&q->waiters, &w->link);
    w->state = KQ_WAITER_DONE;
    if (w->timed && kq_timer_remove(q->timer, &w->timer))
      kq_waiter_unref(w);
    g_queue_push_tail(&woken, w);
  }
  if (q->journal != NULL) {
    if (!erase && q->items == 0 && q->rb_path == NULL)
      rewrite_locked(q, TRUE, NULL);  /* a clean stop with an empty queue leaves an empty journal */
    kq_journal_close(q->journal, erase);
    q->synced = kq_journal_written(q->journal);
  }
  while (q->durable_waits.length > 0)
    g_queue_push_tail(&d.durable, g_queue_pop_head(&q->durable_waits));
  rb_stop_locked(q);
  g_mutex_unlock(&q->lock);
  KqWaiter *w;
  while ((w = g_queue_pop_head(&woken)) != NULL) {
    w->func(q, NULL, w->user_data);
    kq_waiter_unref(w);
  }
  queue_finish(q, &d);
}

/* Run everything gathered under the lock: waiter callbacks, durability callbacks, and moving
 * expired items to their expireToQueue. */
void queue_finish(KqQueue *q, Deferred *d)
{
  if (d->served != NULL) {
    for (guint i = 0; i < d->served->len; i++) {
      ServedWaiter *s = &g_array_index(d->served, ServedWaiter, i);
      s->waiter->func(q, s->item, s->waiter->user_data);
      if (s->timer_ref)
        kq_waiter_unref(s->waiter);
      kq_waiter_unref(s->waiter);
    }
    g_array_unref(d->served);
  }
  KqDurableWait *dw;
  while ((dw = g_queue_pop_head(&d->durable)) != NULL) {
    dw->func(dw->user_data);
    g_free(dw);
  }
  if (d->expired != NULL) {
    g_mutex_lock(&q->lock);
    g_autofree gchar *dest = g_strdup(q->settings.expire_to_queue);
    g_mutex_unlock(&q->lock);
    if (q->expire_owner != NULL && dest != NULL)
      q->expire_into(q->expire_owner, dest, d->expired);
    g_ptr_array_unref(d->expired);
  }
}

/* ---------- offline packing ---------- */

gboolean kq_queue_compact(KqQueue *q, GError **error)
{
  g_mutex_lock(&q->lock);
  gboolean ok = check_open_locked(q, error);
  if (ok && has_journal(q))
    ok = rewrite_locked(q, TRUE, error);
  g_mutex_unlock(&q->lock);
  return ok;
}

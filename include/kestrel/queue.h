/* One durable FIFO queue (SPEC 1). Obtain queues from a KqCollection; every function here
 * is thread-safe (each queue has its own lock). Times are ms since the epoch unless noted. */
#pragma once
#include <glib.h>
#include <kestrel/item.h>
#include <kestrel/latency.h>
#include <kestrel/settings.h>

G_BEGIN_DECLS

typedef struct _KqQueue KqQueue;
typedef struct _KqWaiter KqWaiter;

typedef enum {
  KQ_REMOVE_PLAIN = 0,
  KQ_REMOVE_OPEN = 1 << 0,  /* open a reliable read: item gets an xid, held until confirm/abort */
  KQ_REMOVE_PEEK = 1 << 1,  /* return the head without removing it */
} KqRemoveFlags;

typedef struct {
  gint64 items, bytes, total_items, logsize, expired_items, mem_items, mem_bytes, age_ms;
  gint64 discarded, waiters, open_transactions, transactions, canceled_transactions;
  gint64 total_flushes, journal_rewrites, journal_rotations, create_time;
  gint64 put_bytes;                      /* bytes ever added */
  /* Reads and peeks that got an item (a parked read counts when it is served) / that were
   * answered at once with none. A parked read that times out is not counted as a miss: its
   * caller's last kq_queue_remove at the deadline (which tells an error from an empty queue,
   * see kq_queue_remove_wait) is, so each read that ends empty counts once. */
  gint64 get_items_hit, get_items_miss;
} KqQueueStats;

/* Operation counters and engine latencies of a queue (beyond Kestrel's stats). */
typedef struct {
  KqLatency add_latency;  /* kq_queue_add, lock wait and journal write included */
  KqLatency read_hit_latency;  /* reads answered at once with an item (a parked read is not
                                * timed) */
  KqLatency read_miss_latency; /* reads answered at once with none */
  /* These two record milliseconds, not nanoseconds (waits reach hours). */
  KqLatency delivery_latency;  /* how long each item taken by a read (not a peek) had been
                                * queued */
  KqLatency wait_timeout_latency; /* how long each parked read that timed out waited */
  gint64 items_read;      /* items taken by reads (not peeks), hand-offs to waiters included */
  gint64 remove_failures; /* reads (hand-offs to waiters included) that failed because the
                           * journal could not record the removal (disk full, I/O error) */
} KqQueueOpStats;

/* Called exactly once for a waiter that was not cancelled, on whichever thread completed it
 * (an adder, the engine's timer thread, or close), never under an engine lock.
 * item: transfer full; NULL when the deadline passed or the queue/collection closed. */
typedef void (*KqWaitFunc)(KqQueue *queue, KqItem *item, gpointer user_data);

/* Called once the journal writes made so far to the queue(s) are durable (syncJournal). */
typedef void (*KqDurableFunc)(gpointer user_data);

KqQueue *kq_queue_ref(KqQueue *queue);
void kq_queue_unref(KqQueue *queue);
const gchar *kq_queue_get_name(KqQueue *queue);

/* Append an item (expiry: absolute ms, 0 = none; maxAge applies). Writes to this queue only:
 * use kq_collection_add() for fanout and aliases. FALSE + KQ_ERROR_FULL / TOO_LARGE / IO / CLOSED. */
gboolean kq_queue_add(KqQueue *queue, const void *data, gsize len, gint64 expiry, GError **error);

/* Take (or open, or peek at) the head item. NULL with no error when empty; NULL +
 * KQ_ERROR_IO when the journal cannot record the removal (the item stays queued: a caller must
 * not report this as empty), KQ_ERROR_CLOSED. Such failures are counted (remove_failures) and
 * logged once until a removal succeeds again. */
KqItem *kq_queue_remove(KqQueue *queue, KqRemoveFlags flags, GError **error);

/* Like kq_queue_remove, but when the queue is empty, park a waiter: returns it and calls
 * `func` later (item, or NULL when timeout_ms passes; timeout_ms < 0 waits until close).
 * When an item is available now, returns NULL and sets *item_out (func is not called).
 * Waiters are served in arrival order. On error returns NULL with *item_out NULL.
 * An item the journal cannot hand to a waiter stays queued and the waiter keeps waiting: func
 * gets NULL at the deadline. The next read tries the hand-off again and, when it still fails,
 * fails with the error itself, so a last kq_queue_remove tells an error from an empty queue. */
KqWaiter *kq_queue_remove_wait(KqQueue *queue, KqRemoveFlags flags, gint64 timeout_ms,
                               KqWaitFunc func, gpointer user_data, KqItem **item_out,
                               GError **error);

/* Withdraw a waiter. TRUE: it was pending and its func will never run. FALSE: func is running
 * or about to run. Either way `waiter` must not be used again.
 * The handle is valid only until func returns, and func runs on another thread: callers that
 * may cancel must make func record, under a lock of their own, that it ran, and call
 * kq_waiter_cancel() under that lock only when it has not (func then blocks on the lock, and
 * the engine keeps the waiter alive until func returns). */
gboolean kq_waiter_cancel(KqWaiter *waiter);

/* Finish an open read for good / put it back at the head. FALSE when xid is not open. */
gboolean kq_queue_confirm(KqQueue *queue, guint32 xid, GError **error);
gboolean kq_queue_abort(KqQueue *queue, guint32 xid, GError **error);

/* Put an item taken with a plain remove back at the head (a client died before it got it).
 * The caller keeps its reference to `item`. */
void kq_queue_return_item(KqQueue *queue, KqItem *item);

/* Discard every queued item (open reads are left alone). When the journal cannot record the
 * flush, nothing is discarded and a warning is logged (kq_collection_flush() returns the error). */
void kq_queue_flush(KqQueue *queue);
/* Remove expired items now (up to maxExpireSweep when limited is TRUE); returns how many. */
gint64 kq_queue_flush_expired(KqQueue *queue, gboolean limited);

void kq_queue_get_stats(KqQueue *queue, KqQueueStats *stats);
void kq_queue_get_op_stats(KqQueue *queue, KqQueueOpStats *stats);
/* Resolved settings in force (copy; caller clears). */
void kq_queue_get_settings(KqQueue *queue, KqQueueSettings *settings);

/* TRUE when everything written so far is durable at the configured level (func not called);
 * otherwise FALSE and func runs once on the sync thread when it is. */
gboolean kq_queue_when_durable(KqQueue *queue, KqDurableFunc func, gpointer user_data);

/* Rewrite the queue's journal files now into one file holding its state (open reads as
 * ADDX + REMOVE_TENTATIVE_XID, then the queued items), leaving an empty live file, as the
 * engine's own compaction does (SPEC 7). No-op without a journal. FALSE + KQ_ERROR_IO/CLOSED. */
gboolean kq_queue_compact(KqQueue *queue, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(KqQueue, kq_queue_unref)

G_END_DECLS

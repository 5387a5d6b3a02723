/* Engine-internal view of a queue, shared by queue*.c and collection.c. */
#pragma once
#include <kestrel/queue.h>
#include "item-store.h"
#include "journal.h"
#include "journal-files.h"
#include "syncer.h"
#include "timer.h"

typedef struct {
  KqItem *item;
  gint64 opened_at;  /* ms */
} KqOpenRead;

/* A blocking read parked on a queue. */
typedef enum { KQ_WAITER_PENDING, KQ_WAITER_DONE, KQ_WAITER_CANCELLED } KqWaiterState;

struct _KqWaiter {
  gint ref_count;
  KqQueue *queue;            /* reference held for the waiter's life */
  KqRemoveFlags flags;
  KqWaitFunc func;
  gpointer user_data;
  KqWaiterState state;       /* guarded by the queue lock */
  GList link;                /* in the queue's waiter list while pending */
  KqTimerEntry timer;
  gboolean timed;
  gint64 parked_us;          /* monotonic time it started waiting (timed waiters) */
};

KqWaiter *kq_waiter_new(KqQueue *queue, KqRemoveFlags flags, KqWaitFunc func,
                        gpointer user_data);
KqWaiter *kq_waiter_ref(KqWaiter *waiter);
void kq_waiter_unref(KqWaiter *waiter);

/* Hands items that expired out of a queue to the queue `dest` (its expireToQueue); `owner` is
 * the queue's expire_owner. Runs with no queue lock held. */
typedef void (*KqExpireFunc)(gpointer owner, const gchar *dest, GPtrArray *items);

typedef struct {
  guint64 target;    /* journal position that must be durable */
  KqDurableFunc func;
  gpointer user_data;
} KqDurableWait;

struct _KqQueue {
  gint ref_count;
  gchar *name;
  KqExpireFunc expire_into;  /* where expireToQueue items go (the collection's) */
  gpointer expire_owner;     /* its first argument, not owned; NULL for a queue used alone */
  KqTimer *timer;
  KqSyncer *syncer;

  GMutex lock;               /* guards everything below */
  KqQueueSettings settings;
  KqItemStore store;         /* items in memory, head first */
  gint64 items, bytes;       /* queued items (memory + read-behind), open reads excluded */
  GHashTable *open;          /* xid -> KqOpenRead* */
  guint32 last_xid;
  KqJournal *journal;        /* NULL when keepJournal is false */
  gchar *rb_path;            /* read-behind: file and offset of the first item not in memory */
  gint64 rb_offset;
  KqJournalReader *rb_reader;
  gboolean rb_pack_wanted;   /* read-behind left files behind: compact when allowed */
  GQueue waiters;            /* KqWaiter, arrival order */
  GQueue durable_waits;      /* KqDurableWait, in target order */
  guint64 synced;
  gint64 last_sync_us;
  gboolean sync_scheduled;
  gboolean closed;

  gint64 total_items, expired_items, discarded, transactions, canceled_transactions;
  gint64 total_flushes, journal_rewrites, journal_rotations, age_ms;
  gint64 create_time, last_compact_ms;
  gint64 items_read;         /* items taken by reads (not peeks), waiters' included */
  gint64 remove_failures;    /* reads failed because the journal could not record them */
  gboolean remove_failing;   /* the last removal failed so: the next success ends the episode */
  KqLatency add_latency;     /* kq_queue_add calls */
  gint64 put_bytes;          /* bytes ever added (Kestrel's put_bytes) */
  gint64 get_items_hit;      /* reads and peeks that got an item, waiters' included */
  gint64 get_items_miss;     /* reads and peeks answered at once with none */
  KqLatency read_hit_latency;  /* reads answered at once with an item; parked ones excluded */
  KqLatency read_miss_latency; /* reads answered at once with none */
  KqLatency delivery_latency;  /* ms items waited in the queue until a read took them */
  KqLatency wait_timeout_latency; /* ms parked reads waited before they timed out */
};

/* Create a queue, replaying its journal files in `dir` (dir NULL or !keep_journal: memory only).
 * Expired items bound for an expireToQueue go to expire_into(expire_owner, ...). */
KqQueue *kq_queue_new(const gchar *dir, const gchar *name, const KqQueueSettings *settings,
                      KqExpireFunc expire_into, gpointer expire_owner, KqTimer *timer,
                      KqSyncer *syncer, GError **error);
/* kq_queue_flush with its error: FALSE + KQ_ERROR_IO when the journal could not record the
 * flush (nothing was flushed then) or KQ_ERROR_CLOSED. */
gboolean kq_queue_try_flush(KqQueue *queue, GError **error);
/* Wake waiters with no item, make the journal durable (or erase it), refuse further use. */
void kq_queue_close(KqQueue *queue, gboolean erase);
void kq_queue_set_settings(KqQueue *queue, const KqQueueSettings *settings);
/* fsync the journal and run the durability callbacks it covers (sync thread). */
void kq_queue_sync_now(KqQueue *queue);
/* Abort open reads held longer than openTransactionTimeout; returns how many. */
gint64 kq_queue_timeout_open_reads(KqQueue *queue);
/* TRUE when empty, no open reads, and older than maxQueueAge. */
gboolean kq_queue_is_stale(KqQueue *queue);
/* Add while holding no lock of the destination (used for expireToQueue). */
gboolean kq_queue_add_item(KqQueue *queue, KqItem *item, GError **error);
/* kq_queue_add of the item's bytes; the queue may hold the item itself (see
 * kq_collection_add_item). */
gboolean kq_queue_add_whole(KqQueue *queue, KqItem *item, gint64 expiry, GError **error);

/* ---------- shared by queue.c and its parts (queue-behind.c, queue-journal.c,
 * queue-expiry.c); not exported from libkestrel ---------- */

/* Work gathered under the lock and finished after it is released. */
typedef struct {
  GArray *served;     /* ServedWaiter */
  GPtrArray *expired; /* KqItem* for expireToQueue */
  GQueue durable;     /* KqDurableWait* ready to run */
} Deferred;

/* queue.c */
G_GNUC_INTERNAL void deferred_init(Deferred *d);
/* Run what `d` gathered: waiter and durability callbacks, expireToQueue moves (no lock held). */
G_GNUC_INTERNAL void queue_finish(KqQueue *q, Deferred *d);
G_GNUC_INTERNAL gboolean has_journal(KqQueue *q);
G_GNUC_INTERNAL void pop_head_locked(KqQueue *q, gsize len);
G_GNUC_INTERNAL gboolean head_locked(KqQueue *q, KqStoreHead *head);
G_GNUC_INTERNAL guint32 next_xid_locked(KqQueue *q);
G_GNUC_INTERNAL gboolean check_open_locked(KqQueue *q, GError **error);
/* FALSE while no queue has ever had syncJournal set: then nothing waits to be durable. */
G_GNUC_INTERNAL gboolean queue_sync_in_use(void);

/* queue-behind.c */
G_GNUC_INTERNAL void rb_stop_locked(KqQueue *q);
G_GNUC_INTERNAL void rb_fill_locked(KqQueue *q);
G_GNUC_INTERNAL gboolean dump_read_behind(KqQueue *q, KqJournalSink *sink,
                                          const gchar *last_path, GError **error);

/* queue-journal.c */
G_GNUC_INTERNAL gboolean rewrite_locked(KqQueue *q, gboolean queued, GError **error);
G_GNUC_INTERNAL void check_journal_locked(KqQueue *q);
G_GNUC_INTERNAL gboolean replay_locked(KqQueue *q, GError **error);

/* queue-expiry.c */
G_GNUC_INTERNAL gint64 discard_expired_locked(KqQueue *q, gint64 now, gint64 limit,
                                              Deferred *d);

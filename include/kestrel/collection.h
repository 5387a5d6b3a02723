/* The set of queues in one queue folder (SPEC 1, 5, 7): creation on first reference, replay at
 * open, fanout children, aliases, delete, expiry sweeps, reload, and the folder lock. */
#pragma once
#include <glib.h>
#include <kestrel/queue.h>
#include <kestrel/settings.h>

G_BEGIN_DECLS

typedef struct _KqCollection KqCollection;

/* total_items counts the adds kq_collection_add accepted since open (one per add, whatever
 * fanout or aliases copy it to; never lowered by a delete); the queue_* counters count since
 * open too. */
typedef struct {
  gint64 curr_items, total_items, bytes, queue_creates, queue_deletes, queue_expires;
} KqCollectionStats;

/* Lock `path` (KQ_ERROR_LOCKED if another process holds it) and replay every journal in it.
 * `config` is copied by reference: the collection keeps its own pointer until reload/close;
 * pass NULL for built-in defaults. */
KqCollection *kq_collection_open(const gchar *path, KqConfigSet *config, GError **error);

/* Stop: wake every waiter with no item, make journals durable, release the lock, free. */
void kq_collection_close(KqCollection *collection);

/* The queue named `name`, created (with its journal) when absent and create is TRUE.
 * NULL + KQ_ERROR_BAD_NAME for a bad name; NULL with no error when absent and !create.
 * Aliases are not queues: kq_collection_is_alias() first. Returns a new reference. */
KqQueue *kq_collection_get(KqCollection *collection, const gchar *name, gboolean create,
                           GError **error);
gboolean kq_collection_is_alias(KqCollection *collection, const gchar *name);

/* Add to a queue (and its fanout children) or to an alias's destinations. */
gboolean kq_collection_add(KqCollection *collection, const gchar *name, const void *data,
                           gsize len, gint64 expiry, GError **error);
/* kq_collection_add of an item's bytes. A queue holds the item itself instead of a copy (and
 * gives it the add's times) when it is of KQ_ITEM_HELD_WHOLE bytes or more, has no xid, and the
 * caller's reference is its only one; the caller keeps its reference either way. */
gboolean kq_collection_add_item(KqCollection *collection, const gchar *name, KqItem *item,
                                gint64 expiry, GError **error);
/* As kq_queue_when_durable, for every queue an add to `name` writes to. */
gboolean kq_collection_when_durable(KqCollection *collection, const gchar *name,
                                    KqDurableFunc func, gpointer user_data);

/* Delete a queue and every journal file of it (a child is detached from its parent).
 * Ignored for aliases. Open reads and waiters on it are dropped (waiters get NULL). */
gboolean kq_collection_delete(KqCollection *collection, const gchar *name, GError **error);
/* Flush / expire a queue; one that does not exist is left uncreated (as in Kestrel): flush
 * succeeds and flush_expired returns 0. A bad name: FALSE / -1 with KQ_ERROR_BAD_NAME. */
gboolean kq_collection_flush(KqCollection *collection, const gchar *name, GError **error);
void kq_collection_flush_all(KqCollection *collection);
gint64 kq_collection_flush_expired(KqCollection *collection, const gchar *name, GError **error);
gint64 kq_collection_flush_all_expired(KqCollection *collection);

/* Periodic work: expiry sweep (maxExpireSweep), openTransactionTimeout, maxQueueAge deletion.
 * Returns the number of items expired. */
gint64 kq_collection_sweep(KqCollection *collection);

/* Apply new queue/alias settings to live queues. Takes ownership of `config`. */
void kq_collection_reload(KqCollection *collection, KqConfigSet *config);

/* Sorted names of queues (not aliases) / aliases. Caller frees with g_ptr_array_unref. */
GPtrArray *kq_collection_queue_names(KqCollection *collection);
GPtrArray *kq_collection_alias_names(KqCollection *collection);
void kq_collection_get_stats(KqCollection *collection, KqCollectionStats *stats);
/* The operation counters and latencies of every queue added up, those of queues deleted since
 * open included (so they never go down). */
void kq_collection_get_op_stats(KqCollection *collection, KqQueueOpStats *stats);
void kq_collection_get_alias_stats(KqCollection *collection, const gchar *name,
                                   gint64 *put_items, gint64 *put_bytes);
/* Comma-separated names of the fanout children of `name` ("" when none). Caller frees. */
gchar *kq_collection_children(KqCollection *collection, const gchar *name);
const gchar *kq_collection_get_path(KqCollection *collection);

G_END_DECLS

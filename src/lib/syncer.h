/* Group commit (SPEC 5 syncJournal, DESIGN "Journal durability"): one thread fsyncs each queue
 * whose writes wait to be durable, so concurrent producers share one fsync. The syncer knows
 * its targets (queues) only through the functions it is made with. */
#pragma once
#include <glib.h>

typedef struct _KqSyncer KqSyncer;

/* Sync `target` now, on the sync thread; it may schedule itself again. */
typedef void (*KqSyncFunc)(gpointer target);
/* Take the reference the syncer holds on a scheduled target (`unref` drops it). */
typedef gpointer (*KqSyncRefFunc)(gpointer target);

KqSyncer *kq_syncer_new(KqSyncFunc sync, KqSyncRefFunc ref, GDestroyNotify unref);
/* Finish outstanding syncs, stop the thread, free. */
void kq_syncer_free(KqSyncer *syncer);
/* Sync `target` no earlier than `due_us` (monotonic); keeps a reference until done. */
void kq_syncer_schedule(KqSyncer *syncer, gpointer target, gint64 due_us);

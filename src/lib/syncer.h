/* Group commit (SPEC 5 syncJournal, DESIGN "Journal durability"): one thread fsyncs each queue
 * whose writes wait to be durable, so concurrent producers share one fsync. */
#pragma once
#include <glib.h>
#include <kestrel/queue.h>

typedef struct _KqSyncer KqSyncer;

KqSyncer *kq_syncer_new(void);
/* Finish outstanding syncs, stop the thread, free. */
void kq_syncer_free(KqSyncer *syncer);
/* Sync `queue` no earlier than `due_us` (monotonic); keeps a reference until done. */
void kq_syncer_schedule(KqSyncer *syncer, KqQueue *queue, gint64 due_us);

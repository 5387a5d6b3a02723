/* Open reads handed out by Thrift `get` with auto_abort_msec > 0 (SPEC 1.3, 4). Each gets a
 * server-unique non-zero 64-bit id mapped to (queue, engine xid) and an auto-abort timer on the
 * Thrift loop. Reads survive their connection; only the per-connection count that enforces
 * maxOpenTransactions goes away with it. Loop thread only. */
#pragma once
#include <glib.h>
#include <kestrel/kestrel.h>

G_BEGIN_DECLS

typedef struct _KqThriftReads KqThriftReads;

/* Timers are attached to `context`. */
KqThriftReads *kq_thrift_reads_new(GMainContext *context);
/* Forget every read without aborting it: the engine keeps them open (and replays them as open
 * at the next start). */
void kq_thrift_reads_free(KqThriftReads *reads);

/* Register an open read of `owner` (a connection serial) and start its auto-abort timer.
 * Returns its id. */
guint64 kq_thrift_reads_add(KqThriftReads *reads, guint64 owner, KqQueue *queue, guint32 xid,
                            guint auto_abort_ms);
/* Open reads `owner` holds on `queue_name`. */
guint kq_thrift_reads_count(KqThriftReads *reads, guint64 owner, const gchar *queue_name);
/* Confirm / abort by id. FALSE when the id is not an open read. */
gboolean kq_thrift_reads_confirm(KqThriftReads *reads, guint64 id);
gboolean kq_thrift_reads_abort(KqThriftReads *reads, guint64 id);
/* The owner disconnected: its reads stay open but no longer count against anyone. */
void kq_thrift_reads_forget_owner(KqThriftReads *reads, guint64 owner);
/* Number of open reads registered (for tests and stats). */
guint kq_thrift_reads_size(KqThriftReads *reads);

G_END_DECLS

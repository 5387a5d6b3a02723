/* One Thrift `get` call (SPEC 4): takes up to max_items items, parking on the engine when the
 * queue runs dry and a timeout is left, without ever blocking the loop. The engine's wake-up
 * comes on another thread and is marshalled onto the handler's loop. Loop thread only. */
#pragma once
#include <glib.h>

#include "thrift-handler.h"

G_BEGIN_DECLS

typedef struct _KqThriftGet KqThriftGet;
typedef void (*KqThriftGetDone)(KqThriftGet *get, gpointer user_data);

/* timeout_msec 0: only items available now; < 0: no items (the deadline has passed, as in
 * Kestrel). max_items < 0: no limit. auto_abort_msec > 0: items are open reads.
 * queue_name is a name argument of the request being handled (its length on the wire is kept). */
KqThriftGet *kq_thrift_get_new(KqThriftHandler *handler, guint64 owner, const gchar *queue_name,
                               gint32 max_items, gint32 timeout_msec, gint32 auto_abort_msec);

/* Run until finished (TRUE: the result is ready, `done` is not called) or parked (FALSE: `done`
 * runs on the loop once it finishes). */
gboolean kq_thrift_get_start(KqThriftGet *get, KqThriftGetDone done, gpointer user_data);

/* One item a get took: the queue's item itself (its bytes are not copied) and its open-read id
 * (0: the get did not open it). */
typedef struct {
  KqItem *item;
  gint64 id;
} KqThriftGotItem;

/* Result, once finished: KqThriftGotItem entries (borrowed), or the error that failed the
 * call. */
GArray *kq_thrift_get_items(KqThriftGet *get);
const GError *kq_thrift_get_error(KqThriftGet *get);

/* The client is gone before it received the result: withdraw the waiter and give every item
 * back (plain ones to the head of the queue, opened ones aborted). `done` will not run. */
void kq_thrift_get_cancel(KqThriftGet *get);

void kq_thrift_get_unref(KqThriftGet *get);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(KqThriftGet, kq_thrift_get_unref)

G_END_DECLS

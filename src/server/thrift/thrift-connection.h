/* One Thrift client connection on the loop: reads 4-byte big-endian length-prefixed frames from
 * a non-blocking socket, refuses frames over thriftMaxFrameSize with an error reply and a close,
 * runs one request at a time through the processor (a `get` may wait; the connection keeps
 * watching for the client going away meanwhile) and writes reply frames back. Loop thread only. */
#pragma once
#include <glib.h>

#include "thrift-processor.h"

G_BEGIN_DECLS

typedef void (*KqThriftConnClosedFunc)(KqThriftConn *conn, gpointer user_data);

/* fd < 0: no socket (fuzzing): input comes from kq_thrift_conn_feed(), output is dropped.
 * `closed` runs once when the connection closes. */
KqThriftConn *kq_thrift_conn_new(KqThriftProcessor *processor, gint fd, guint64 serial,
                                 gint64 max_frame_size, KqThriftConnClosedFunc closed,
                                 gpointer closed_data);
KqThriftConn *kq_thrift_conn_ref(KqThriftConn *conn);
void kq_thrift_conn_unref(KqThriftConn *conn);

guint64 kq_thrift_conn_get_serial(KqThriftConn *conn);

/* connectionLimitRefuseReads/Writes (SPEC 8): decided once, when the connection is accepted,
 * for its whole life, as for the memcache and text protocols. */
void kq_thrift_conn_set_refusals(KqThriftConn *conn, gboolean refuse_reads, gboolean refuse_writes);
gboolean kq_thrift_conn_refuses_reads(KqThriftConn *conn);
gboolean kq_thrift_conn_refuses_writes(KqThriftConn *conn);
gboolean kq_thrift_conn_is_closed(KqThriftConn *conn);

/* Monotonic µs of the last bytes received, and whether a request waits for its reply
 * (clientTimeout drops only connections idle on both counts). */
gint64 kq_thrift_conn_last_activity(KqThriftConn *conn);
gboolean kq_thrift_conn_is_busy(KqThriftConn *conn);

/* Bytes received from the client. */
void kq_thrift_conn_feed(KqThriftConn *conn, const guint8 *data, gsize len);

/* A request is waiting for its reply; `cancel` (may be NULL) runs if the connection closes
 * first. */
void kq_thrift_conn_set_pending(KqThriftConn *conn, GDestroyNotify cancel, gpointer data);
/* The reply of the waiting request (transfer full); then the next buffered request runs. */
void kq_thrift_conn_deliver(KqThriftConn *conn, GByteArray *reply);

/* Close now: pending request cancelled, socket closed, `closed` called. */
void kq_thrift_conn_close(KqThriftConn *conn);

G_END_DECLS

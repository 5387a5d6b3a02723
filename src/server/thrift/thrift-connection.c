/* A Thrift client connection: see thrift-connection.h. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>

#include "input-buffer.h"
#include "thrift-connection.h"

/* Read at most this much per recv, and READS_PER_WAKE recvs per wake-up, so one busy client
 * cannot starve the others. */
#define READ_CHUNK (64 * 1024)
#define READS_PER_WAKE 16
/* Stop reading requests while this much reply data waits for a slow reader. */
#define OUTPUT_HIGH_WATER (8 * 1024 * 1024)

struct _KqThriftConn {
  gint ref_count;
  guint64 serial;
  gint fd;
  GSource *source;
  gpointer fd_tag;
  GIOCondition watched; /* what fd_tag asks for now */
  KqThriftProcessor *processor;
  const KqThriftEnv *env;
  gint64 max_frame_size;
  KqInputBuffer in;       /* frames are parsed in place; a large one is read into a block
                           * grown once to its length */
  guint8 *in_spare;       /* the input's spare slot: one freed block of the usual size */
  GByteArray *out;
  gsize out_pos;
  gint64 last_activity; /* monotonic µs */
  gboolean busy;     /* a request waits for its reply */
  gboolean handling; /* a request is being handled: its frame is still at the input's front */
  gboolean closing;  /* send what is queued, then close */
  gboolean closed;
  gboolean refuse_reads;  /* connectionLimitRefuseReads was exceeded at accept */
  gboolean refuse_writes; /* connectionLimitRefuseWrites was exceeded at accept */
  GDestroyNotify pending_cancel;
  gpointer pending_data;
  KqThriftConnClosedFunc closed_func;
  gpointer closed_data;
};

static void conn_flush(KqThriftConn *conn);
static void conn_update_watch(KqThriftConn *conn);

KqThriftConn *
kq_thrift_conn_ref(KqThriftConn *conn)
{
  conn->ref_count++;
  return conn;
}

void
kq_thrift_conn_unref(KqThriftConn *conn)
{
  if (conn == NULL || --conn->ref_count > 0)
    return;
  g_warn_if_fail(conn->closed);
  kq_input_buffer_clear(&conn->in);
  g_free(conn->in_spare);
  g_byte_array_unref(conn->out);
  g_object_unref(conn->processor);
  g_free(conn);
}

guint64
kq_thrift_conn_get_serial(KqThriftConn *conn)
{
  return conn->serial;
}

void
kq_thrift_conn_set_refusals(KqThriftConn *conn, gboolean refuse_reads, gboolean refuse_writes)
{
  conn->refuse_reads = refuse_reads;
  conn->refuse_writes = refuse_writes;
}

gboolean
kq_thrift_conn_refuses_reads(KqThriftConn *conn)
{
  return conn->refuse_reads;
}

gboolean
kq_thrift_conn_refuses_writes(KqThriftConn *conn)
{
  return conn->refuse_writes;
}

gboolean
kq_thrift_conn_is_closed(KqThriftConn *conn)
{
  return conn->closed;
}

/* `reply`, a whole frame (kq_thrift_frame_transport_take_output), goes out after what waits. */
static void
queue_reply(KqThriftConn *conn, GByteArray *reply)
{
  if (reply == NULL)
    return;
  if (reply->len > 0 && !conn->closed) {
    KQ_THRIFT_STAT_ADD(conn->env, bytes_written, reply->len);
    if (conn->out->len == 0) {
      /* Nothing waits: the reply itself is the output, not a copy of it. */
      g_byte_array_unref(conn->out);
      conn->out = reply;
      return;
    }
    g_byte_array_append(conn->out, reply->data, reply->len);
  }
  g_byte_array_unref(reply);
}

/* The length a frame's 4-byte header at `p` announces (big-endian). */
static inline guint32
frame_length_at(const guint8 *p)
{
  return ((guint32)p[0] << 24) | ((guint32)p[1] << 16) | ((guint32)p[2] << 8) | p[3];
}

/* Run every complete frame buffered, one request at a time. */
static void
process_frames(KqThriftConn *conn)
{
  if (conn->handling)
    return; /* the loop below goes on once the request being handled returns */
  kq_thrift_conn_ref(conn);
  while (!conn->busy && !conn->closing && !conn->closed) {
    gsize avail = kq_input_buffer_length(&conn->in);
    const guint8 *p;
    guint32 frame_len;
    GByteArray *reply = NULL;
    KqThriftOutcome outcome;

    if (avail < 4)
      break;
    p = (const guint8 *)kq_input_buffer_data(&conn->in);
    frame_len = frame_length_at(p);
    if ((gint64)frame_len > conn->max_frame_size) {
      /* Also what a non-framed client (HTTP, memcache) looks like: its first bytes read as a
       * huge length. Say why, then close. */
      g_autofree gchar *message = g_strdup_printf(
          "frame of %u bytes is larger than thriftMaxFrameSize (%" G_GINT64_FORMAT " bytes); "
          "this port speaks framed binary Thrift",
          frame_len, conn->max_frame_size);
      queue_reply(conn, kq_thrift_processor_error_reply(
                            conn->processor, "", 0,
                            THRIFT_APPLICATION_EXCEPTION_ERROR_PROTOCOL_ERROR, message));
      conn->closing = TRUE;
      break;
    }
    if (avail - 4 < frame_len)
      break;
    KQ_THRIFT_STAT_ADD(conn->env, bytes_read, frame_len + 4);
    /* The frame is parsed in place, so it leaves the input only once its request returns. */
    conn->handling = TRUE;
    outcome = kq_thrift_processor_handle(conn->processor, conn, p + 4, frame_len, &reply);
    conn->handling = FALSE;
    kq_input_buffer_consume(&conn->in, 4 + (gsize)frame_len);
    if (outcome == KQ_THRIFT_REPLY_LATER)
      conn->busy = TRUE;
    else
      queue_reply(conn, reply);
    if (outcome == KQ_THRIFT_REPLY_AND_CLOSE)
      conn->closing = TRUE;
  }
  if (conn->closing)
    kq_input_buffer_clear(&conn->in);
  conn_flush(conn);
  kq_thrift_conn_unref(conn);
}

static void
conn_flush(KqThriftConn *conn)
{
  if (conn->closed)
    return;
  if (conn->fd < 0) {
    g_byte_array_set_size(conn->out, 0);
    conn->out_pos = 0;
  }
  while (conn->out_pos < conn->out->len) {
    ssize_t n = send(conn->fd, conn->out->data + conn->out_pos, conn->out->len - conn->out_pos,
                     MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    if (n <= 0) {
      g_debug("thrift connection %" G_GUINT64_FORMAT ": write failed: %s", conn->serial,
              g_strerror(errno));
      kq_thrift_conn_close(conn);
      return;
    }
    conn->out_pos += (gsize)n;
  }
  if (conn->out_pos == conn->out->len) {
    g_byte_array_set_size(conn->out, 0);
    conn->out_pos = 0;
    if (conn->closing) {
      kq_thrift_conn_close(conn);
      return;
    }
  }
  conn_update_watch(conn);
}

static gboolean
wants_input(KqThriftConn *conn)
{
  gsize buffered = kq_input_buffer_length(&conn->in);
  /* Keep reading while a request waits, to notice the client leaving, but never buffer more
   * than one largest frame. */
  return !conn->closing && (gint64)buffered <= conn->max_frame_size + 4 &&
         conn->out->len - conn->out_pos < OUTPUT_HIGH_WATER;
}

static void
conn_update_watch(KqThriftConn *conn)
{
  GIOCondition cond = 0;

  if (conn->source == NULL || conn->closed)
    return;
  if (wants_input(conn))
    cond |= G_IO_IN;
  if (conn->out_pos < conn->out->len)
    cond |= G_IO_OUT;
  /* Every change wakes the context with a write(2) to its eventfd: only make real ones. */
  if (cond == conn->watched)
    return;
  conn->watched = cond;
  g_source_modify_unix_fd(conn->source, conn->fd_tag, cond);
}

/* The whole length of the frame at the front of the input (its 4-byte length included) when
 * that is known and within thriftMaxFrameSize; else 0. */
static gsize
frame_length(KqThriftConn *conn)
{
  guint32 frame_len;

  if (kq_input_buffer_length(&conn->in) < 4)
    return 0;
  frame_len = frame_length_at((const guint8 *)kq_input_buffer_data(&conn->in));
  return (gint64)frame_len <= conn->max_frame_size ? 4 + (gsize)frame_len : 0;
}

static void
conn_read(KqThriftConn *conn)
{
  for (int round = 0; round < READS_PER_WAKE && wants_input(conn) && !conn->closed; round++) {
    gsize room, asked, want = KQ_INPUT_READ_CHUNK, len = kq_input_buffer_length(&conn->in);
    guint8 *dst;
    ssize_t n;
    int err;

    /* A frame longer than a block, once a block's worth of it is here: the block grows once to
     * hold the rest (not by doubling, which copies it each time). */
    if (len >= KQ_INPUT_READ_CHUNK) {
      gsize whole = frame_length(conn);
      if (whole > len)
        want = whole - len;
    }
    dst = kq_input_buffer_reserve(&conn->in, want, &room);
    asked = MIN(room, READ_CHUNK);
    n = recv(conn->fd, dst, asked, 0);
    err = n < 0 ? errno : 0;
    kq_input_buffer_commit(&conn->in, n > 0 ? (gsize)n : 0);
    if (err == EINTR)
      continue;
    if (err == EAGAIN || err == EWOULDBLOCK)
      break;
    if (n <= 0) { /* the client is gone */
      kq_thrift_conn_close(conn);
      return;
    }
    conn->last_activity = g_get_monotonic_time();
    process_frames(conn);
    /* A short read emptied the socket: another recv would only say EAGAIN (one wasted system
     * call per request for a client with one request in flight). Poll wakes us for more. */
    if ((gsize)n < asked)
      break;
  }
}

/* A source watching the socket, whose condition follows what the connection wants. */
typedef struct {
  GSource source;
  KqThriftConn *conn;
} ConnSource;

static gboolean
conn_source_dispatch(GSource *source, GSourceFunc callback, gpointer data)
{
  KqThriftConn *conn = kq_thrift_conn_ref(((ConnSource *)source)->conn);
  GIOCondition cond = g_source_query_unix_fd(source, conn->fd_tag);

  if (cond & (G_IO_IN | G_IO_HUP | G_IO_ERR))
    conn_read(conn);
  if (!conn->closed && (cond & G_IO_OUT))
    conn_flush(conn);
  /* Hang-up or error without readable data (reads were paused): nothing more will come. */
  if (!conn->closed && (cond & (G_IO_HUP | G_IO_ERR)) && !(cond & G_IO_IN))
    kq_thrift_conn_close(conn);
  kq_thrift_conn_unref(conn);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs conn_source_funcs = {
  .dispatch = conn_source_dispatch,
};

KqThriftConn *
kq_thrift_conn_new(KqThriftProcessor *processor, gint fd, guint64 serial, gint64 max_frame_size,
                   KqThriftConnClosedFunc closed, gpointer closed_data)
{
  KqThriftConn *conn = g_new0(KqThriftConn, 1);
  KqThriftHandler *handler = kq_thrift_processor_get_handler(processor);

  conn->ref_count = 1;
  conn->serial = serial;
  conn->fd = fd;
  conn->processor = g_object_ref(processor);
  conn->env = kq_thrift_handler_get_env(handler);
  conn->max_frame_size = max_frame_size;
  conn->in.spare = &conn->in_spare;
  conn->out = g_byte_array_new();
  conn->closed_func = closed;
  conn->closed_data = closed_data;
  conn->last_activity = g_get_monotonic_time();
  if (fd >= 0) {
    conn->source = g_source_new(&conn_source_funcs, sizeof(ConnSource));
    ((ConnSource *)conn->source)->conn = conn;
    g_source_set_name(conn->source, "kestrel-thrift-connection");
    /* GLib "blocks" a source that cannot recurse while dispatching it, which removes and
     * re-adds its fd and wakes the context twice per request; nothing here nests a loop. */
    g_source_set_can_recurse(conn->source, TRUE);
    conn->fd_tag = g_source_add_unix_fd(conn->source, fd, G_IO_IN);
    conn->watched = G_IO_IN;
    g_source_attach(conn->source, kq_thrift_handler_get_context(handler));
  }
  return conn;
}

gint64
kq_thrift_conn_last_activity(KqThriftConn *conn)
{
  return conn->last_activity;
}

gboolean
kq_thrift_conn_is_busy(KqThriftConn *conn)
{
  return conn->busy;
}

void
kq_thrift_conn_feed(KqThriftConn *conn, const guint8 *data, gsize len)
{
  if (conn->closed || conn->closing)
    return;
  gsize room;
  guint8 *dst = kq_input_buffer_reserve(&conn->in, len, &room);

  memcpy(dst, data, len);
  kq_input_buffer_commit(&conn->in, len);
  process_frames(conn);
}

void
kq_thrift_conn_set_pending(KqThriftConn *conn, GDestroyNotify cancel, gpointer data)
{
  conn->busy = TRUE;
  conn->pending_cancel = cancel;
  conn->pending_data = data;
}

void
kq_thrift_conn_deliver(KqThriftConn *conn, GByteArray *reply)
{
  conn->busy = FALSE;
  conn->pending_cancel = NULL;
  conn->pending_data = NULL;
  if (conn->closed) {
    if (reply != NULL)
      g_byte_array_unref(reply);
    return;
  }
  queue_reply(conn, reply);
  process_frames(conn);
}

void
kq_thrift_conn_close(KqThriftConn *conn)
{
  GDestroyNotify cancel = conn->pending_cancel;
  gpointer pending = conn->pending_data;

  if (conn->closed)
    return;
  kq_thrift_conn_ref(conn);
  conn->closed = TRUE;
  conn->busy = FALSE;
  conn->pending_cancel = NULL;
  conn->pending_data = NULL;
  if (cancel != NULL)
    cancel(pending);
  if (conn->source != NULL) {
    g_source_destroy(conn->source);
    g_clear_pointer(&conn->source, g_source_unref);
  }
  if (conn->fd >= 0) {
    close(conn->fd);
    conn->fd = -1;
  }
  if (conn->closed_func != NULL)
    conn->closed_func(conn, conn->closed_data);
  kq_thrift_conn_unref(conn);
}

/* One client connection of the libevent front-ends (memcache, text): socket buffers, pipelined
 * input, open reads, the one parked blocking request, and replies held until writes are durable.
 * Everything here runs on the event loop thread; engine callbacks from other threads are
 * marshalled onto it through the hub. */
#pragma once
#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/util.h>
#include <glib.h>
#include <kestrel/kestrel.h>
#include "server.h"

G_BEGIN_DECLS

typedef struct _KqConnection KqConnection;
typedef struct _KqConnectionHub KqConnectionHub;

/* What a protocol front-end plugs into a connection. */
typedef struct {
  const char *name; /* "memcache", "text": for logs */
  /* Handle the requests buffered in buf[0..len). Returns how many bytes were consumed. Stops
   * early (returning what it used so far) when the connection parks or starts closing. */
  gsize (*handle_input)(KqConnection *conn, const char *buf, gsize len);
  /* The parked request's wait ended with `item` (transfer full) or NULL (timeout, shutdown,
   * queue deleted), or NULL and `error` when the queue's item could not be taken (the journal
   * cannot record the removal): reply with the error, not as for an empty queue. May park
   * again. */
  void (*wait_finished)(KqConnection *conn, KqQueue *queue, KqItem *item, const GError *error);
  /* Front-end state stored in the connection (kq_connection_get_data), zero-filled. */
  gsize data_size;
  /* Optional: the whole length of the request that buf[0..len) begins, whether all of it is
   * there or not, when its length is known (0 otherwise). Asked when a read filled the input's
   * block: a request still arriving gets room for all of it at once instead of by doubling and
   * copying, and a whole one is handled before more is read. */
  gsize (*request_length)(const char *buf, gsize len);
} KqFrontEnd;

/* An event loop made for a hub: with priorities, so that on a loop serving both, the sockets of
 * bulk connections (below) run after every small request that is ready, one at a time. NULL
 * when libevent cannot make one. */
struct event_base *kq_connection_loop_new(void);
/* The set of live connections of one loop (made by kq_connection_loop_new) and the wake-up
 * event for engine callbacks. `index` numbers the loop in logs (from 1). */
KqConnectionHub *kq_connection_hub_new(KqServer *server, struct event_base *base, guint index);
/* Finish every parked request with "no item", flush what can be flushed without blocking,
 * abort open reads and close every connection. */
void kq_connection_hub_close_all(KqConnectionHub *hub);
/* Counts socket events and completions handled (loop thread only): a change means the loop
 * did work for a client. */
guint64 kq_connection_hub_activity(KqConnectionHub *hub);
/* Run completions that arrived since the last loop iteration (used at shutdown). */
void kq_connection_hub_drain(KqConnectionHub *hub);
void kq_connection_hub_free(KqConnectionHub *hub);

/* Where connections are served, when there are several loops (the worker threads set it; a hub
 * without one keeps its connections). A connection that has carried a large message (a request
 * of KQ_BULK_MESSAGE_BYTES or more, or as many bytes of replies in one turn) is "bulk" from
 * then on; the placement keeps bulk connections on loops of their own, so that copying a large
 * item never stands between a small request and its reply. Connections move only between
 * requests, with nothing in flight. On a loop that serves both kinds (one worker thread, or a
 * connection not moved yet), a bulk connection's reads and writes wait for the small requests
 * ready at the same time, but never for more than KQ_BULK_WAIT_TURNS turns of them. */
#define KQ_BULK_MESSAGE_BYTES (64 * 1024)
#define KQ_BULK_WAIT_TURNS 32
typedef struct {
  /* Where a connection of this hub should go: an opaque destination, or NULL to stay. Runs on
   * the hub's loop. */
  gpointer (*choose)(gpointer hub_data, gboolean bulk);
  /* Hand `conn`, already detached from its hub, to `destination`'s loop, which takes it with
   * kq_connection_attach. */
  void (*hand_over)(gpointer destination, KqConnection *conn);
  /* A connection turned bulk (+1) or a bulk one closed (-1). Any loop. */
  void (*count_bulk)(gpointer hub_data, gint delta);
} KqConnectionPlacement;

void kq_connection_hub_set_placement(KqConnectionHub *hub, const KqConnectionPlacement *placement,
                                     gpointer hub_data);
/* Serve a connection another hub handed over (this hub's loop thread). A stopping hub closes it
 * at once (its open reads go back to their queues). */
void kq_connection_attach(KqConnectionHub *hub, KqConnection *conn);

/* Take over an accepted socket. */
void kq_connection_accept(KqConnectionHub *hub, const KqFrontEnd *front_end, evutil_socket_t fd,
                          const struct sockaddr *addr, int socklen);

KqServer *kq_connection_get_server(KqConnection *conn);
/* The request counters of this connection's thread (summed over threads by
 * kq_server_read_stats). */
KqServerStats *kq_connection_stats(KqConnection *conn);
/* Add the counters of the hub's thread to *sum (any thread). */
void kq_connection_hub_add_stats(KqConnectionHub *hub, KqServerStats *sum);
gpointer kq_connection_get_data(KqConnection *conn);
guint64 kq_connection_get_id(KqConnection *conn);
/* Where replies go: the socket's output, or a holding buffer while a write is not durable. */
struct evbuffer *kq_connection_output(KqConnection *conn);
/* Reply bytes, in order with what kq_connection_output takes: the cheap way for the short
 * replies of every request. */
void kq_connection_write(KqConnection *conn, const void *data, gsize len);
#define kq_connection_write_literal(conn, s) kq_connection_write((conn), (s), sizeof(s) - 1)
/* A string literal added to an evbuffer (kq_connection_output's, say), without its NUL. */
#define kq_buffer_add_literal(out, s) evbuffer_add((out), (s), sizeof(s) - 1)

/* Stop reading; close once every reply so far has been sent. Open reads are aborted now. */
void kq_connection_close_after_output(KqConnection *conn);
gboolean kq_connection_is_closing(KqConnection *conn);
gboolean kq_connection_is_parked(KqConnection *conn);
/* FALSE once the front-end must stop handling requests for now: the connection parked or is
 * closing, the client has too many replies still to read, or the connection has had its turn
 * (the rest is handled after other connections have been served). */
gboolean kq_connection_takes_requests(KqConnection *conn);
/* The front-end took one request of `len` bytes off the input: counts against the turn. */
void kq_connection_count_request(KqConnection *conn, gsize len);
/* An item of the `len` bytes at `data`, inside the request being handled, which ends at
 * `request_end`: the input's block itself, not a copy, when nothing was read after that
 * request (a large set is read into a block of its own). NULL when something was. */
KqItem *kq_connection_take_input(KqConnection *conn, const char *data, gsize len,
                                 const char *request_end);

/* Take (flags) the head of `queue`. timeout_ms <= 0: at once. Otherwise, when the queue is
 * empty, park the connection and return FALSE: wait_finished runs later on the loop. Returns
 * TRUE when done now: *item_out, or NULL for an empty (or closed, or deleted) queue, or NULL
 * with *error set when the item could not be taken (the journal cannot record the removal),
 * which must not be answered as "empty". */
gboolean kq_connection_remove(KqConnection *conn, KqQueue *queue, KqRemoveFlags flags,
                              gint64 timeout_ms, KqItem **item_out, GError **error);

/* A monitor (memcache `monitor`, text `monitor`): items handed out as they come, each an open
 * read, until a deadline, a count, or the connection's open-read limit. */
typedef struct {
  gint64 deadline_ms; /* kq_clock time at which it ends */
  gint64 left;        /* items it may still hand out */
} KqMonitor;

/* Writes one handed-out item in the front-end's reply format. */
typedef void (*KqMonitorEmit)(KqConnection *conn, KqQueue *queue, KqItem *item);

/* Hand out what `queue` has for the monitor. TRUE when the monitor is over: the front-end
 * writes its end marker, or, when *error is set (an item could not be taken), the error
 * instead. FALSE when the connection parked: wait_finished then calls
 * kq_connection_monitor_resume (or reports its error). */
gboolean kq_connection_monitor_run(KqConnection *conn, KqQueue *queue, KqMonitor *monitor,
                                   KqMonitorEmit emit, GError **error);
/* A parked monitor's wait ended with `item` (transfer full), or NULL: the monitor is over.
 * Returns as kq_connection_monitor_run. */
gboolean kq_connection_monitor_resume(KqConnection *conn, KqQueue *queue, KqMonitor *monitor,
                                      KqItem *item, KqMonitorEmit emit, GError **error);

/* Replies written from now on are held until the writes made so far to `name` are durable. */
void kq_connection_hold_until_durable(KqConnection *conn, const gchar *name);

/* Open reads of this connection, per queue name. */
void kq_connection_add_open_read(KqConnection *conn, KqQueue *queue, guint32 xid);
guint kq_connection_count_open_reads(KqConnection *conn, const gchar *name);
/* Confirm / abort up to `count` of them (oldest first). Returns how many. */
guint kq_connection_confirm_reads(KqConnection *conn, const gchar *name, guint count);
guint kq_connection_abort_reads(KqConnection *conn, const gchar *name, guint count);

/* Availability (SPEC 1.6): the server's status, and the connection limits as they stood when
 * this connection was accepted (as Kestrel decided them once per session). The error message
 * names the operation. */
gboolean kq_connection_check_writes(KqConnection *conn, const gchar *op, GError **error);
gboolean kq_connection_check_reads(KqConnection *conn, const gchar *op, GError **error);

/* Log a request line when the server's enableSessionTrace is on. */
void kq_connection_trace(KqConnection *conn, const char *line, gsize len);

/* A queue name copied out of a request buffer and NUL-terminated, without allocating for
 * names of sane length. */
#define KQ_NAME_INLINE 256
typedef struct {
  gchar *str;
  gsize len;
  gchar inline_buf[KQ_NAME_INLINE];
} KqName;

/* FALSE (with an error naming why) when the bytes are not a valid queue name, checked on their
 * full length (kq_queue_name_is_valid_len: a NUL byte inside is refused, not cut at). */
gboolean kq_name_init(KqName *name, const char *data, gsize len, GError **error);
void kq_name_clear(KqName *name);

/* Decimal digits of v at dst (room for 20); returns how many. For replies built by hand. */
static inline gsize
kq_format_u64(char *dst, guint64 v)
{
  char tmp[20];
  gsize n = 0;

  do {
    tmp[n++] = (char) ('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (gsize i = 0; i < n; i++)
    dst[i] = tmp[n - 1 - i];
  return n;
}

G_END_DECLS

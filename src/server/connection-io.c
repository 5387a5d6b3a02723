/* The socket side of a connection (connection-private.h): replies built in `out` and written
 * straight to the socket, output accounting, reading the socket, and turns of request handling
 * handed to the front-end's handle_input. Loop thread only. */
#include "config.h"

#include "connection-private.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

/* While parked, input is kept but not parsed; past this much we stop reading the socket. */
#define PARKED_INPUT_LIMIT (1024 * 1024)
/* Replies not yet taken by the client beyond this: no more requests are handled (and the
 * socket is not read) until it catches up. Bounds the memory a client that writes without
 * reading can make us use. */
#define OUTPUT_LIMIT (4 * 1024 * 1024)
/* A closing connection whose client does not read its last replies is dropped after this. */
#define CLOSE_FLUSH_TIMEOUT_S 10
/* Bytes read from a socket per turn before other sockets get theirs. */
#define READ_PER_TURN (128 * 1024)
/* A bulk connection (one that has carried a large message, see connection-move.c) reads and
 * writes at most this much per turn: a large item then costs the other connections on its
 * loop a few short turns instead of one long one. */
#define BULK_IO_PER_TURN (16 * 1024)
/* Requests, and bytes of requests, one connection gets handled per loop turn. Past either, the
 * connection waits for the next turn (other sockets are polled first): a client pipelining
 * thousands of requests or sending a large item does not hold up the others. */
#define REQUESTS_PER_TURN 64
#define REQUEST_BYTES_PER_TURN (128 * 1024)

/* The hub's stage holds no one's replies. */
static inline void
stage_release(KqConnectionHub *hub)
{
  hub->reply_len = 0;
  hub->reply_owner = NULL;
}

/* The replies staged for `conn` go to its `out`, after what it holds; the stage is free. */
void
conn_spill_replies(KqConnection *conn)
{
  KqConnectionHub *hub = conn->hub;

  if (hub->reply_owner != conn)
    return;
  if (hub->reply_len > 0) {
    evbuffer_add(conn->out, hub->reply, hub->reply_len);
    conn->buffered = TRUE;
  }
  stage_release(hub);
}

void
kq_connection_write(KqConnection *conn, const void *data, gsize len)
{
  KqConnectionHub *hub = conn->hub;

  if (hub->reply_owner != conn) {
    if (hub->reply_owner != NULL)
      conn_spill_replies(hub->reply_owner);
    hub->reply_owner = conn;
  }
  if (conn->durable_pending == 0 && len <= sizeof hub->reply - hub->reply_len) {
    memcpy(hub->reply + hub->reply_len, data, len);
    hub->reply_len += len;
    return;
  }
  evbuffer_add(kq_connection_output(conn), data, len);
}

static gsize
conn_buffered_length(KqConnection *conn)
{
  gsize n = evbuffer_get_length(conn->out);

  if (conn->unsent != NULL)
    n += evbuffer_get_length(conn->unsent);
  if (conn->held != NULL)
    n += evbuffer_get_length(conn->held);
  return n;
}

/* Reply bytes not yet taken by the client: staged, built, held or unsent. */
static inline gsize
conn_output_length(KqConnection *conn)
{
  gsize n = conn_staged_length(conn);

  return G_LIKELY(!conn->buffered) ? n : n + conn_buffered_length(conn);
}

/* Front-end callbacks run between conn_enter and conn_leave: the connection cannot go away,
 * closing is deferred, and the bytes of replies they wrote are counted. */
gsize
conn_enter(KqConnection *conn)
{
  conn_ref(conn);
  conn->in_process = TRUE;
  return conn_output_length(conn);
}

/* The socket failed (the client is gone), as opposed to being full for now. */
static gboolean
socket_failed(ssize_t n)
{
  return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

/* One system call writing what `buf` holds. FALSE when the client is gone (the socket failed).
 * Replies to small requests are one block: send(2) takes it without writev's iovec copy and
 * the file layer that write calls pass through; pieces (a large item added by reference) go
 * out together with writev, a bulk connection's BULK_IO_PER_TURN at a time. */
static gboolean
conn_write_socket(KqConnection *conn, struct evbuffer *buf)
{
  struct evbuffer_iovec block;
  ssize_t n;

  if (evbuffer_peek(buf, -1, NULL, &block, 1) == 1) {
    n = send(conn->fd, block.iov_base, block.iov_len, 0);
    if (n > 0)
      evbuffer_drain(buf, (size_t) n);
  } else {
    n = evbuffer_write_atmost(buf, conn->fd, conn->bulk ? BULK_IO_PER_TURN : -1);
  }
  return !socket_failed(n);
}

/* Have the loop tell us when the socket takes more; a closing connection gives its client
 * CLOSE_FLUSH_TIMEOUT_S to read its last replies. */
void
conn_want_write(KqConnection *conn)
{
  struct timeval flush_tv = { CLOSE_FLUSH_TIMEOUT_S, 0 };

  event_add(conn->write_event, conn->closing ? &flush_tv : NULL);
}

/* Send the replies built so far: straight to the socket when nothing is queued before them.
 * FALSE when the socket failed. */
static gboolean
conn_flush(KqConnection *conn)
{
  KqConnectionHub *hub = conn->hub;
  gsize staged = conn_staged_length(conn);

  if (conn->fd < 0) {
    /* Closed during the turn: its staged replies have nowhere to go; free the stage. */
    if (hub->reply_owner == conn)
      stage_release(hub);
    return TRUE;
  }
  if (staged > 0 &&
      (!conn->buffered ||
       (evbuffer_get_length(conn->out) == 0 && evbuffer_get_length(conn->unsent) == 0))) {
    /* the common case: the replies of this turn are all staged */
    ssize_t n = send(conn->fd, hub->reply, staged, 0);
    gsize sent = n > 0 ? (gsize) n : 0;

    if (sent < staged && !socket_failed(n)) {
      evbuffer_add(conn->unsent, hub->reply + sent, staged - sent);
      conn->buffered = TRUE;
      conn_want_write(conn);
    }
    stage_release(hub);
    return !socket_failed(n);
  }
  conn_spill_replies(conn);
  if (!conn->buffered || evbuffer_get_length(conn->out) == 0)
    return TRUE;
  if (evbuffer_get_length(conn->unsent) == 0 && !conn_write_socket(conn, conn->out))
    return FALSE;
  if (evbuffer_get_length(conn->out) > 0) {
    evbuffer_add_buffer(conn->unsent, conn->out);
    conn_want_write(conn);
  }
  return TRUE;
}

void
conn_maybe_finish_close(KqConnection *conn)
{
  if (!conn->closing || conn->fd < 0 || conn->in_process || conn->durable_pending > 0)
    return;
  if (evbuffer_get_length(conn->unsent) == 0)
    conn_close_now(conn);
}

void
conn_leave(KqConnection *conn, gsize output_mark)
{
  gsize now = conn_output_length(conn);

  if (now > output_mark) {
    KqServerStats *stats = &conn->hub->stats;
    conn->bytes_out += now - output_mark;
    __atomic_add_fetch(&stats->bytes_written, (gint64) (now - output_mark), __ATOMIC_RELAXED);
    conn_note_message(conn, now - output_mark);
  }
  conn->in_process = FALSE;
  if (conn_flush(conn))
    conn_maybe_finish_close(conn);
  else
    conn_close_now(conn);
  if (conn->buffered && conn_output_length(conn) == 0)
    conn->buffered = FALSE; /* no front-end holds one of them now */
  conn_unref(conn);
}

/* ---- input ------------------------------------------------------------------------------- */

/* clientTimeout: how long the socket may stay silent while it is read. */
void
conn_watch_reads(KqConnection *conn)
{
  gint64 ms = kq_server_get_config(conn->server)->client_timeout_ms;
  struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

  event_add(conn->read_event, ms > 0 ? &tv : NULL);
}

/* Read the socket unless the client must first read its replies or a parked client has
 * sent too much meanwhile. */
static void
conn_update_reading(KqConnection *conn)
{
  gboolean want;

  if (conn->fd < 0 || conn->closing)
    return;
  want = !conn->output_blocked && !conn->resume_pending && !conn->peer_done &&
         !(conn->parked && conn->unprocessed > PARKED_INPUT_LIMIT);
  if (want == !conn->read_paused)
    return; /* already so */
  conn->read_paused = !want;
  if (want)
    conn_watch_reads(conn);
  else
    event_del(conn->read_event);
}

gboolean
kq_connection_takes_requests(KqConnection *conn)
{
  return !conn->parked && !conn->closing && conn->turn_requests > 0 && conn->turn_bytes > 0 &&
         conn_output_length(conn) < OUTPUT_LIMIT;
}

void
kq_connection_count_request(KqConnection *conn, gsize len)
{
  conn_note_message(conn, len);
  if (conn->turn_requests > 0)
    conn->turn_requests--;
  conn->turn_bytes = len < conn->turn_bytes ? conn->turn_bytes - len : 0;
}

KqItem *
kq_connection_take_input(KqConnection *conn, const char *data, gsize len, const char *request_end)
{
  return kq_input_buffer_take_block(&conn->in, data, len, request_end);
}

static void conn_resume_cb(evutil_socket_t fd, short what, void *arg);

/* The turn ended with requests still buffered: take them up after the loop has polled the
 * other sockets (a zero timeout runs after the poll, an activated event before it). */
static void
conn_schedule_resume(KqConnection *conn)
{
  static const struct timeval now = { 0, 0 };

  if (conn->resume_pending)
    return;
  if (conn->resume_event == NULL) {
    conn->resume_event = evtimer_new(conn->hub->base, conn_resume_cb, conn);
    conn_match_priority(conn);
  }
  conn->resume_pending = TRUE;
  event_add(conn->resume_event, &now);
}

/* Handle the whole requests buffered, up to one turn's worth, then send the replies together. */
void
conn_process_input(KqConnection *conn)
{
  gboolean full, turn_over = FALSE;

  if (conn->in_process || conn->fd < 0 || conn->hub->stopping)
    return;
  conn_ref(conn);
  if (G_UNLIKELY(conn->hub->bulk->len > 0) && !conn->bulk)
    conn_small_turn(conn);
  conn->turn_requests = REQUESTS_PER_TURN;
  conn->turn_bytes = REQUEST_BYTES_PER_TURN;
  do {
    gsize mark = conn_enter(conn);

    full = FALSE;
    while (!conn->parked && !conn->closing) {
      gsize len = kq_input_buffer_length(&conn->in);
      if (len == 0)
        break;
      if (conn_output_length(conn) >= OUTPUT_LIMIT) {
        full = TRUE;
        break;
      }
      if (conn->turn_requests == 0 || conn->turn_bytes == 0) {
        turn_over = TRUE;
        break;
      }
      /* The input is one block: requests are parsed in place. */
      gsize used = conn->fe->handle_input(conn, kq_input_buffer_data(&conn->in), len);
      if (used == 0)
        break;
      kq_input_buffer_consume(&conn->in, used);
      conn->in_whole = 0; /* it was about the request at the front */
    }
    conn->unprocessed = kq_input_buffer_length(&conn->in);
    conn_leave(conn, mark); /* sends the replies */
    /* Go on if the socket took them all; otherwise wait for the write event. */
  } while (full && conn->fd >= 0 && conn_output_length(conn) < OUTPUT_LIMIT);
  conn->output_blocked = full && conn->fd >= 0;
  if (turn_over && !conn->output_blocked && conn->fd >= 0 && !conn->closing)
    conn_schedule_resume(conn);
  else if (conn->peer_done && !conn->resume_pending && conn->fd >= 0)
    /* The client left and what it sent has had its turns: close once the replies are out. */
    kq_connection_close_after_output(conn);
  conn_update_reading(conn);
  conn_unref(conn);
}

static void
conn_resume_cb(evutil_socket_t fd, short what, void *arg)
{
  KqConnection *conn = arg;

  conn->resume_pending = FALSE;
  conn->hub->activity++;
  conn_event_runs(conn);
  conn_ref(conn);
  conn_process_input(conn);
  conn_update_reading(conn);
  if (!conn_move_if_placed(conn))
    conn_unref(conn);
}

/* What the socket has, up to one turn's bytes, appended to conn->in. Returns the bytes read. *end
 * is KQ_INPUT_SOCKET_OPEN while the client is there, 0 at end of stream, or the errno of a
 * failed read. */
static gsize
conn_read_socket(KqConnection *conn, int *end)
{
  return kq_input_buffer_read(&conn->in, conn->fd, conn->bulk ? BULK_IO_PER_TURN : READ_PER_TURN,
                              &conn->in_whole, conn->fe->request_length, end);
}

/* clientTimeout passed with nothing read. A client waiting on a blocking read or for its
 * write to become durable is not idle. */
static void
conn_idle_timeout(KqConnection *conn)
{
  if (!conn->closing && (conn->parked || conn->durable_pending > 0))
    return; /* the persistent event keeps watching */
  if (kq_server_get_config(conn->server)->enable_session_trace)
    g_message("session %" G_GUINT64_FORMAT ": idle timeout", conn->id);
  conn_close_now(conn);
}

void
conn_read_event_cb(evutil_socket_t fd, short what, void *arg)
{
  KqConnection *conn = arg;
  int end;
  gsize n;

  if (what & EV_TIMEOUT) {
    conn_idle_timeout(conn);
    return;
  }
  conn->hub->activity++;
  conn_event_runs(conn);
  n = conn_read_socket(conn, &end);
  if (n > 0) {
    KqServerStats *stats = &conn->hub->stats;
    conn->bytes_in += n;
    __atomic_add_fetch(&stats->bytes_read, (gint64) n, __ATOMIC_RELAXED);
  }
  conn_ref(conn);
  if (end == 0)
    conn->peer_done = TRUE;
  if (conn->closing) {
    /* Nothing more is answered: drop it. */
    kq_input_buffer_clear(&conn->in);
    conn->in_whole = 0;
    conn->unprocessed = 0;
  } else if (n > 0) {
    conn->unprocessed = kq_input_buffer_length(&conn->in);
    conn_process_input(conn);
  }
  if (end == 0 && conn->fd >= 0 && !conn->resume_pending)
    /* The client may only have shut down its sending side: answer what it sent, then close
     * (after the turns its buffered requests still need, if any). */
    kq_connection_close_after_output(conn);
  else if (end != KQ_INPUT_SOCKET_OPEN && end != 0 && conn->fd >= 0)
    conn_close_now(conn);
  conn_update_reading(conn);
  if (!conn_move_if_placed(conn))
    conn_unref(conn);
}

void
conn_write_event_cb(evutil_socket_t fd, short what, void *arg)
{
  KqConnection *conn = arg;

  conn_event_runs(conn);
  if ((what & EV_TIMEOUT) || !conn_write_socket(conn, conn->unsent)) {
    /* A closing client that does not read its last replies, or a failed socket. */
    conn_close_now(conn);
    return;
  }
  if (evbuffer_get_length(conn->unsent) > 0)
    return; /* the persistent event waits for more room */
  event_del(conn->write_event);
  /* Everything was sent: requests held back for it can go on. */
  conn_ref(conn);
  if (conn->output_blocked && !conn->closing)
    conn_process_input(conn);
  conn_maybe_finish_close(conn);
  if (!conn_move_if_placed(conn))
    conn_unref(conn);
}

/* A client connection of the memcache and text front-ends.
 *
 * Threads: everything here runs on the event loop thread, except the two engine callbacks
 * (conn_wait_cb, conn_durable_cb) which may run on any thread. They only record the result
 * under the hub's lock, queue the connection on the hub's ready list and wake the loop with
 * event_active(); the loop then finishes the work (hub_run_completions).
 *
 * Lifetime: a connection is reference counted (loop thread only): one reference while the
 * socket is open, one per engine callback still to come. So a callback always finds its
 * connection, even one that closed meanwhile; an item handed to a closed connection goes back
 * to its queue (aborted if opened, returned to the head if plainly removed).
 *
 * This file has the connection's life (accept, close, open reads) and the hub; the socket side
 * is in connection-io.c, the engine side in connection-wait.c. */
#include "config.h"

#include "connection-private.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
  KqQueue *queue;
  guint32 xid;
} OpenRead;

/* ---- references -------------------------------------------------------------------------- */

KqConnection *
conn_ref(KqConnection *conn)
{
  conn->refs++;
  return conn;
}

void
conn_unref(KqConnection *conn)
{
  if (--conn->refs > 0)
    return;
  g_assert(conn->fd < 0 && conn->wait_queue == NULL);
  /* its staged replies were sent or dropped when its last callback ended (conn_leave) */
  g_assert(conn->hub == NULL || conn->hub->reply_owner != conn);
  if (conn->held != NULL)
    evbuffer_free(conn->held);
  if (conn->out != NULL)
    evbuffer_free(conn->out);
  if (conn->open_reads != NULL)
    g_array_unref(conn->open_reads);
  g_free(conn);
}

/* ---- open reads -------------------------------------------------------------------------- */

void
kq_connection_add_open_read(KqConnection *conn, KqQueue *queue, guint32 xid)
{
  OpenRead read = { kq_queue_ref(queue), xid };

  if (conn->open_reads == NULL)
    conn->open_reads = g_array_new(FALSE, FALSE, sizeof(OpenRead));
  g_array_append_val(conn->open_reads, read);
}

guint
kq_connection_count_open_reads(KqConnection *conn, const gchar *name)
{
  guint n = 0;

  if (conn->open_reads == NULL)
    return 0;
  for (guint i = 0; i < conn->open_reads->len; i++) {
    OpenRead *read = &g_array_index(conn->open_reads, OpenRead, i);
    if (strcmp(kq_queue_get_name(read->queue), name) == 0)
      n++;
  }
  return n;
}

/* Confirm or abort up to `count` open reads of `name` (all queues when name is NULL), oldest
 * first as Kestrel did (so aborting several puts them back newest-first at the head). A read
 * whose queue was deleted meanwhile is simply forgotten. */
static guint
conn_finish_reads(KqConnection *conn, const gchar *name, guint count, gboolean confirm)
{
  guint done = 0;
  guint i = 0;

  if (conn->open_reads == NULL)
    return 0;
  while (i < conn->open_reads->len && done < count) {
    OpenRead read = g_array_index(conn->open_reads, OpenRead, i);
    if (name != NULL && strcmp(kq_queue_get_name(read.queue), name) != 0) {
      i++;
      continue;
    }
    g_array_remove_index(conn->open_reads, i);
    if (confirm)
      kq_queue_confirm(read.queue, read.xid, NULL);
    else
      kq_queue_abort(read.queue, read.xid, NULL);
    kq_queue_unref(read.queue);
    done++;
  }
  return done;
}

guint
kq_connection_confirm_reads(KqConnection *conn, const gchar *name, guint count)
{
  return conn_finish_reads(conn, name, count, TRUE);
}

guint
kq_connection_abort_reads(KqConnection *conn, const gchar *name, guint count)
{
  return conn_finish_reads(conn, name, count, FALSE);
}

/* ---- open and close ---------------------------------------------------------------------- */

/* The hub's loop serves `conn` from now on: it is among the hub's live connections, with read
 * and write events on the hub's loop (made, not armed). */
void
conn_hub_add(KqConnectionHub *hub, KqConnection *conn)
{
  conn->hub = hub;
  conn->in.spare = &hub->spare_input;
  conn->prev = NULL;
  conn->next = hub->live;
  if (hub->live != NULL)
    hub->live->prev = conn;
  hub->live = conn;
  conn->read_event =
    event_new(hub->base, conn->fd, EV_READ | EV_PERSIST, conn_read_event_cb, conn);
  conn->write_event =
    event_new(hub->base, conn->fd, EV_WRITE | EV_PERSIST, conn_write_event_cb, conn);
  if (conn->bulk)
    conn_bulk_joins_hub(conn);
}

/* The reverse: off the hub's list, its events freed (closing, or moving to another loop). */
void
conn_hub_remove(KqConnection *conn)
{
  KqConnectionHub *hub = conn->hub;

  if (conn->bulk)
    conn_bulk_leaves_hub(conn);
  if (conn->prev != NULL)
    conn->prev->next = conn->next;
  else
    hub->live = conn->next;
  if (conn->next != NULL)
    conn->next->prev = conn->prev;
  conn->prev = conn->next = NULL;
  g_clear_pointer(&conn->read_event, event_free);
  g_clear_pointer(&conn->write_event, event_free);
  g_clear_pointer(&conn->resume_event, event_free);
}

static guint64 next_connection_id;

void
kq_connection_accept(KqConnectionHub *hub, const KqFrontEnd *front_end, evutil_socket_t fd,
                     const struct sockaddr *addr, int socklen)
{
  const KqServerConfig *config = kq_server_get_config(hub->server);
  KqServerStats *stats = kq_server_get_stats(hub->server);
  gsize offset = (sizeof(KqConnection) + 15) & ~(gsize) 15;
  KqConnection *conn;
  int one = 1;

  /* Replies are written whole; small ones must not wait for Nagle. */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  conn = g_malloc0(offset + front_end->data_size);
  conn->data = (guint8 *) conn + offset;
  conn->server = hub->server;
  conn->fe = front_end;
  conn->refs = 1;
  /* unique in the server, whichever loop took the socket (connections may move) */
  conn->id = __atomic_add_fetch(&next_connection_id, 1, __ATOMIC_RELAXED);
  conn->fd = fd;
  conn->out = evbuffer_new();
  conn->unsent = evbuffer_new();
  conn_hub_add(hub, conn);
  if (addr->sa_family == AF_INET || addr->sa_family == AF_INET6) {
    char host[48] = "?";
    const void *ip = addr->sa_family == AF_INET
                       ? (const void *) &((const struct sockaddr_in *) addr)->sin_addr
                       : (const void *) &((const struct sockaddr_in6 *) addr)->sin6_addr;
    guint16 port = ntohs(addr->sa_family == AF_INET
                           ? ((const struct sockaddr_in *) addr)->sin_port
                           : ((const struct sockaddr_in6 *) addr)->sin6_port);
    evutil_inet_ntop(addr->sa_family, ip, host, sizeof host);
    g_snprintf(conn->peer, sizeof conn->peer, "%s:%u", host, port);
  } else {
    g_strlcpy(conn->peer, "local", sizeof conn->peer);
  }
  (void) socklen;

  gint64 count = __atomic_add_fetch(&stats->curr_connections, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&stats->total_connections, 1, __ATOMIC_RELAXED);
  conn->refuse_writes = config->connection_limit_refuse_writes >= 0 &&
                        count > config->connection_limit_refuse_writes;
  conn->refuse_reads = config->connection_limit_refuse_reads >= 0 &&
                       count > config->connection_limit_refuse_reads;

  conn_watch_reads(conn);
  if (config->enable_session_trace)
    g_message("session %" G_GUINT64_FORMAT ": %s connection from %s on io thread %u", conn->id,
              front_end->name, conn->peer, hub->index);
}

/* What closing means for the queues: the parked request is withdrawn and open reads go back. */
static void
conn_abandon_requests(KqConnection *conn)
{
  conn_abandon_wait(conn);
  conn_finish_reads(conn, NULL, G_MAXUINT, FALSE);
}

void
kq_connection_close_after_output(KqConnection *conn)
{
  if (conn->closing || conn->fd < 0)
    return;
  conn->closing = TRUE;
  conn_abandon_requests(conn);
  event_del(conn->read_event);
  if (evbuffer_get_length(conn->unsent) > 0)
    conn_want_write(conn); /* now with the flush timeout */
  conn_maybe_finish_close(conn);
}

void
conn_close_now(KqConnection *conn)
{
  KqServerStats *stats = kq_server_get_stats(conn->server);

  if (conn->fd < 0)
    return;
  conn->closing = TRUE;
  conn_abandon_requests(conn);
  if (kq_server_get_config(conn->server)->enable_session_trace)
    g_message("session %" G_GUINT64_FORMAT ": closed (%" G_GUINT64_FORMAT " bytes in, %"
              G_GUINT64_FORMAT " bytes out)", conn->id, conn->bytes_in, conn->bytes_out);

  conn_hub_remove(conn);
  __atomic_sub_fetch(&stats->curr_connections, 1, __ATOMIC_RELAXED);
  conn_forget_bulk(conn);
  conn->resume_pending = FALSE;
  evutil_closesocket(conn->fd);
  conn->fd = -1;
  kq_input_buffer_clear(&conn->in);
  g_clear_pointer(&conn->unsent, evbuffer_free);
  conn_unref(conn); /* the socket's reference */
}

gboolean
kq_connection_check_writes(KqConnection *conn, const gchar *op, GError **error)
{
  if (conn->refuse_writes) {
    g_set_error(error, KQ_SERVER_ERROR, KQ_SERVER_ERROR_UNAVAILABLE,
                "Server not available for operation %s", op);
    return FALSE;
  }
  return kq_server_check_writes(conn->server, op, error);
}

gboolean
kq_connection_check_reads(KqConnection *conn, const gchar *op, GError **error)
{
  if (conn->refuse_reads) {
    g_set_error(error, KQ_SERVER_ERROR, KQ_SERVER_ERROR_UNAVAILABLE,
                "Server not available for operation %s", op);
    return FALSE;
  }
  return kq_server_check_reads(conn->server, op, error);
}

gboolean
kq_connection_is_closing(KqConnection *conn)
{
  return conn->closing;
}

gboolean
kq_connection_is_parked(KqConnection *conn)
{
  return conn->parked;
}

KqServer *
kq_connection_get_server(KqConnection *conn)
{
  return conn->server;
}

KqServerStats *
kq_connection_stats(KqConnection *conn)
{
  return &conn->hub->stats;
}

void
kq_connection_hub_add_stats(KqConnectionHub *hub, KqServerStats *sum)
{
  KqServerStats *st = &hub->stats;

#define ADD(field) sum->field += __atomic_load_n(&st->field, __ATOMIC_RELAXED)
  ADD(cmd_get);
  ADD(cmd_set);
  ADD(cmd_peek);
  ADD(get_hits);
  ADD(get_misses);
  ADD(bytes_read);
  ADD(bytes_written);
#undef ADD
}

gpointer
kq_connection_get_data(KqConnection *conn)
{
  return conn->data;
}

guint64
kq_connection_get_id(KqConnection *conn)
{
  return conn->id;
}

void
kq_connection_trace(KqConnection *conn, const char *line, gsize len)
{
  if (!kq_server_get_config(conn->server)->enable_session_trace)
    return;
  /* Only the request line: a data block may be binary and large. */
  const char *nl = memchr(line, '\n', MIN(len, 512));
  gsize n = nl != NULL ? (gsize) (nl - line) : MIN(len, 512);
  if (n > 0 && line[n - 1] == '\r')
    n--;
  g_autofree gchar *raw = g_strndup(line, n);
  g_autofree gchar *text = g_strescape(raw, NULL);
  g_message("session %" G_GUINT64_FORMAT " (%s): %s", conn->id, conn->peer, text);
}

/* ---- the hub ----------------------------------------------------------------------------- */

KqConnectionHub *
kq_connection_hub_new(KqServer *server, struct event_base *base, guint index)
{
  KqConnectionHub *hub = g_new0(KqConnectionHub, 1);

  g_assert(conn_loop_has_priorities(base));
  hub->index = index;
  hub->server = server;
  hub->base = base;
  g_mutex_init(&hub->lock);
  g_cond_init(&hub->cond);
  hub->wake = event_new(base, -1, EV_PERSIST, hub_wake_cb, hub);
  hub->bulk = g_ptr_array_new();
  return hub;
}

/* Best effort, without blocking: the loop is about to stop. */
static void
conn_flush_now(KqConnection *conn)
{
  conn_spill_replies(conn);
  evbuffer_add_buffer(conn->unsent, conn->out);
  while (evbuffer_get_length(conn->unsent) > 0) {
    if (evbuffer_write(conn->unsent, conn->fd) <= 0)
      break;
  }
}

void
kq_connection_hub_close_all(KqConnectionHub *hub)
{
  KqConnection *conn, *next;

  hub->stopping = TRUE;
  /* Parked requests end with "no item", as a timeout would end them. */
  for (conn = hub->live; conn != NULL; conn = next) {
    next = conn->next;
    if (conn->waiter == NULL)
      continue;
    KqQueue *queue = conn->wait_queue;
    if (conn_cancel_waiter(conn)) {
      gsize mark = conn_enter(conn);
      conn->wait_queue = NULL;
      conn->parked = FALSE;
      conn->fe->wait_finished(conn, queue, NULL, NULL);
      kq_queue_unref(queue);
      conn_unref(conn); /* the callback's reference */
      conn_leave(conn, mark);
      /* wait_finished of a monitor never parks again on "no item" */
    } else {
      /* Its completion is being delivered right now: wait for it, then give the item back. */
      conn->closing = TRUE;
      g_mutex_lock(&hub->lock);
      while (!conn->wait_done)
        g_cond_wait(&hub->cond, &hub->lock);
      g_mutex_unlock(&hub->lock);
    }
  }
  hub_run_completions(hub);

  for (conn = hub->live; conn != NULL; conn = next) {
    next = conn->next;
    conn->closing = TRUE;
    conn_abandon_requests(conn);
    if (conn->durable_pending == 0)
      conn_flush_now(conn);
    conn_close_now(conn);
  }
}

void
kq_connection_hub_free(KqConnectionHub *hub)
{
  if (hub == NULL)
    return;
  hub_run_completions(hub);
  event_free(hub->wake);
  g_ptr_array_free(hub->bulk, TRUE);
  g_free(hub->spare_input);
  g_mutex_clear(&hub->lock);
  g_cond_clear(&hub->cond);
  g_free(hub);
}

/* ---- names ------------------------------------------------------------------------------- */

gboolean
kq_name_init(KqName *name, const char *data, gsize len, GError **error)
{
  name->len = len;
  if (!kq_queue_name_is_valid_len(data, len, error)) {
    name->str = NULL;
    return FALSE;
  }
  name->str = len < sizeof name->inline_buf ? name->inline_buf : g_malloc(len + 1);
  memcpy(name->str, data, len);
  name->str[len] = '\0';
  return TRUE;
}

void
kq_name_clear(KqName *name)
{
  if (name->str != NULL && name->str != name->inline_buf)
    g_free(name->str);
  name->str = NULL;
}

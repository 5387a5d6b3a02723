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
 * to its queue (aborted if opened, returned to the head if plainly removed). */
#include "config.h"

#include "connection.h"
#include "input-buffer.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* While parked, input is kept but not parsed; past this much we stop reading the socket. */
#define PARKED_INPUT_LIMIT (1024 * 1024)
/* Replies not yet taken by the client beyond this: no more requests are handled (and the
 * socket is not read) until it catches up. Bounds the memory a client that writes without
 * reading can make us use. */
#define OUTPUT_LIMIT (4 * 1024 * 1024)
/* A closing connection whose client does not read its last replies is dropped after this. */
#define CLOSE_FLUSH_TIMEOUT_S 10
/* Socket reads: least room offered to read(2), and bytes read per turn before other sockets
 * get theirs. A read that does not fill its room drained the socket: no read to see EAGAIN. */
#define READ_CHUNK 16384
#define READ_PER_TURN (128 * 1024)
/* Requests, and bytes of requests, one connection gets handled per loop turn. Past either, the
 * connection waits for the next turn (other sockets are polled first): a client pipelining
 * thousands of requests or sending a large item does not hold up the others. */
#define REQUESTS_PER_TURN 64
#define REQUEST_BYTES_PER_TURN (128 * 1024)

typedef struct {
  KqQueue *queue;
  guint32 xid;
} OpenRead;

struct _KqConnectionHub {
  KqServer *server;
  struct event_base *base;
  struct event *wake;        /* activated by engine callbacks from any thread */
  GMutex lock;               /* guards the ready list and the conn fields marked "hub lock" */
  GCond cond;                /* signalled when a wait completion arrives (used at shutdown) */
  KqConnection *ready_head;  /* hub lock */
  KqConnection *ready_tail;  /* hub lock */
  KqConnection *live;        /* open connections, loop thread only */
  guint64 next_id;
  guint64 activity;          /* see kq_connection_hub_activity; loop thread only */
  gboolean stopping;         /* closing everything: no new requests are started */
  KqServerStats stats;       /* this thread's request counters (atomic) */
};

struct _KqConnection {
  KqConnectionHub *hub;
  KqServer *server;
  const KqFrontEnd *fe;
  /* The socket, read and written directly: libevent's bufferevents would ask the kernel how
   * much is readable (an ioctl) before every read. */
  evutil_socket_t fd;        /* -1 once the socket is closed */
  struct event *read_event;  /* persistent; its timeout is clientTimeout */
  struct event *write_event; /* pending while `unsent` holds bytes */
  struct event *resume_event; /* next turn for buffered requests; made on first use */
  KqInputBuffer in;          /* bytes read and not yet handled */
  struct evbuffer *unsent;   /* replies the socket has not taken yet */
  guint64 id;
  gint refs;
  KqConnection *prev, *next; /* hub->live */
  gboolean closing;          /* no more requests; socket freed once replies are out */
  gboolean in_process;       /* a front-end callback is running: defer closing */
  gsize unprocessed;         /* input bytes already counted in bytes_read */
  guint turn_requests;       /* requests still to be handled this turn */
  gsize turn_bytes;          /* bytes of requests still to be handled this turn */
  gboolean resume_pending;   /* its turn ended with requests buffered: resume_event is set */
  gboolean peer_done;        /* the client shut down its side: close once its input is handled */
  gboolean read_paused;      /* the socket is not being read (see conn_update_reading) */
  gboolean output_blocked;   /* requests wait until the client reads its replies */
  gboolean refuse_writes;    /* connectionLimitRefuseWrites was exceeded at accept */
  gboolean refuse_reads;     /* connectionLimitRefuseReads was exceeded at accept */

  /* The parked request. wait_queue != NULL while an engine callback may still come. */
  gboolean parked;
  KqWaiter *waiter;
  KqQueue *wait_queue;
  KqRemoveFlags wait_flags;

  /* Replies are built here and written straight to the socket once a batch of requests is
   * done: one write, no write event, in the common case. What the socket does not take at
   * once goes to `unsent` and the write event finishes the job. */
  struct evbuffer *out;
  /* Replies held until writes are durable. */
  struct evbuffer *held;
  guint durable_pending;

  GArray *open_reads;        /* OpenRead, oldest first; NULL until the first open */

  /* Completions (hub lock). */
  KqConnection *ready_next;
  gboolean in_ready;
  gboolean wait_done;
  KqItem *wait_item;
  guint durable_done;
  /* Taken out of the above by the loop (loop thread only). */
  KqConnection *run_next;
  gboolean run_wait;
  KqItem *run_item;
  guint run_durable;

  guint64 bytes_in, bytes_out;
  gchar peer[64];
  guint8 *data;              /* front-end state, right after this struct */
};

static void conn_process_input(KqConnection *conn);
static void conn_close_now(KqConnection *conn);

/* ---- references and output accounting --------------------------------------------------- */

static KqConnection *
conn_ref(KqConnection *conn)
{
  conn->refs++;
  return conn;
}

static void
conn_unref(KqConnection *conn)
{
  if (--conn->refs > 0)
    return;
  g_assert(conn->fd < 0 && conn->wait_queue == NULL);
  if (conn->held != NULL)
    evbuffer_free(conn->held);
  if (conn->out != NULL)
    evbuffer_free(conn->out);
  if (conn->open_reads != NULL)
    g_array_unref(conn->open_reads);
  g_free(conn);
}

static gsize
conn_output_length(KqConnection *conn)
{
  gsize n = 0;

  if (conn->unsent != NULL)
    n += evbuffer_get_length(conn->unsent);
  if (conn->held != NULL)
    n += evbuffer_get_length(conn->held);
  n += evbuffer_get_length(conn->out);
  return n;
}

/* Front-end callbacks run between conn_enter and conn_leave: the connection cannot go away,
 * closing is deferred, and the bytes of replies they wrote are counted. */
static gsize
conn_enter(KqConnection *conn)
{
  conn_ref(conn);
  conn->in_process = TRUE;
  return conn_output_length(conn);
}

/* One write(2) of what `buf` holds. FALSE when the client is gone (the socket failed). */
static gboolean
conn_write_socket(KqConnection *conn, struct evbuffer *buf)
{
  if (evbuffer_write(buf, conn->fd) >= 0)
    return TRUE;
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* Have the loop tell us when the socket takes more; a closing connection gives its client
 * CLOSE_FLUSH_TIMEOUT_S to read its last replies. */
static void
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
  if (conn->fd < 0 || evbuffer_get_length(conn->out) == 0)
    return TRUE;
  if (evbuffer_get_length(conn->unsent) == 0 && !conn_write_socket(conn, conn->out))
    return FALSE;
  if (evbuffer_get_length(conn->out) > 0) {
    evbuffer_add_buffer(conn->unsent, conn->out);
    conn_want_write(conn);
  }
  return TRUE;
}

static void
conn_maybe_finish_close(KqConnection *conn)
{
  if (!conn->closing || conn->fd < 0 || conn->in_process || conn->durable_pending > 0)
    return;
  if (evbuffer_get_length(conn->unsent) == 0)
    conn_close_now(conn);
}

static void
conn_leave(KqConnection *conn, gsize output_mark)
{
  gsize now = conn_output_length(conn);

  if (now > output_mark) {
    KqServerStats *stats = &conn->hub->stats;
    conn->bytes_out += now - output_mark;
    __atomic_add_fetch(&stats->bytes_written, (gint64) (now - output_mark), __ATOMIC_RELAXED);
  }
  conn->in_process = FALSE;
  if (conn_flush(conn))
    conn_maybe_finish_close(conn);
  else
    conn_close_now(conn);
  conn_unref(conn);
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

/* ---- engine callbacks (any thread) ------------------------------------------------------- */

/* Hub lock held. */
static void
hub_enqueue_locked(KqConnectionHub *hub, KqConnection *conn)
{
  if (conn->in_ready)
    return;
  conn->in_ready = TRUE;
  conn->ready_next = NULL;
  if (hub->ready_tail != NULL)
    hub->ready_tail->ready_next = conn;
  else
    hub->ready_head = conn;
  hub->ready_tail = conn;
}

static void
conn_wait_cb(KqQueue *queue, KqItem *item, gpointer user_data)
{
  KqConnection *conn = user_data;
  KqConnectionHub *hub = conn->hub;

  g_mutex_lock(&hub->lock);
  conn->wait_done = TRUE;
  conn->wait_item = item;
  hub_enqueue_locked(hub, conn);
  g_cond_broadcast(&hub->cond);
  g_mutex_unlock(&hub->lock);
  event_active(hub->wake, EV_READ, 0);
}

static void
conn_durable_cb(gpointer user_data)
{
  KqConnection *conn = user_data;
  KqConnectionHub *hub = conn->hub;

  g_mutex_lock(&hub->lock);
  conn->durable_done++;
  hub_enqueue_locked(hub, conn);
  g_mutex_unlock(&hub->lock);
  event_active(hub->wake, EV_READ, 0);
}

/* ---- parking ----------------------------------------------------------------------------- */

/* An item whose client is gone must not be lost. */
static void
return_item(KqQueue *queue, KqRemoveFlags flags, KqItem *item)
{
  if (item == NULL)
    return;
  if (item->xid != 0)
    kq_queue_abort(queue, item->xid, NULL);
  else if (!(flags & KQ_REMOVE_PEEK))
    kq_queue_return_item(queue, item);
  kq_item_unref(item);
}

/* A queue closed under a read (deleted, or the server stopping) reads as empty; any other
 * error (the journal cannot record the removal: the item is still there) goes to the caller. */
static void
keep_read_failure(GError *local, GError **error)
{
  if (local != NULL && !g_error_matches(local, KQ_ERROR, KQ_ERROR_CLOSED))
    g_propagate_error(error, local);
  else
    g_clear_error(&local);
}

static KqItem *
remove_now(KqQueue *queue, KqRemoveFlags flags, GError **error)
{
  GError *local = NULL;
  KqItem *item = kq_queue_remove(queue, flags, &local);

  keep_read_failure(local, error);
  return item;
}

gboolean
kq_connection_remove(KqConnection *conn, KqQueue *queue, KqRemoveFlags flags, gint64 timeout_ms,
                     KqItem **item_out, GError **error)
{
  KqItem *item = NULL;
  KqWaiter *waiter;
  GError *local = NULL;

  *item_out = NULL;
  if (timeout_ms <= 0) {
    *item_out = remove_now(queue, flags, error);
    return TRUE;
  }
  g_return_val_if_fail(conn->wait_queue == NULL, TRUE);

  /* The callback may fire on another thread before remove_wait returns: it only touches
   * hub-locked fields, and the loop (this thread) handles it after we return. */
  conn_ref(conn);
  waiter = kq_queue_remove_wait(queue, flags, timeout_ms, conn_wait_cb, conn, &item, &local);
  if (waiter == NULL) {
    conn_unref(conn);
    keep_read_failure(local, error);
    *item_out = item;
    return TRUE;
  }
  conn->waiter = waiter;
  conn->wait_queue = kq_queue_ref(queue);
  conn->wait_flags = flags;
  conn->parked = TRUE;
  return FALSE;
}

/* Try to withdraw the engine waiter: TRUE when its callback will never run. The engine frees a
 * waiter once its callback returned, so cancel is only called while the callback has not
 * reported yet; holding the hub lock keeps a running callback (it needs that lock) from
 * returning meanwhile. The engine never calls back under its own locks, so this order is safe. */
static gboolean
conn_cancel_waiter(KqConnection *conn)
{
  KqConnectionHub *hub = conn->hub;
  gboolean cancelled = FALSE;

  g_mutex_lock(&hub->lock);
  if (!conn->wait_done)
    cancelled = kq_waiter_cancel(conn->waiter);
  g_mutex_unlock(&hub->lock);
  conn->waiter = NULL;
  return cancelled;
}

/* Withdraw the parked request of a connection that will not answer it. */
static void
conn_abandon_wait(KqConnection *conn)
{
  if (conn->waiter == NULL)
    return;
  if (conn_cancel_waiter(conn)) {
    kq_queue_unref(conn->wait_queue);
    conn->wait_queue = NULL;
    conn_unref(conn); /* the callback's reference */
  }
  /* Otherwise the completion is on its way: hub_run_completions returns its item. */
  conn->parked = FALSE;
}

/* ---- monitors ---------------------------------------------------------------------------- */

static void
monitor_count(KqConnection *conn, gboolean hit)
{
  KqServerStats *stats = &conn->hub->stats;

  __atomic_add_fetch(hit ? &stats->get_hits : &stats->get_misses, 1, __ATOMIC_RELAXED);
}

static void
monitor_hand_out(KqConnection *conn, KqQueue *queue, KqMonitor *monitor, KqItem *item,
                 KqMonitorEmit emit)
{
  monitor_count(conn, TRUE);
  kq_connection_add_open_read(conn, queue, item->xid);
  emit(conn, queue, item);
  kq_item_unref(item);
  monitor->left--;
}

gboolean
kq_connection_monitor_run(KqConnection *conn, KqQueue *queue, KqMonitor *monitor,
                          KqMonitorEmit emit, GError **error)
{
  const gchar *name = kq_queue_get_name(queue);
  gint max_open = kq_server_get_config(conn->server)->max_open_transactions;

  for (;;) {
    gint64 remaining = monitor->deadline_ms - kq_clock_now_ms();
    KqItem *item = NULL;
    GError *local = NULL;

    if (monitor->left <= 0 || remaining <= 0 ||
        kq_connection_count_open_reads(conn, name) >= (guint) max_open ||
        !kq_connection_check_reads(conn, "monitorUntil", NULL))
      return TRUE;
    if (!kq_connection_remove(conn, queue, KQ_REMOVE_OPEN, remaining, &item, &local))
      return FALSE;
    if (local != NULL) {
      g_propagate_error(error, local);
      return TRUE;
    }
    if (item == NULL) {
      monitor_count(conn, FALSE);
      return TRUE;
    }
    monitor_hand_out(conn, queue, monitor, item, emit);
  }
}

gboolean
kq_connection_monitor_resume(KqConnection *conn, KqQueue *queue, KqMonitor *monitor,
                             KqItem *item, KqMonitorEmit emit, GError **error)
{
  if (item == NULL) {
    monitor_count(conn, FALSE);
    return TRUE;
  }
  monitor_hand_out(conn, queue, monitor, item, emit);
  return kq_connection_monitor_run(conn, queue, monitor, emit, error);
}

/* ---- durability -------------------------------------------------------------------------- */

void
kq_connection_hold_until_durable(KqConnection *conn, const gchar *name)
{
  KqCollection *collection = kq_server_get_collection(conn->server);

  if (kq_collection_when_durable(collection, name, conn_durable_cb, conn))
    return;
  /* Safe after the call: the callback's completion is only handled on this thread. */
  conn_ref(conn);
  if (conn->durable_pending++ == 0 && conn->held == NULL)
    conn->held = evbuffer_new();
}

struct evbuffer *
kq_connection_output(KqConnection *conn)
{
  if (conn->durable_pending > 0)
    return conn->held;
  return conn->out;
}

/* ---- completions (loop thread) ----------------------------------------------------------- */

static void
conn_run_completion(KqConnection *conn)
{
  gsize mark = conn_enter(conn);
  guint durable = conn->run_durable;

  conn->run_durable = 0;
  if (durable > 0) {
    conn->durable_pending -= durable;
    if (conn->durable_pending == 0 && conn->held != NULL)
      evbuffer_add_buffer(conn->out, conn->held);
  }

  if (conn->run_wait) {
    KqQueue *queue = conn->wait_queue;
    KqItem *item = g_steal_pointer(&conn->run_item);

    conn->run_wait = FALSE;
    conn->wait_queue = NULL;
    conn->waiter = NULL;
    if (conn->closing || conn->fd < 0) {
      return_item(queue, conn->wait_flags, item);
    } else {
      g_autoptr(GError) error = NULL;
      /* A wait can end empty-handed because the journal could not record handing an item
       * over (the item stays queued, the waiter waits on): one more look tells that failure
       * from an empty queue. */
      if (item == NULL)
        item = remove_now(queue, conn->wait_flags, &error);
      conn->parked = FALSE;
      conn->fe->wait_finished(conn, queue, item, error);
    }
    kq_queue_unref(queue);
    conn_unref(conn); /* the callback's reference */
  }

  conn_leave(conn, mark);
  for (guint i = 0; i < durable; i++)
    conn_unref(conn);
}

static void
hub_run_completions(KqConnectionHub *hub)
{
  KqConnection *list, *conn, *next;

  g_mutex_lock(&hub->lock);
  list = hub->ready_head;
  hub->ready_head = hub->ready_tail = NULL;
  for (conn = list; conn != NULL; conn = conn->ready_next) {
    conn->in_ready = FALSE;
    conn->run_next = conn->ready_next;
    conn->run_wait = conn->wait_done;
    conn->run_item = conn->wait_item;
    conn->run_durable = conn->durable_done;
    conn->wait_done = FALSE;
    conn->wait_item = NULL;
    conn->durable_done = 0;
  }
  g_mutex_unlock(&hub->lock);

  /* Hold every connection first: running one may drop the last reference of another. */
  for (conn = list; conn != NULL; conn = conn->run_next)
    conn_ref(conn);
  for (conn = list; conn != NULL; conn = next) {
    next = conn->run_next;
    conn_run_completion(conn);
    /* A finished wait lets the connection go on with the requests buffered behind it. */
    if (conn->fd >= 0 && !conn->closing && !conn->parked)
      conn_process_input(conn);
    conn_unref(conn);
  }
}

static void
hub_wake_cb(evutil_socket_t fd, short what, void *arg)
{
  KqConnectionHub *hub = arg;

  hub->activity++;
  hub_run_completions(hub);
}

guint64
kq_connection_hub_activity(KqConnectionHub *hub)
{
  return hub->activity;
}

void
kq_connection_hub_drain(KqConnectionHub *hub)
{
  hub_run_completions(hub);
}

/* ---- input ------------------------------------------------------------------------------- */

/* clientTimeout: how long the socket may stay silent while it is read. */
static void
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
  if (conn->turn_requests > 0)
    conn->turn_requests--;
  conn->turn_bytes = len < conn->turn_bytes ? conn->turn_bytes - len : 0;
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
  if (conn->resume_event == NULL)
    conn->resume_event = evtimer_new(conn->hub->base, conn_resume_cb, conn);
  conn->resume_pending = TRUE;
  event_add(conn->resume_event, &now);
}

/* Handle the whole requests buffered, up to one turn's worth, then send the replies together. */
static void
conn_process_input(KqConnection *conn)
{
  gboolean full, turn_over = FALSE;

  if (conn->in_process || conn->fd < 0 || conn->hub->stopping)
    return;
  conn_ref(conn);
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
  conn_ref(conn);
  conn_process_input(conn);
  conn_update_reading(conn);
  conn_unref(conn);
}

#define SOCKET_OPEN (-1)

/* What the socket has, up to READ_PER_TURN bytes, appended to conn->in. Returns the bytes
 * read. *end is SOCKET_OPEN while the client is there, 0 at end of stream, or the errno of a
 * failed read. */
static gsize
conn_read_socket(KqConnection *conn, int *end)
{
  gsize total = 0;

  *end = SOCKET_OPEN;
  while (total < READ_PER_TURN) {
    gsize room;
    guint8 *dst = kq_input_buffer_reserve(&conn->in, READ_CHUNK, &room);
    ssize_t n;

    room = MIN(room, READ_PER_TURN - total);
    do
      n = read(conn->fd, dst, room);
    while (n < 0 && errno == EINTR);
    if (n == 0)
      *end = 0;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
      *end = errno;
    kq_input_buffer_commit(&conn->in, n > 0 ? (gsize) n : 0);
    if (n <= 0)
      break;
    total += (gsize) n;
    if ((gsize) n < room)
      break; /* drained */
  }
  return total;
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

static void
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
    conn->unprocessed = 0;
  } else if (n > 0) {
    conn->unprocessed = kq_input_buffer_length(&conn->in);
    conn_process_input(conn);
  }
  if (end == 0 && conn->fd >= 0 && !conn->resume_pending)
    /* The client may only have shut down its sending side: answer what it sent, then close
     * (after the turns its buffered requests still need, if any). */
    kq_connection_close_after_output(conn);
  else if (end != SOCKET_OPEN && end != 0 && conn->fd >= 0)
    conn_close_now(conn);
  conn_update_reading(conn);
  conn_unref(conn);
}

static void
conn_write_event_cb(evutil_socket_t fd, short what, void *arg)
{
  KqConnection *conn = arg;

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
  conn_unref(conn);
}

/* ---- open and close ---------------------------------------------------------------------- */

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
  conn->hub = hub;
  conn->server = hub->server;
  conn->fe = front_end;
  conn->refs = 1;
  conn->id = ++hub->next_id;
  conn->fd = fd;
  conn->out = evbuffer_new();
  conn->unsent = evbuffer_new();
  conn->read_event = event_new(hub->base, fd, EV_READ | EV_PERSIST, conn_read_event_cb, conn);
  conn->write_event = event_new(hub->base, fd, EV_WRITE | EV_PERSIST, conn_write_event_cb, conn);
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

  conn->next = hub->live;
  if (hub->live != NULL)
    hub->live->prev = conn;
  hub->live = conn;
  gint64 count = __atomic_add_fetch(&stats->curr_connections, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&stats->total_connections, 1, __ATOMIC_RELAXED);
  conn->refuse_writes = config->connection_limit_refuse_writes >= 0 &&
                        count > config->connection_limit_refuse_writes;
  conn->refuse_reads = config->connection_limit_refuse_reads >= 0 &&
                       count > config->connection_limit_refuse_reads;

  conn_watch_reads(conn);
  if (config->enable_session_trace)
    g_message("session %" G_GUINT64_FORMAT ": %s connection from %s", conn->id,
              front_end->name, conn->peer);
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

static void
conn_close_now(KqConnection *conn)
{
  KqConnectionHub *hub = conn->hub;
  KqServerStats *stats = kq_server_get_stats(conn->server);

  if (conn->fd < 0)
    return;
  conn->closing = TRUE;
  conn_abandon_requests(conn);
  if (kq_server_get_config(conn->server)->enable_session_trace)
    g_message("session %" G_GUINT64_FORMAT ": closed (%" G_GUINT64_FORMAT " bytes in, %"
              G_GUINT64_FORMAT " bytes out)", conn->id, conn->bytes_in, conn->bytes_out);

  if (conn->prev != NULL)
    conn->prev->next = conn->next;
  else
    hub->live = conn->next;
  if (conn->next != NULL)
    conn->next->prev = conn->prev;
  conn->prev = conn->next = NULL;
  __atomic_sub_fetch(&stats->curr_connections, 1, __ATOMIC_RELAXED);

  event_free(conn->read_event);
  event_free(conn->write_event);
  conn->read_event = conn->write_event = NULL;
  g_clear_pointer(&conn->resume_event, event_free);
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
kq_connection_hub_new(KqServer *server, struct event_base *base)
{
  KqConnectionHub *hub = g_new0(KqConnectionHub, 1);

  hub->server = server;
  hub->base = base;
  g_mutex_init(&hub->lock);
  g_cond_init(&hub->cond);
  hub->wake = event_new(base, -1, EV_PERSIST, hub_wake_cb, hub);
  return hub;
}

/* Best effort, without blocking: the loop is about to stop. */
static void
conn_flush_now(KqConnection *conn)
{
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

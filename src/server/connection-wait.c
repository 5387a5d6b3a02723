/* The engine side of a connection (connection-private.h): the engine callbacks (any thread),
 * parked requests, monitors, replies held until writes are durable, and the completions the
 * loop runs when the hub wakes it. */
#include "config.h"

#include "connection-private.h"

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
gboolean
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
void
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
  conn_spill_replies(conn); /* what was written before comes first */
  conn->buffered = TRUE;      /* the caller may add to it */
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

void
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

void
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

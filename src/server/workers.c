/* Worker threads: see workers.h. Each thread's loop runs three kinds of events of its own: the
 * sockets of its connections, its hub's wake-up for engine callbacks, and two events other
 * threads activate: "sockets or connections were handed over" and "stop". */
#include "config.h"

#include "workers.h"

#include <string.h>
#include <unistd.h>

#include <event2/event.h>

/* A socket just accepted, or a connection another worker handed over (`moved`). */
typedef struct {
  KqConnection *moved;
  const KqFrontEnd *front_end;
  evutil_socket_t fd;
  struct sockaddr_storage addr;
  int socklen;
} Accepted;

typedef struct {
  KqWorkers *owner;
  guint index;
  struct event_base *base;
  KqConnectionHub *hub;
  GThread *thread;
  GMutex lock;
  GQueue accepted;            /* lock: Accepted * not yet taken over */
  struct event *accept_event; /* activated by the main thread */
  struct event *stop_event;   /* activated by the main thread */
} Worker;

struct _KqWorkers {
  KqServer *server;
  Worker *workers;
  guint count;
  guint next;                 /* main thread: who gets the next socket */
  guint next_moved;           /* atomic: who gets the next connection that moves */
  gint bulk_connections;      /* atomic: open connections that have carried large messages */
  gint64 busy_poll_us;
  gboolean stopped;
};

guint
kq_workers_default_count(void)
{
  return CLAMP(g_get_num_processors(), 1, 4);
}

/* ---- placement --------------------------------------------------------------------------- */

/* With two threads or more, bulk connections (see KqConnectionPlacement) are served by the last
 * half of the threads (at least one), the others by the first half while any bulk connection is
 * open, and by all threads when none is. Bulk connections are few and heavy; small requests
 * then never wait behind a large item's copy on their thread. */
static gboolean
worker_serves_bulk(const KqWorkers *workers, guint index)
{
  return index >= workers->count - MAX(workers->count / 2, 1);
}

/* The next thread of the half that serves bulk connections (bulk) or the other half. */
static Worker *
next_of_half(KqWorkers *workers, guint *counter, gboolean bulk)
{
  guint bulk_threads = MAX(workers->count / 2, 1);
  guint first = bulk ? workers->count - bulk_threads : 0;
  guint n = bulk ? bulk_threads : workers->count - bulk_threads;
  guint turn = __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);

  return &workers->workers[first + turn % n];
}

static gpointer
placement_choose(gpointer data, gboolean bulk)
{
  Worker *w = data;
  KqWorkers *workers = w->owner;

  if (worker_serves_bulk(workers, w->index) == bulk)
    return NULL;
  if (!bulk && __atomic_load_n(&workers->bulk_connections, __ATOMIC_RELAXED) == 0)
    return NULL; /* nothing to keep apart from */
  return next_of_half(workers, &workers->next_moved, bulk);
}

static void
queue_for_worker(Worker *w, Accepted *a)
{
  g_mutex_lock(&w->lock);
  g_queue_push_tail(&w->accepted, a);
  g_mutex_unlock(&w->lock);
  event_active(w->accept_event, EV_READ, 0);
}

static void
placement_hand_over(gpointer destination, KqConnection *conn)
{
  Accepted *a = g_new0(Accepted, 1);

  a->moved = conn;
  queue_for_worker(destination, a);
}

static void
placement_count_bulk(gpointer data, gint delta)
{
  Worker *w = data;

  __atomic_add_fetch(&w->owner->bulk_connections, delta, __ATOMIC_RELAXED);
}

static const KqConnectionPlacement placement = {
  .choose = placement_choose,
  .hand_over = placement_hand_over,
  .count_bulk = placement_count_bulk,
};

static void
take_over(Worker *w, Accepted *a)
{
  if (a->moved != NULL)
    kq_connection_attach(w->hub, a->moved);
  else
    kq_connection_accept(w->hub, a->front_end, a->fd, (const struct sockaddr *) &a->addr,
                         a->socklen);
  g_free(a);
}

static void
take_over_cb(evutil_socket_t unused_fd, short what, void *arg)
{
  Worker *w = arg;
  Accepted *a;

  (void) unused_fd;
  (void) what;
  for (;;) {
    g_mutex_lock(&w->lock);
    a = g_queue_pop_head(&w->accepted);
    g_mutex_unlock(&w->lock);
    if (a == NULL)
      break;
    take_over(w, a);
  }
}

static void
stop_cb(evutil_socket_t unused_fd, short what, void *arg)
{
  Worker *w = arg;

  (void) unused_fd;
  (void) what;
  kq_connection_hub_close_all(w->hub);
  event_base_loopbreak(w->base);
}

/* busyPollMicros: for that long after the loop last served a client, poll the sockets without
 * sleeping. A client whose next request comes within the window finds the loop awake, which
 * spares a thread wake-up on each side of the round trip: lower latency for clients that send
 * one request at a time, paid for with CPU time while they do. */
static void
run_busy_polling(Worker *w, gint64 window_us)
{
  guint64 seen = kq_connection_hub_activity(w->hub);
  gint64 served_at = g_get_monotonic_time();

  while (!event_base_got_break(w->base) && !event_base_got_exit(w->base)) {
    gint64 now = g_get_monotonic_time();
    guint64 activity = kq_connection_hub_activity(w->hub);

    if (activity != seen) {
      seen = activity;
      served_at = now;
    }
    int flags = now - served_at < window_us ? EVLOOP_NONBLOCK : EVLOOP_ONCE;
    if (event_base_loop(w->base, flags | EVLOOP_NO_EXIT_ON_EMPTY) < 0)
      break;
  }
}

static gpointer
worker_main(gpointer data)
{
  Worker *w = data;

  if (w->owner->busy_poll_us > 0)
    run_busy_polling(w, w->owner->busy_poll_us);
  else
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
  return NULL;
}

KqWorkers *
kq_workers_start(KqServer *server, guint count, gint64 busy_poll_us, GError **error)
{
  KqWorkers *workers = g_new0(KqWorkers, 1);

  workers->server = server;
  workers->count = MAX(count, 1);
  workers->busy_poll_us = busy_poll_us;
  workers->workers = g_new0(Worker, workers->count);
  for (guint i = 0; i < workers->count; i++) {
    Worker *w = &workers->workers[i];

    w->owner = workers;
    w->index = i;
    g_mutex_init(&w->lock);
    g_queue_init(&w->accepted);
    w->base = kq_connection_loop_new();
    if (w->base == NULL) {
      g_set_error(error, KQ_SERVER_ERROR, KQ_SERVER_ERROR_LISTEN,
                  "cannot create the event loop of worker thread %u", i + 1);
      kq_workers_free(workers);
      return NULL;
    }
    w->hub = kq_connection_hub_new(server, w->base, i + 1);
    if (workers->count > 1)
      kq_connection_hub_set_placement(w->hub, &placement, w);
    w->accept_event = event_new(w->base, -1, EV_PERSIST, take_over_cb, w);
    w->stop_event = event_new(w->base, -1, 0, stop_cb, w);
    event_add(w->accept_event, NULL);
  }
  for (guint i = 0; i < workers->count; i++) {
    Worker *w = &workers->workers[i];
    g_autofree gchar *name = g_strdup_printf("kestreld-io-%u", i + 1);

    w->thread = g_thread_try_new(name, worker_main, w, error);
    if (w->thread == NULL) {
      kq_workers_free(workers);
      return NULL;
    }
  }
  return workers;
}

guint
kq_workers_count(KqWorkers *workers)
{
  return workers->count;
}

void
kq_workers_hand_over(KqWorkers *workers, const KqFrontEnd *front_end, evutil_socket_t fd,
                     const struct sockaddr *addr, int socklen)
{
  gboolean keep_apart = workers->count > 1 &&
                        __atomic_load_n(&workers->bulk_connections, __ATOMIC_RELAXED) > 0;
  Worker *w = keep_apart ? next_of_half(workers, &workers->next, FALSE)
                         : &workers->workers[workers->next++ % workers->count];
  Accepted *a = g_new0(Accepted, 1);

  a->front_end = front_end;
  a->fd = fd;
  a->socklen = MIN(socklen, (int) sizeof a->addr);
  memcpy(&a->addr, addr, (gsize) a->socklen);
  queue_for_worker(w, a);
}

void
kq_workers_stop(KqWorkers *workers)
{
  if (workers == NULL || workers->stopped)
    return;
  workers->stopped = TRUE;
  for (guint i = 0; i < workers->count; i++)
    if (workers->workers[i].thread != NULL)
      event_active(workers->workers[i].stop_event, EV_READ, 0);
  for (guint i = 0; i < workers->count; i++)
    if (workers->workers[i].thread != NULL)
      g_thread_join(g_steal_pointer(&workers->workers[i].thread));
  /* Sockets and connections handed over after a thread's last turn (all threads have ended:
   * none can hand over more) were never served. A connection that was moving still has its
   * open reads: attaching it to the stopped hub closes it and gives them back. */
  for (guint i = 0; i < workers->count; i++) {
    Worker *w = &workers->workers[i];
    Accepted *a;

    while ((a = g_queue_pop_head(&w->accepted)) != NULL) {
      if (a->moved != NULL)
        kq_connection_attach(w->hub, a->moved);
      else
        evutil_closesocket(a->fd);
      g_free(a);
    }
  }
}

void
kq_workers_drain(KqWorkers *workers)
{
  if (workers == NULL)
    return;
  for (guint i = 0; i < workers->count; i++)
    if (workers->workers[i].hub != NULL)
      kq_connection_hub_drain(workers->workers[i].hub);
}

void
kq_workers_add_stats(KqWorkers *workers, KqServerStats *sum)
{
  for (guint i = 0; i < workers->count; i++)
    if (workers->workers[i].hub != NULL)
      kq_connection_hub_add_stats(workers->workers[i].hub, sum);
}

void
kq_workers_free(KqWorkers *workers)
{
  if (workers == NULL)
    return;
  kq_workers_stop(workers);
  for (guint i = 0; i < workers->count; i++) {
    Worker *w = &workers->workers[i];

    /* kq_workers_stop had each thread close its own connections */
    g_clear_pointer(&w->hub, kq_connection_hub_free);
    g_clear_pointer(&w->accept_event, event_free);
    g_clear_pointer(&w->stop_event, event_free);
    g_clear_pointer(&w->base, event_base_free);
    g_mutex_clear(&w->lock);
  }
  g_free(workers->workers);
  g_free(workers);
}

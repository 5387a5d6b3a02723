/* Worker threads: see workers.h. Each thread's loop runs three kinds of events of its own: the
 * sockets of its connections, its hub's wake-up for engine callbacks, and two events the main
 * thread activates: "sockets were handed over" and "stop". */
#include "config.h"

#include "workers.h"

#include <string.h>
#include <unistd.h>

#include <event2/event.h>

typedef struct {
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
  gint64 busy_poll_us;
  gboolean stopped;
};

guint
kq_workers_default_count(void)
{
  return CLAMP(g_get_num_processors(), 1, 4);
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
    kq_connection_accept(w->hub, a->front_end, a->fd, (const struct sockaddr *) &a->addr,
                         a->socklen);
    g_free(a);
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
    w->base = event_base_new();
    if (w->base == NULL) {
      g_set_error(error, KQ_SERVER_ERROR, KQ_SERVER_ERROR_LISTEN,
                  "cannot create the event loop of worker thread %u", i + 1);
      kq_workers_free(workers);
      return NULL;
    }
    w->hub = kq_connection_hub_new(server, w->base);
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
  Worker *w = &workers->workers[workers->next++ % workers->count];
  Accepted *a = g_new0(Accepted, 1);

  a->front_end = front_end;
  a->fd = fd;
  a->socklen = MIN(socklen, (int) sizeof a->addr);
  memcpy(&a->addr, addr, (gsize) a->socklen);
  g_mutex_lock(&w->lock);
  g_queue_push_tail(&w->accepted, a);
  g_mutex_unlock(&w->lock);
  event_active(w->accept_event, EV_READ, 0);
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
  for (guint i = 0; i < workers->count; i++) {
    Worker *w = &workers->workers[i];
    Accepted *a;

    if (w->thread != NULL)
      g_thread_join(g_steal_pointer(&w->thread));
    /* Sockets handed over after the thread's last turn were never served. */
    while ((a = g_queue_pop_head(&w->accepted)) != NULL) {
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

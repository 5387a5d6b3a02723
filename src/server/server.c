/* kestreld's server: owns the config, the queue collection, global counters and the server
 * status, and starts and stops the front-ends listed in front-ends.c (it names none itself).
 * The main thread's libevent loop accepts memcache and text clients and hands them to the
 * worker threads (workers.h), and runs the admin service, signals and timers; the Thrift
 * front-end runs its own loop on another thread.
 *
 * Shutdown (a signal, or `shutdown` from a client on any thread) is one event on the main loop:
 * stop accepting, stop Thrift, have every worker answer its parked requests with "no item" and
 * close its connections (their open reads go back to the queues), then close the collection,
 * which makes every journal durable. */
#include "config.h"

#include "server.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <event2/util.h>

#include "front-ends.h"
#include "log.h"
#include "workers.h"
#include "zookeeper/zk-registry.h"

struct _KqServer {
  KqServerConfig *config;
  KqCollection *collection;
  KqServerStats stats;
  gint64 start_real_us;
  gint64 start_mono_us;

  /* Status (SPEC 1.6). `status` is what clients are told; `enforced` is what the checks use:
   * a stricter status is only enforced once statusChangeGracePeriod has passed. */
  gboolean status_configured;
  GMutex status_lock;
  KqStatus status;       /* status_lock */
  gboolean status_pending; /* status_lock: a stricter status waits for the grace timer */
  /* status_lock: with server sets, a stricter status also waits until ZooKeeper has it */
  gboolean grace_over, zk_wait;
  gint enforced;         /* atomic KqStatus */

  struct event_base *base;
  KqWorkers *workers;
  gpointer *front_ends; /* what kq_front_end_services[i] started; NULL: off or stopped */
  KqZkRegistry *zk; /* NULL without [zookeeper] */
  struct event *sigterm, *sigint, *sighup;
  struct event *sweep_timer, *status_timer, *shutdown_event;
  gint shutdown_requested; /* atomic */
  gboolean stopped;
};

G_DEFINE_QUARK(kq-server-error-quark, kq_server_error)

/* ---- status ------------------------------------------------------------------------------ */

const gchar *
kq_status_to_string(KqStatus status)
{
  switch (status) {
  case KQ_STATUS_UP:
    return "UP";
  case KQ_STATUS_READ_ONLY:
    return "READONLY";
  case KQ_STATUS_QUIESCENT:
    return "QUIESCENT";
  case KQ_STATUS_NOT_CONFIGURED:
    break;
  }
  return "NOT_CONFIGURED";
}

const gchar *
kq_status_kestrel_name(KqStatus status)
{
  switch (status) {
  case KQ_STATUS_UP:
    return "Up";
  case KQ_STATUS_READ_ONLY:
    return "ReadOnly";
  case KQ_STATUS_QUIESCENT:
    return "Quiescent";
  case KQ_STATUS_NOT_CONFIGURED:
    break;
  }
  return NULL;
}

gboolean
kq_status_from_string(const gchar *text, KqStatus *out)
{
  if (text == NULL)
    return FALSE;
  if (g_ascii_strcasecmp(text, "up") == 0)
    *out = KQ_STATUS_UP;
  else if (g_ascii_strcasecmp(text, "readonly") == 0 || g_ascii_strcasecmp(text, "read_only") == 0)
    *out = KQ_STATUS_READ_ONLY;
  else if (g_ascii_strcasecmp(text, "quiescent") == 0)
    *out = KQ_STATUS_QUIESCENT;
  else
    return FALSE;
  return TRUE;
}

/* Lower numbers are stricter (the Thrift enum's order). */
static gboolean
stricter(KqStatus a, KqStatus b)
{
  return a < b;
}

/* The stored status, else defaultStatus (a missing or unreadable file is not an error). */
static KqStatus
load_status(const KqServerConfig *config)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *contents = NULL;
  KqStatus status = KQ_STATUS_UP;

  if (!kq_status_from_string(config->default_status, &status))
    status = KQ_STATUS_UP;
  if (!g_file_get_contents(config->status_file, &contents, NULL, &error)) {
    if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
      g_warning("cannot read status file %s: %s; status is %s", config->status_file,
                error->message, kq_status_to_string(status));
    return status;
  }
  g_strstrip(contents);
  if (!kq_status_from_string(contents, &status)) {
    g_warning("status file %s holds '%s', not a status; status is %s", config->status_file,
              contents, kq_status_to_string(status));
    kq_status_from_string(config->default_status, &status);
  }
  return status;
}

KqStatus
kq_server_get_status(KqServer *server)
{
  KqStatus status;

  if (!server->status_configured)
    return KQ_STATUS_NOT_CONFIGURED;
  g_mutex_lock(&server->status_lock);
  status = server->status;
  g_mutex_unlock(&server->status_lock);
  return status;
}

/* Server-set membership of a status, as Kestrel's statusToReadStatus/statusToWriteStatus. */
static void
membership_of(KqStatus status, gboolean *read, gboolean *write)
{
  *read = status == KQ_STATUS_UP || status == KQ_STATUS_READ_ONLY;
  *write = status == KQ_STATUS_UP;
}

/* status_lock held: the pending stricter status applies once both its grace period and its
 * ZooKeeper change are over. */
static void
enforce_if_ready(KqServer *server)
{
  if (!server->status_pending || !server->grace_over || server->zk_wait)
    return;
  server->status_pending = FALSE;
  g_atomic_int_set(&server->enforced, server->status);
  g_message("status %s now enforced", kq_status_to_string(server->status));
}

static void
status_timer_cb(evutil_socket_t fd, short what, void *arg)
{
  KqServer *server = arg;

  g_mutex_lock(&server->status_lock);
  server->grace_over = TRUE;
  enforce_if_ready(server);
  g_mutex_unlock(&server->status_lock);
}

static void
zk_settled_cb(gpointer data)
{
  KqServer *server = data;

  g_mutex_lock(&server->status_lock);
  server->zk_wait = FALSE;
  enforce_if_ready(server);
  g_mutex_unlock(&server->status_lock);
}

/* Loop thread: bring the server sets to the current status. */
static void
zk_apply_status_cb(evutil_socket_t fd, short what, void *arg)
{
  KqServer *server = arg;
  gboolean read, write, wait;
  KqStatus status;

  if (server->zk == NULL)
    return;
  g_mutex_lock(&server->status_lock);
  status = server->status;
  wait = server->zk_wait;
  g_mutex_unlock(&server->status_lock);
  membership_of(status, &read, &write);
  kq_zk_registry_set_membership(server->zk, read, write, wait ? zk_settled_cb : NULL, server);
}

/* Thread-safe (Thrift calls it too). Like Kestrel, a further stricter change while one is
 * waiting out its grace period is ignored; loosening always applies at once. */
gboolean
kq_server_set_status(KqServer *server, KqStatus status, GError **error)
{
  const KqServerConfig *config = server->config;
  g_autoptr(GError) local = NULL;
  KqZkRegistry *zk;
  KqStatus old;

  if (!server->status_configured) {
    g_set_error(error, KQ_SERVER_ERROR, KQ_SERVER_ERROR_NOT_CONFIGURED,
                "Server status not configured.");
    return FALSE;
  }
  if (status == KQ_STATUS_NOT_CONFIGURED) {
    g_set_error(error, KQ_SERVER_ERROR, KQ_SERVER_ERROR_BAD_STATUS, "Unknown status.");
    return FALSE;
  }

  g_mutex_lock(&server->status_lock);
  old = server->status;
  if (!stricter(old, status) && server->status_pending) {
    g_mutex_unlock(&server->status_lock);
    g_warning("status change from %s to %s rejected: a change is in its grace period",
              kq_status_to_string(old), kq_status_to_string(status));
    return TRUE;
  }
  const gchar *name = kq_status_kestrel_name(status);
  if (!g_file_set_contents(config->status_file, name != NULL ? name : "", -1, &local)) {
    g_mutex_unlock(&server->status_lock);
    g_set_error(error, KQ_SERVER_ERROR, KQ_SERVER_ERROR_UNAVAILABLE,
                "cannot store status: %s", local->message);
    return FALSE;
  }
  server->status = status;
  zk = server->zk; /* set under status_lock at start-up, while Thrift may already serve */
  /* Stricter: ZooKeeper first (clients stop choosing this server), then the change, after
   * the grace period. Looser: the change at once, then ZooKeeper. */
  if (stricter(status, old) && (config->status_grace_period_ms > 0 || zk != NULL)) {
    struct timeval tv = { config->status_grace_period_ms / 1000,
                          (config->status_grace_period_ms % 1000) * 1000 };
    server->status_pending = TRUE;
    server->grace_over = FALSE;
    server->zk_wait = zk != NULL;
    /* event_add is safe from any thread (evthread); a stale firing finds nothing pending. */
    event_add(server->status_timer, &tv);
  } else {
    server->status_pending = FALSE;
    server->zk_wait = FALSE;
    g_atomic_int_set(&server->enforced, status);
  }
  g_mutex_unlock(&server->status_lock);
  g_message("status switched to %s (previously %s)", kq_status_to_string(status),
            kq_status_to_string(old));
  if (zk != NULL) {
    struct timeval now = { 0, 0 };
    event_base_once(server->base, -1, EV_TIMEOUT, zk_apply_status_cb, server, &now);
  }
  return TRUE;
}

gboolean
kq_server_allows_writes(KqServer *server)
{
  return !server->status_configured || g_atomic_int_get(&server->enforced) == KQ_STATUS_UP;
}

gboolean
kq_server_allows_reads(KqServer *server)
{
  return !server->status_configured ||
         g_atomic_int_get(&server->enforced) != KQ_STATUS_QUIESCENT;
}

gboolean
kq_server_check_writes(KqServer *server, const gchar *op, GError **error)
{
  if (kq_server_allows_writes(server))
    return TRUE;
  g_set_error(error, KQ_SERVER_ERROR, KQ_SERVER_ERROR_UNAVAILABLE,
              "Server not available for operation %s", op);
  return FALSE;
}

gboolean
kq_server_check_reads(KqServer *server, const gchar *op, GError **error)
{
  if (kq_server_allows_reads(server))
    return TRUE;
  g_set_error(error, KQ_SERVER_ERROR, KQ_SERVER_ERROR_UNAVAILABLE,
              "Server not available for operation %s", op);
  return FALSE;
}

/* ---- accessors --------------------------------------------------------------------------- */

KqCollection *
kq_server_get_collection(KqServer *server)
{
  return server->collection;
}

void
kq_server_read_stats(KqServer *server, KqServerStats *out)
{
  KqServerStats *st = &server->stats;

#define LOAD(field) out->field = __atomic_load_n(&st->field, __ATOMIC_RELAXED)
  LOAD(curr_connections);
  LOAD(total_connections);
  LOAD(cmd_get);
  LOAD(cmd_set);
  LOAD(cmd_peek);
  LOAD(get_hits);
  LOAD(get_misses);
  LOAD(bytes_read);
  LOAD(bytes_written);
#undef LOAD
  if (server->workers != NULL)
    kq_workers_add_stats(server->workers, out);
}

KqServerStats *
kq_server_get_stats(KqServer *server)
{
  return &server->stats;
}

const KqServerConfig *
kq_server_get_config(KqServer *server)
{
  return server->config;
}

KqZkRegistry *
kq_server_get_zookeeper(KqServer *server)
{
  return server->zk;
}

struct event_base *
kq_server_get_event_base(KqServer *server)
{
  return server->base;
}

gint64
kq_server_uptime_s(KqServer *server)
{
  return (g_get_monotonic_time() - server->start_mono_us) / G_USEC_PER_SEC;
}

gint64
kq_server_start_time_s(KqServer *server)
{
  return server->start_real_us / G_USEC_PER_SEC;
}

gboolean
kq_server_reload(KqServer *server, GError **error)
{
  KqConfigSet *queues;

  /* Without a config file the settings are the built-in ones: nothing can have changed. */
  if (server->config->config_file == NULL)
    return TRUE;
  queues = kq_server_config_load_queues_as(server->config->config_file,
                                           server->config->config_format, error);
  if (queues == NULL)
    return FALSE;
  kq_collection_reload(server->collection, queues);
  g_message("reloaded queue settings from %s", server->config->config_file);
  return TRUE;
}

/* ---- front-ends -------------------------------------------------------------------------- */

KqWorkers *
kq_server_get_workers(KqServer *server)
{
  return server->workers;
}

/* Stop the running front-ends, in list order. */
static void
front_ends_stop(KqServer *server)
{
  if (server->front_ends == NULL)
    return;
  for (guint i = 0; i < kq_front_end_service_count; i++) {
    if (server->front_ends[i] != NULL)
      kq_front_end_services[i].stop(g_steal_pointer(&server->front_ends[i]));
  }
}

/* ---- signals, timers, shutdown ----------------------------------------------------------- */

static void
stop(KqServer *server)
{
  if (server->stopped)
    return;
  server->stopped = TRUE;
  g_message("shutting down");
  front_ends_stop(server);
  kq_workers_stop(server->workers);
  if (server->collection != NULL) {
    kq_collection_close(g_steal_pointer(&server->collection));
    /* Durability callbacks the close ran still hold connections: release them. */
    kq_workers_drain(server->workers);
  }
  g_message("journals closed; goodbye");
}

static void
stop_and_break(gpointer data)
{
  KqServer *server = data;

  stop(server);
  event_base_loopbreak(server->base);
}

/* With server sets, clients are told first: leave both sets, then stop accepting. */
static void
shutdown_cb(evutil_socket_t fd, short what, void *arg)
{
  KqServer *server = arg;

  if (server->zk != NULL)
    kq_zk_registry_leave(server->zk, stop_and_break, server);
  else
    stop_and_break(server);
}

void
kq_server_request_shutdown(KqServer *server)
{
  if (g_atomic_int_compare_and_exchange(&server->shutdown_requested, 0, 1))
    event_active(server->shutdown_event, EV_READ, 0);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
  KqServer *server = arg;

  if (sig == SIGHUP) {
    kq_log_reopen();
    return;
  }
  g_message("received %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  kq_server_request_shutdown(server);
}

static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
  KqServer *server = arg;
  gint64 expired;

  if (server->collection == NULL)
    return;
  expired = kq_collection_sweep(server->collection);
  if (expired > 0)
    g_debug("expiry sweep: %" G_GINT64_FORMAT " items expired", expired);
}

static struct timeval
timeval_from_ms(gint64 ms)
{
  struct timeval tv = { (time_t) (ms / 1000), (suseconds_t) ((ms % 1000) * 1000) };
  return tv;
}

/* ---- life cycle -------------------------------------------------------------------------- */

/* Join the server sets with every listening protocol; the main endpoint is the first of
 * memcache, thrift, text, as in Kestrel. */
static void
start_zookeeper(KqServer *server)
{
  const KqServerConfig *config = server->config;
  g_autofree KqZkEndpoint *endpoints = g_new0(KqZkEndpoint, kq_front_end_service_count);
  gsize n = 0;
  gboolean read, write;

  for (guint rank = 1; rank <= kq_front_end_service_count; rank++) {
    for (guint i = 0; i < kq_front_end_service_count; i++) {
      const KqFrontEndService *fe = &kq_front_end_services[i];
      if (fe->server_set_rank == rank && server->front_ends[i] != NULL)
        endpoints[n++] = (KqZkEndpoint) { fe->name, fe->get_port(server->front_ends[i]) };
    }
  }
  if (n == 0) {
    g_warning("zookeeper: no protocol listens; not joining the server sets");
    return;
  }
  g_mutex_lock(&server->status_lock);
  membership_of(server->status, &read, &write);
  server->zk = kq_zk_registry_new(server->base, config->zookeeper, config->listen_address,
                                  endpoints, n, read, write);
  g_mutex_unlock(&server->status_lock);
}

static void
log_listening(KqServer *server)
{
  g_autoptr(GString) text = g_string_new(NULL);

  for (guint i = 0; i < kq_front_end_service_count; i++) {
    if (server->front_ends[i] != NULL) {
      g_autofree gchar *where = kq_front_end_services[i].describe(server, server->front_ends[i]);
      g_string_append_printf(text, "%s, ", where);
    }
  }
  if (text->len == 0)
    g_string_append(text, "no ports, ");
  g_string_truncate(text, text->len - 2);
  g_message("kestreld %s listening on %s; queues in %s", PACKAGE_VERSION, text->str,
            kq_collection_get_path(server->collection));
}

KqServer *
kq_server_new(KqServerConfig *config, GError **error)
{
  static gsize threads_ready = 0;
  KqServer *server = g_new0(KqServer, 1);
  g_autofree gchar *queue_path = NULL;

  /* Before any event_base exists: engine callbacks wake the loop from other threads. */
  if (g_once_init_enter(&threads_ready)) {
    evthread_use_pthreads();
    g_once_init_leave(&threads_ready, 1);
  }
  /* A client that goes away mid-reply must not kill the server. */
  signal(SIGPIPE, SIG_IGN);

  server->config = config;
  server->start_real_us = g_get_real_time();
  server->start_mono_us = g_get_monotonic_time();
  g_mutex_init(&server->status_lock);
  server->status_configured = config->status_file != NULL;
  server->status = server->status_configured ? load_status(config) : KQ_STATUS_UP;
  server->enforced = server->status;

  queue_path = g_canonicalize_filename(config->queue_path, NULL);
  server->collection = kq_collection_open(queue_path, config->queues, error);
  if (server->collection == NULL)
    goto fail;
  config->queues = NULL; /* the collection owns it now */

  server->base = event_base_new();
  if (server->base == NULL) {
    g_set_error(error, KQ_SERVER_ERROR, KQ_SERVER_ERROR_LISTEN, "cannot create an event loop");
    goto fail;
  }
  guint threads = config->worker_threads > 0 ? (guint) config->worker_threads
                                             : kq_workers_default_count();
  server->workers = kq_workers_start(server, threads, config->busy_poll_us, error);
  if (server->workers == NULL)
    goto fail;
  server->shutdown_event = event_new(server->base, -1, 0, shutdown_cb, server);
  server->status_timer = evtimer_new(server->base, status_timer_cb, server);

  server->front_ends = g_new0(gpointer, kq_front_end_service_count);
  for (guint i = 0; i < kq_front_end_service_count; i++) {
    GError *local = NULL;
    server->front_ends[i] = kq_front_end_services[i].start(server, &local);
    if (local != NULL) {
      g_propagate_error(error, local);
      goto fail;
    }
  }

  server->sigterm = evsignal_new(server->base, SIGTERM, signal_cb, server);
  server->sigint = evsignal_new(server->base, SIGINT, signal_cb, server);
  server->sighup = evsignal_new(server->base, SIGHUP, signal_cb, server);
  event_add(server->sigterm, NULL);
  event_add(server->sigint, NULL);
  event_add(server->sighup, NULL);

  if (config->expiration_timer_ms > 0) {
    struct timeval tv = timeval_from_ms(config->expiration_timer_ms);
    server->sweep_timer = event_new(server->base, -1, EV_PERSIST, sweep_cb, server);
    event_add(server->sweep_timer, &tv);
  }
  if (server->status_configured)
    g_message("server status is %s", kq_status_to_string(server->status));
  log_listening(server);
  if (config->zookeeper != NULL)
    start_zookeeper(server);
  return server;

fail:
  kq_server_free(server);
  return NULL;
}

int
kq_server_run(KqServer *server)
{
  event_base_dispatch(server->base);
  /* The loop only ends through shutdown_cb; make sure the journals are closed regardless. */
  stop(server);
  return 0;
}

void
kq_server_free(KqServer *server)
{
  if (server == NULL)
    return;
  front_ends_stop(server);
  g_clear_pointer(&server->front_ends, g_free);
  g_clear_pointer(&server->zk, kq_zk_registry_free);
  kq_workers_stop(server->workers);
  if (server->collection != NULL)
    kq_collection_close(g_steal_pointer(&server->collection));
  g_clear_pointer(&server->workers, kq_workers_free);
  g_clear_pointer(&server->sigterm, event_free);
  g_clear_pointer(&server->sigint, event_free);
  g_clear_pointer(&server->sighup, event_free);
  g_clear_pointer(&server->sweep_timer, event_free);
  g_clear_pointer(&server->status_timer, event_free);
  g_clear_pointer(&server->shutdown_event, event_free);
  g_clear_pointer(&server->base, event_base_free);
  g_mutex_clear(&server->status_lock);
  kq_server_config_free(server->config);
  g_free(server);
}

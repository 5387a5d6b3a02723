/* The Thrift front-end (SPEC 4): a listening socket and its connections on a GMainLoop running
 * on a thread of its own; requests go through the generated processor to the engine. */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>

#include "thrift-connection.h"
#include "thrift-handler.h"
#include "thrift-processor.h"
#include "thrift-service.h"
#include "thrift-types.h"

/* How long stop waits for engine callbacks still on their way to the loop. */
#define STOP_DRAIN_TIMEOUT_MS 5000

struct _KqThriftService {
  KqServer *server;
  gint listen_fd;
  gint port;
  gint64 max_frame_size;
  GMainContext *context;
  GMainLoop *loop;
  GThread *thread;
  GSource *accept_source;
  GSource *idle_source;      /* clientTimeout sweep, NULL when idle clients are kept */
  gint64 client_timeout_us;
  KqThriftHandler *handler;
  KqThriftProcessor *processor;
  GHashTable *conns; /* KqThriftConn -> itself (owned) */
  guint64 next_serial;
  gboolean stopping;
};

static KqStatus
env_get_status(gpointer data)
{
  return kq_server_get_status(data);
}

static gboolean
env_set_status(gpointer data, KqStatus status, GError **error)
{
  return kq_server_set_status(data, status, error);
}

static gboolean
env_allows_reads(gpointer data)
{
  return kq_server_allows_reads(data);
}

static gboolean
env_allows_writes(gpointer data)
{
  return kq_server_allows_writes(data);
}

static void
conn_closed(KqThriftConn *conn, gpointer data)
{
  KqThriftService *service = data;
  KqServerStats *stats = kq_server_get_stats(service->server);

  /* Open reads survive the connection; only its maxOpenTransactions count goes. */
  kq_thrift_reads_forget_owner(kq_thrift_handler_get_reads(service->handler),
                               kq_thrift_conn_get_serial(conn));
  __atomic_fetch_sub(&stats->curr_connections, 1, __ATOMIC_RELAXED);
  g_hash_table_remove(service->conns, conn);
}

static gboolean
accept_cb(gint fd, GIOCondition cond, gpointer data)
{
  KqThriftService *service = data;
  KqServerStats *stats = kq_server_get_stats(service->server);
  const KqServerConfig *config = kq_server_get_config(service->server);

  /* Bounded, so a connection storm cannot starve the clients already connected. */
  for (int i = 0; i < 64; i++) {
    gint client = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    KqThriftConn *conn;
    gint64 count;

    if (client < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        g_warning("thrift: accept failed: %s", g_strerror(errno));
      break;
    }
    /* A reply must not wait for the ACK of the one before it (Nagle): a client that sends
     * several calls before reading would stall on delayed ACKs. */
    gint one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn = kq_thrift_conn_new(service->processor, client, ++service->next_serial,
                              service->max_frame_size, conn_closed, service);
    g_hash_table_add(service->conns, conn);
    /* Counted with every protocol's clients, as the memcache and text front-ends count them. */
    count = __atomic_add_fetch(&stats->curr_connections, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&stats->total_connections, 1, __ATOMIC_RELAXED);
    kq_thrift_conn_set_refusals(
        conn,
        config->connection_limit_refuse_reads >= 0 && count > config->connection_limit_refuse_reads,
        config->connection_limit_refuse_writes >= 0 &&
            count > config->connection_limit_refuse_writes);
  }
  return G_SOURCE_CONTINUE;
}

/* clientTimeout: drop connections that sent nothing for that long and wait for nothing. */
static gboolean
idle_sweep_cb(gpointer data)
{
  KqThriftService *service = data;
  gint64 now = g_get_monotonic_time();
  GList *idle = NULL;
  GHashTableIter iter;
  KqThriftConn *conn;

  g_hash_table_iter_init(&iter, service->conns);
  while (g_hash_table_iter_next(&iter, (gpointer *)&conn, NULL))
    if (!kq_thrift_conn_is_busy(conn) &&
        now - kq_thrift_conn_last_activity(conn) >= service->client_timeout_us)
      idle = g_list_prepend(idle, kq_thrift_conn_ref(conn));
  for (GList *l = idle; l != NULL; l = l->next)
    kq_thrift_conn_close(l->data);
  g_list_free_full(idle, (GDestroyNotify)kq_thrift_conn_unref);
  return G_SOURCE_CONTINUE;
}

static gint
listen_on(const gchar *address, gint port, gint backlog, gint *bound_port, GError **error)
{
  struct addrinfo hints = {0}, *res = NULL;
  g_autofree gchar *service = g_strdup_printf("%d", port);
  gint fd = -1, rc, saved = 0;

  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  rc = getaddrinfo(address != NULL && *address != '\0' ? address : NULL, service, &hints, &res);
  if (rc != 0) {
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "thrift: cannot resolve %s: %s",
                address, gai_strerror(rc));
    return -1;
  }
  for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
    gint one = 1;
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      saved = errno;
      continue;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0)
      break;
    saved = errno;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) {
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved),
                "thrift: cannot listen on %s:%d: %s", address, port, g_strerror(saved));
    return -1;
  }
  {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    *bound_port = port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
      if (ss.ss_family == AF_INET)
        *bound_port = g_ntohs(((struct sockaddr_in *)&ss)->sin_port);
      else if (ss.ss_family == AF_INET6)
        *bound_port = g_ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
  }
  return fd;
}

static gpointer
thread_main(gpointer data)
{
  KqThriftService *service = data;

  g_main_context_push_thread_default(service->context);
  g_main_loop_run(service->loop);
  g_main_context_pop_thread_default(service->context);
  return NULL;
}

KqThriftService *
kq_thrift_service_start(KqServer *server, GError **error)
{
  const KqServerConfig *config = kq_server_get_config(server);
  KqThriftService *service;
  KqThriftEnv env = {0};
  gint fd, port = 0;

  if (config->thrift_port <= 0)
    return NULL;
  kq_thrift_types_init();
  fd = listen_on(config->listen_address, config->thrift_port,
                 config->connection_backlog > 0 ? config->connection_backlog : 1024, &port, error);
  if (fd < 0)
    return NULL;

  service = g_new0(KqThriftService, 1);
  service->server = server;
  service->listen_fd = fd;
  service->port = port;
  service->max_frame_size = config->thrift_max_frame_size > 0 ? config->thrift_max_frame_size
                                                              : 16 * 1024 * 1024;
  service->context = g_main_context_new();
  service->loop = g_main_loop_new(service->context, FALSE);
  service->conns = g_hash_table_new_full(NULL, NULL, (GDestroyNotify)kq_thrift_conn_unref, NULL);

  env.collection = kq_server_get_collection(server);
  env.stats = kq_server_get_stats(server);
  env.max_open_transactions = config->max_open_transactions;
  env.status_data = server;
  env.get_status = env_get_status;
  env.set_status = env_set_status;
  env.allows_reads = env_allows_reads;
  env.allows_writes = env_allows_writes;
  service->handler = kq_thrift_handler_new(&env, service->context);
  service->processor = kq_thrift_processor_new(service->handler);

  service->accept_source = g_unix_fd_source_new(fd, G_IO_IN);
  g_source_set_callback(service->accept_source, G_SOURCE_FUNC(accept_cb), service, NULL);
  g_source_attach(service->accept_source, service->context);

  if (config->client_timeout_ms > 0) {
    service->client_timeout_us = config->client_timeout_ms * 1000;
    service->idle_source =
        g_timeout_source_new((guint)CLAMP(config->client_timeout_ms / 4, 10, 1000));
    g_source_set_callback(service->idle_source, idle_sweep_cb, service, NULL);
    g_source_attach(service->idle_source, service->context);
  }

  service->thread = g_thread_new("kestrel-thrift", thread_main, service);
  g_info("thrift: listening on %s:%d", config->listen_address, port);
  return service;
}

static gboolean
quit_if_drained(gpointer data)
{
  KqThriftService *service = data;
  if (service->stopping && kq_thrift_handler_inflight(service->handler) == 0)
    g_main_loop_quit(service->loop);
  return G_SOURCE_REMOVE;
}

static gboolean
drain_timeout(gpointer data)
{
  KqThriftService *service = data;
  g_warning("thrift: %u engine callbacks still pending at stop",
            kq_thrift_handler_inflight(service->handler));
  g_main_loop_quit(service->loop);
  return G_SOURCE_REMOVE;
}

/* On the loop: stop accepting, close every connection (parked gets give their items back), then
 * wait for callbacks already on their way from engine threads. */
static gboolean
stop_on_loop(gpointer data)
{
  KqThriftService *service = data;
  GList *conns = g_hash_table_get_keys(service->conns);

  service->stopping = TRUE;
  g_source_destroy(service->accept_source);
  if (service->idle_source != NULL)
    g_source_destroy(service->idle_source);
  /* Closing removes each from the table (and drops its reference): hold one meanwhile. */
  for (GList *l = conns; l != NULL; l = l->next)
    kq_thrift_conn_ref(l->data);
  for (GList *l = conns; l != NULL; l = l->next)
    kq_thrift_conn_close(l->data);
  g_list_free_full(conns, (GDestroyNotify)kq_thrift_conn_unref);

  kq_thrift_handler_set_drained_func(service->handler, quit_if_drained, service);
  if (kq_thrift_handler_inflight(service->handler) == 0) {
    g_main_loop_quit(service->loop);
  } else {
    GSource *timeout = g_timeout_source_new(STOP_DRAIN_TIMEOUT_MS);
    g_source_set_callback(timeout, drain_timeout, service, NULL);
    g_source_attach(timeout, service->context);
    g_source_unref(timeout);
  }
  return G_SOURCE_REMOVE;
}

void
kq_thrift_service_stop(KqThriftService *service)
{
  gboolean drained;

  if (service == NULL)
    return;
  g_main_context_invoke(service->context, stop_on_loop, service);
  g_thread_join(service->thread);

  drained = kq_thrift_handler_inflight(service->handler) == 0;
  g_source_unref(service->accept_source);
  if (service->idle_source != NULL)
    g_source_unref(service->idle_source);
  close(service->listen_fd);
  g_hash_table_destroy(service->conns);
  g_object_unref(service->processor);
  kq_thrift_handler_set_drained_func(service->handler, NULL, NULL);
  g_object_unref(service->handler);
  g_main_loop_unref(service->loop);
  /* A callback still on its way would post to this context: then it has to stay. */
  if (drained)
    g_main_context_unref(service->context);
  g_free(service);
}

gint
kq_thrift_service_get_port(KqThriftService *service)
{
  return service != NULL ? service->port : 0;
}

/* A listening socket of the memcache and text front-ends (listener.h). Main loop only. */
#include "config.h"

#include "listener.h"

#include <errno.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "workers.h"

/* After an accept error (out of file descriptors, say) a listener rests this long. */
#define ACCEPT_RETRY_MS 100

struct _KqListener {
  KqServer *server;
  const KqFrontEnd *front_end;
  struct evconnlistener *listener;
  struct event *retry;
  gchar *description; /* "memcache 0.0.0.0:22133" */
  gint port;
};

static void
accept_cb(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *addr,
          int socklen, void *arg)
{
  KqListener *l = arg;

  kq_workers_hand_over(kq_server_get_workers(l->server), l->front_end, fd, addr, socklen);
}

static void
accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
  KqListener *l = arg;

  if (l->listener != NULL)
    evconnlistener_enable(l->listener);
}

/* Out of descriptors, the listening socket stays readable: rest instead of spinning. */
static void
accept_error_cb(struct evconnlistener *listener, void *arg)
{
  KqListener *l = arg;
  struct timeval tv = { 0, ACCEPT_RETRY_MS * 1000 };
  int err = EVUTIL_SOCKET_ERROR();

  g_warning("%s: accept failed: %s", l->description, evutil_socket_error_to_string(err));
  evconnlistener_disable(listener);
  event_add(l->retry, &tv);
}

KqListener *
kq_listener_start(KqServer *server, const gchar *protocol, const KqFrontEnd *front_end,
                  gint port, GError **error)
{
  const KqServerConfig *config = kq_server_get_config(server);
  struct evutil_addrinfo hints = { 0 }, *ai = NULL;
  char service[16];
  KqListener *l;
  int rc;

  if (port == 0)
    return NULL; /* disabled */
  l = g_new0(KqListener, 1);
  l->server = server;
  l->front_end = front_end;
  l->port = port;
  l->description = g_strdup_printf("%s %s:%d", protocol, config->listen_address, port);

  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_ADDRCONFIG;
  g_snprintf(service, sizeof service, "%d", port);
  rc = evutil_getaddrinfo(config->listen_address, service, &hints, &ai);
  if (rc != 0 || ai == NULL) {
    g_set_error(error, KQ_SERVER_ERROR, KQ_SERVER_ERROR_LISTEN,
                "cannot listen on %s: bad address: %s", l->description, evutil_gai_strerror(rc));
    goto fail;
  }
  l->listener = evconnlistener_new_bind(kq_server_get_event_base(server), accept_cb, l,
                                        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                          LEV_OPT_CLOSE_ON_EXEC,
                                        config->connection_backlog, ai->ai_addr,
                                        (int) ai->ai_addrlen);
  int err = errno;
  evutil_freeaddrinfo(ai);
  if (l->listener == NULL) {
    g_set_error(error, KQ_SERVER_ERROR, KQ_SERVER_ERROR_LISTEN, "cannot listen on %s: %s",
                l->description, g_strerror(err));
    goto fail;
  }
  evconnlistener_set_error_cb(l->listener, accept_error_cb);
  l->retry = evtimer_new(kq_server_get_event_base(server), accept_retry_cb, l);
  return l;

fail:
  kq_listener_free(l);
  return NULL;
}

const gchar *
kq_listener_describe(KqListener *l)
{
  return l->description;
}

gint
kq_listener_get_port(KqListener *l)
{
  return l->port;
}

void
kq_listener_free(KqListener *l)
{
  if (l == NULL)
    return;
  if (l->listener != NULL)
    evconnlistener_free(l->listener);
  if (l->retry != NULL)
    event_free(l->retry);
  g_free(l->description);
  g_free(l);
}

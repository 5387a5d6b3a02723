/* The list of kestreld's front-ends (front-ends.h). This is where the core meets them: each
 * entry adapts a front-end folder's own start and stop functions, and no other file of the
 * core includes a front-end's header. A new front-end is one entry here. */
#include "config.h"

#include "front-ends.h"
#include "listener.h"

#include "admin/admin-http.h"
#include "memcache/memcache.h"
#include "text/text.h"
#include "thrift/thrift-service.h"

/* ---- memcache and text: a listener whose sockets go to the worker threads ----------------- */

static gpointer
memcache_start(KqServer *server, GError **error)
{
  return kq_listener_start(server, "memcache", &kq_memcache_front_end,
                           kq_server_get_config(server)->memcache_port, error);
}

static gpointer
text_start(KqServer *server, GError **error)
{
  return kq_listener_start(server, "text", &kq_text_front_end,
                           kq_server_get_config(server)->text_port, error);
}

static void
listener_stop(gpointer running)
{
  kq_listener_free(running);
}

static gchar *
listener_describe(KqServer *server, gpointer running)
{
  return g_strdup(kq_listener_describe(running));
}

static gint
listener_get_port(gpointer running)
{
  return kq_listener_get_port(running);
}

/* ---- thrift: its own loop on its own thread ----------------------------------------------- */

static gpointer
thrift_start(KqServer *server, GError **error)
{
  return kq_thrift_service_start(server, error);
}

static void
thrift_stop(gpointer running)
{
  kq_thrift_service_stop(running);
}

static gchar *
thrift_describe(KqServer *server, gpointer running)
{
  return g_strdup_printf("thrift %s:%d", kq_server_get_config(server)->listen_address,
                         kq_thrift_service_get_port(running));
}

static gint
thrift_get_port(gpointer running)
{
  return kq_thrift_service_get_port(running);
}

/* ---- admin: HTTP on the main loop --------------------------------------------------------- */

static gpointer
admin_start(KqServer *server, GError **error)
{
  return kq_admin_http_start(server, error);
}

static void
admin_stop(gpointer running)
{
  kq_admin_http_free(running);
}

static gchar *
admin_describe(KqServer *server, gpointer running)
{
  return g_strdup(kq_admin_http_describe(running));
}

const KqFrontEndService kq_front_end_services[] = {
  { "memcache", memcache_start, listener_stop, listener_describe, 1, listener_get_port },
  { "text", text_start, listener_stop, listener_describe, 3, listener_get_port },
  { "thrift", thrift_start, thrift_stop, thrift_describe, 2, thrift_get_port },
  { "admin", admin_start, admin_stop, admin_describe, 0, NULL },
};

const guint kq_front_end_service_count = G_N_ELEMENTS(kq_front_end_services);

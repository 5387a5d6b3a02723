/* A listening socket of the memcache and text front-ends: the main loop accepts, and each new
 * socket goes to a worker thread (workers.h) with the front-end that speaks to it. */
#pragma once
#include <glib.h>
#include "connection.h"
#include "server.h"

G_BEGIN_DECLS

typedef struct _KqListener KqListener;

/* Listen on the configured listen address and `port` for `protocol` ("memcache": logs).
 * NULL without an error when port is 0 (turned off); NULL + KQ_SERVER_ERROR_LISTEN when the
 * address or port cannot be had. */
KqListener *kq_listener_start(KqServer *server, const gchar *protocol,
                              const KqFrontEnd *front_end, gint port, GError **error);
/* "memcache 0.0.0.0:22133" */
const gchar *kq_listener_describe(KqListener *listener);
gint kq_listener_get_port(KqListener *listener);
/* Stop accepting and free. */
void kq_listener_free(KqListener *listener);

G_END_DECLS

/* The admin HTTP service (beyond SPEC 8's port number: Kestrel's Ostrich endpoints, /metrics
 * and a dashboard), served by libevent's evhttp on the server's main loop. See docs/admin.md. */
#pragma once
#include <glib.h>
#include "server.h"

G_BEGIN_DECLS

typedef struct _KqAdminHttp KqAdminHttp;

/* Listen on adminListenAddress:adminHttpPort. Returns NULL without an error when the port is
 * 0 (disabled), NULL with KQ_SERVER_ERROR_LISTEN when it cannot listen. */
KqAdminHttp *kq_admin_http_start(KqServer *server, GError **error);
/* Close the listener and every admin connection. */
void kq_admin_http_free(KqAdminHttp *admin);
/* "admin 127.0.0.1:2223", for the start-up log line. */
const gchar *kq_admin_http_describe(KqAdminHttp *admin);

G_END_DECLS

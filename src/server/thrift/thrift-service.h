/* The Thrift front-end (SPEC 4): a framed/binary server on its own GMainLoop thread. */
#pragma once
#include <glib.h>
#include "server.h"

G_BEGIN_DECLS

typedef struct _KqThriftService KqThriftService;

/* Bind (address, port from config; port 0 = disabled -> returns NULL with no error) and start
 * serving on a new thread. */
KqThriftService *kq_thrift_service_start(KqServer *server, GError **error);
/* Stop accepting, close connections (open reads stay open), join the thread, free. */
void kq_thrift_service_stop(KqThriftService *service);
/* Port actually bound (useful with port 0 in tests? no: 0 disables) */
gint kq_thrift_service_get_port(KqThriftService *service);

G_END_DECLS

/* Blocking one-shot requests for kestrel-load's setup and monitoring (flush before a run, queue
 * stats with -M), over the run's wire protocol; the load itself never goes through here. */
#ifndef KESTREL_LOAD_ADMIN_H
#define KESTREL_LOAD_ADMIN_H

#include <netinet/in.h>

#include <glib.h>

#include "load-wire.h"

/* memcache `flush`, Thrift flush_queue, redis DEL */
gboolean load_admin_flush(const LoadWire *wire, const struct sockaddr_in *addr, const gchar *queue,
                          GError **error);
/* memcache `stats`, Thrift peek, redis LLEN: the queue's items and bytes (-1 when unknown). */
gboolean load_admin_queue_stats(const LoadWire *wire, const struct sockaddr_in *addr,
                                const gchar *queue, gint64 *items, gint64 *bytes, GError **error);

#endif

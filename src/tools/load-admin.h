/* Blocking one-shot memcache requests for kestrel-load's setup and monitoring (flush before a
 * run, queue stats with -M); the load itself never goes through here. */
#ifndef KESTREL_LOAD_ADMIN_H
#define KESTREL_LOAD_ADMIN_H

#include <netinet/in.h>

#include <glib.h>

gboolean load_admin_flush(const struct sockaddr_in *addr, const gchar *queue, GError **error);
/* Reads queue_<q>_items and queue_<q>_bytes from `stats` (-1 when the queue is not listed). */
gboolean load_admin_queue_stats(const struct sockaddr_in *addr, const gchar *queue,
                                gint64 *items, gint64 *bytes, GError **error);

#endif

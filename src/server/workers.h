/* The worker threads of the memcache and text front-ends, as memcached has them: the main loop
 * accepts, and hands each new socket to one of `count` threads, each running a libevent loop of
 * its own with the connections it owns (its KqConnectionHub). The engine's per-queue locks are
 * all the threads share. With two threads or more, connections that carry large items are kept
 * on threads of their own (the last half), moving there between requests, so that small
 * requests never wait behind a large item's copy. */
#pragma once
#include <event2/util.h>
#include <glib.h>
#include <sys/socket.h>
#include "connection.h"
#include "server.h"

G_BEGIN_DECLS

typedef struct _KqWorkers KqWorkers;

/* Start `count` threads (at least 1). busy_poll_us as busyPollMicros. */
KqWorkers *kq_workers_start(KqServer *server, guint count, gint64 busy_poll_us, GError **error);
guint kq_workers_count(KqWorkers *workers);
/* Hand an accepted socket over to the next thread (main loop; the socket is theirs now). */
void kq_workers_hand_over(KqWorkers *workers, const KqFrontEnd *front_end, evutil_socket_t fd,
                          const struct sockaddr *addr, int socklen);
/* Have every thread answer its parked requests, close its connections (open reads go back) and
 * end; returns once all have ended. Idempotent. */
void kq_workers_stop(KqWorkers *workers);
/* After kq_workers_stop and the collection's close: run the durability callbacks the close
 * delivered, which still hold connections. */
void kq_workers_drain(KqWorkers *workers);
void kq_workers_free(KqWorkers *workers);
/* Add every thread's request counters to *sum (any thread). */
void kq_workers_add_stats(KqWorkers *workers, KqServerStats *sum);

/* The server's worker threads (server.c). */
KqWorkers *kq_server_get_workers(KqServer *server);

/* The number of threads workerThreads = auto gives: one per core, at most 4. */
guint kq_workers_default_count(void);

G_END_DECLS

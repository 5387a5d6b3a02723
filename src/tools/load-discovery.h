/* kestrel-load --zookeeper: the servers of a Kestrel cluster from its ZooKeeper server sets
 * (<prefix>/write for producers, <prefix>/read for consumers, docs/cluster.md), followed while
 * the tool runs, and how connections spread over them. */
#ifndef KESTREL_LOAD_DISCOVERY_H
#define KESTREL_LOAD_DISCOVERY_H

#include <netinet/in.h>
#include <stdio.h>

#include <glib.h>

typedef struct LoadDiscovery LoadDiscovery;

typedef enum {
  LOAD_SPREAD_RANDOM, /* connections dealt over the members in turn from a random start */
  LOAD_SPREAD_HASH,   /* consistent hashing of connection ids over the members */
} LoadSpread;

typedef enum { LOAD_SET_READ, LOAD_SET_WRITE } LoadSet;

/* `spec` is HOST:PORT[,HOST:PORT...][/path/prefix] (prefix default /kestrel); `endpoint` names
 * the member endpoint to dial ("memcache", "thrift"); `seed` picks where random dealing
 * starts. Connects in the background. */
LoadDiscovery *load_discovery_new(const gchar *spec, const gchar *endpoint, LoadSpread spread,
                                  guint32 seed, GError **error);
gboolean load_discovery_parse_spread(const gchar *text, LoadSpread *out);
/* Waits until both sets were read and each has a member, or the deadline (monotonic ns). */
gboolean load_discovery_wait(LoadDiscovery *d, gint64 deadline_ns, GError **error);
/* Bumped on every membership change. */
guint load_discovery_generation(LoadDiscovery *d);
/* The server connection `conn_id` should use in `set`, given the one it uses (`current`, -1
 * for none); FALSE while the set is empty. Server numbers are stable for the whole run. */
gboolean load_discovery_pick(LoadDiscovery *d, LoadSet set, guint conn_id,
                             gint *server, struct sockaddr_in *addr);
/* Per-server tallies for the report (any thread). */
void load_discovery_count(LoadDiscovery *d, gint server, gboolean put, guint n);
/* "server HOST:PORT: put N, got N (read, write)" lines, or a JSON array. */
void load_discovery_print(LoadDiscovery *d, const gchar *command, gboolean json, FILE *out);
void load_discovery_free(LoadDiscovery *d);

#endif

/* kestreld's membership in the ZooKeeper server sets <pathPrefix>/read and <pathPrefix>/write,
 * kept the way Kestrel 2.4 keeps it (docs/cluster.md): one ephemeral sequential member_ node
 * per set the server belongs to, made again after a session expires.
 *
 * Runs on the server's main libevent loop. The ZooKeeper client's own threads only queue its
 * watcher events and completions; the loop handles them, so no handler blocks and every field
 * below the stats belongs to the loop thread. */
#pragma once
#include <glib.h>
#include "../server-config.h"
#include "server-set-member.h"

struct event_base;

G_BEGIN_DECLS

typedef struct _KqZkRegistry KqZkRegistry;

/* Called on the loop once a membership change is done in ZooKeeper, or cannot be done now
 * (disconnected: the nodes go when the session lapses, or come when it is back). */
typedef void (*KqZkSettledFunc)(gpointer data);

typedef struct {
  gboolean connected;    /* a live session */
  gboolean registered;   /* every set the status calls for holds this server's node */
  gboolean read_member, write_member;
  gint64 sessions;       /* sessions established (the first one included) */
  gint64 reconnects;     /* connections regained within a session */
  gint64 expirations;    /* sessions the server expired */
} KqZkStats;

/* Starts connecting and returns at once; joins the sets of (`read`, `write`) when connected
 * (a client that cannot even start is retried every second). `config` and `endpoints` are
 * copied. */
KqZkRegistry *kq_zk_registry_new(struct event_base *base, const KqZooKeeperConfig *config,
                                 const gchar *listen_address, const KqZkEndpoint *endpoints,
                                 gsize n_endpoints, gboolean read, gboolean write);
/* Loop thread. Wanted membership; `settled` (may be NULL) runs once it is in place, replacing
 * one still waiting. */
void kq_zk_registry_set_membership(KqZkRegistry *registry, gboolean read, gboolean write,
                                   KqZkSettledFunc settled, gpointer data);
/* Loop thread, at shutdown: leave both sets, then `settled` (at the latest after the session
 * timeout, when ZooKeeper does not answer); no later join. */
void kq_zk_registry_leave(KqZkRegistry *registry, KqZkSettledFunc settled, gpointer data);
/* Any thread. */
void kq_zk_registry_get_stats(KqZkRegistry *registry, KqZkStats *out);
/* Closes the session (which also removes any node left). */
void kq_zk_registry_free(KqZkRegistry *registry);

G_END_DECLS

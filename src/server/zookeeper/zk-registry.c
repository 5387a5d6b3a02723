/* Membership in the ZooKeeper server sets (see zk-registry.h).
 *
 * The multi-threaded ZooKeeper client calls the watcher and the completions on its own
 * completion thread. Those only put a message in `inbox` and wake the loop; everything else
 * happens in run_inbox on the loop. A message carries the generation of the handle it came
 * from: after a session is replaced, late news from the old one is dropped. */
#include "config.h"

#include "zk-registry.h"

#include <errno.h>
#include <string.h>

#include <event2/event.h>
#include <zookeeper/zookeeper.h>

/* After a refused init or a failed create, try again this long later. */
#define RETRY_MS 1000

enum { SET_READ, SET_WRITE, N_SETS };
static const gchar *const set_names[N_SETS] = { "read", "write" };

typedef enum { MSG_SESSION, MSG_CREATED, MSG_DELETED } MsgKind;

typedef struct {
  MsgKind kind;
  guint generation;
  gint set;
  gint state; /* MSG_SESSION: the session state */
  gint rc;    /* MSG_CREATED, MSG_DELETED */
  gchar *path; /* MSG_CREATED: the member node made */
} Msg;

/* What a watcher or completion needs to address its message (freed with the message, or by
 * the registry for the watcher's). */
typedef struct {
  KqZkRegistry *registry;
  guint generation;
  gint set;
} Origin;

typedef struct {
  gchar *dir;        /* "<pathPrefix>/read" */
  gchar *node;       /* this server's member node; NULL when not a member */
  gboolean want;     /* the status calls for membership */
  gboolean busy;     /* a create or delete is in flight */
  gboolean uncertain; /* a create was cut off: the node may exist without our knowing */
} ServerSet;

struct _KqZkRegistry {
  struct event_base *base;
  struct event *wake, *retry, *deadline;
  GAsyncQueue *inbox; /* Msg */

  gchar *hosts;       /* "host:port" */
  gchar *path_prefix;
  gint session_timeout_ms;
  gchar *credentials;
  struct ACL_vector acl;
  struct ACL creator_acl[2];
  gchar *member_json;

  zhandle_t *zh;
  Origin *watcher_origin;
  guint generation;
  gboolean connected;       /* loop's view */
  gboolean connected_once;  /* this handle has had a session */
  gboolean leaving;         /* shutting down: no more joins */
  gboolean init_warned;     /* "cannot start a client" logged once until it works */
  ServerSet sets[N_SETS];
  KqZkSettledFunc settled;
  gpointer settled_data;

  /* Stats, read from any thread. */
  gint stat_connected, stat_registered, stat_read_member, stat_write_member;
  gint64 stat_sessions, stat_reconnects, stat_expirations;
};

static void open_session(KqZkRegistry *registry);
static void reconcile(KqZkRegistry *registry);

/* ---- other threads: queue and wake ------------------------------------------------------- */

static void
post(KqZkRegistry *registry, Msg *msg)
{
  g_async_queue_push(registry->inbox, msg);
  event_active(registry->wake, EV_READ, 0);
}

static void
watcher_cb(zhandle_t *zh, int type, int state, const char *path, void *context)
{
  Origin *origin = context;
  Msg *msg;

  if (type != ZOO_SESSION_EVENT)
    return; /* no node watches are set */
  msg = g_new0(Msg, 1);
  msg->kind = MSG_SESSION;
  msg->generation = origin->generation;
  msg->state = state;
  post(origin->registry, msg);
}

static void
created_cb(int rc, const char *value, const void *data)
{
  Origin *origin = (Origin *) data;
  Msg *msg = g_new0(Msg, 1);

  msg->kind = MSG_CREATED;
  msg->generation = origin->generation;
  msg->set = origin->set;
  msg->rc = rc;
  msg->path = rc == ZOK ? g_strdup(value) : NULL;
  post(origin->registry, msg);
  g_free(origin);
}

static void
deleted_cb(int rc, const void *data)
{
  Origin *origin = (Origin *) data;
  Msg *msg = g_new0(Msg, 1);

  msg->kind = MSG_DELETED;
  msg->generation = origin->generation;
  msg->set = origin->set;
  msg->rc = rc;
  post(origin->registry, msg);
  g_free(origin);
}

/* Parent nodes usually exist already: the answer does not matter. */
static void
parent_created_cb(int rc, const char *value, const void *data)
{
}

/* The client's own log lines, at debug level: it repeats them on every retry. */
static void
client_log_cb(const char *message)
{
  g_debug("zookeeper client: %s", message);
}

static void
msg_free(Msg *msg)
{
  g_free(msg->path);
  g_free(msg);
}

/* ---- loop thread ------------------------------------------------------------------------- */

static Origin *
origin_new(KqZkRegistry *registry, gint set)
{
  Origin *origin = g_new(Origin, 1);

  origin->registry = registry;
  origin->generation = registry->generation;
  origin->set = set;
  return origin;
}

static gboolean
set_in_place(const ServerSet *set, gboolean leaving)
{
  return !set->busy && !set->uncertain && (set->node != NULL) == (set->want && !leaving);
}

static void
publish_stats(KqZkRegistry *registry)
{
  gboolean registered = registry->connected;

  for (gint i = 0; i < N_SETS; i++)
    registered = registered && set_in_place(&registry->sets[i], registry->leaving);
  g_atomic_int_set(&registry->stat_connected, registry->connected);
  g_atomic_int_set(&registry->stat_registered, registered);
  g_atomic_int_set(&registry->stat_read_member, registry->sets[SET_READ].node != NULL);
  g_atomic_int_set(&registry->stat_write_member, registry->sets[SET_WRITE].node != NULL);
}

/* Done, or nothing can be done before the connection is back. */
static void
check_settled(KqZkRegistry *registry)
{
  gboolean settled = TRUE;
  KqZkSettledFunc func = registry->settled;

  publish_stats(registry);
  if (func == NULL)
    return;
  if (registry->connected)
    for (gint i = 0; i < N_SETS; i++)
      settled = settled && set_in_place(&registry->sets[i], registry->leaving);
  if (!settled)
    return;
  registry->settled = NULL;
  event_del(registry->deadline);
  func(registry->settled_data);
}

static void
create_parents(KqZkRegistry *registry, const gchar *dir)
{
  for (const gchar *slash = strchr(dir + 1, '/');; slash = strchr(slash + 1, '/')) {
    g_autofree gchar *path = slash != NULL ? g_strndup(dir, (gsize) (slash - dir))
                                           : g_strdup(dir);
    zoo_acreate(registry->zh, path, NULL, -1, &registry->acl, ZOO_PERSISTENT,
                parent_created_cb, NULL);
    if (slash == NULL)
      break;
  }
}

static void
join(KqZkRegistry *registry, gint i)
{
  ServerSet *set = &registry->sets[i];
  g_autofree gchar *prefix = g_strdup_printf("%s/member_", set->dir);
  Origin *origin = origin_new(registry, i);
  int rc;

  /* One session's requests are answered in order: the parents exist by the member's turn. */
  create_parents(registry, set->dir);
  rc = zoo_acreate(registry->zh, prefix, registry->member_json,
                   (int) strlen(registry->member_json), &registry->acl,
                   ZOO_EPHEMERAL_SEQUENTIAL, created_cb, origin);
  if (rc != ZOK) {
    g_free(origin);
    g_warning("zookeeper: cannot join the %s server set: %s", set_names[i], zerror(rc));
    return; /* the next session event tries again */
  }
  set->busy = TRUE;
}

static void
leave(KqZkRegistry *registry, gint i)
{
  ServerSet *set = &registry->sets[i];
  Origin *origin = origin_new(registry, i);
  int rc = zoo_adelete(registry->zh, set->node, -1, deleted_cb, origin);

  if (rc != ZOK) {
    g_free(origin);
    g_warning("zookeeper: cannot leave the %s server set: %s", set_names[i], zerror(rc));
    return;
  }
  set->busy = TRUE;
}

static void
reconcile(KqZkRegistry *registry)
{
  if (registry->connected && registry->zh != NULL) {
    for (gint i = 0; i < N_SETS; i++) {
      ServerSet *set = &registry->sets[i];
      gboolean want = set->want && !registry->leaving;

      if (set->busy || set->uncertain)
        continue;
      if (want && set->node == NULL)
        join(registry, i);
      else if (!want && set->node != NULL)
        leave(registry, i);
    }
  }
  check_settled(registry);
}

/* Close the handle (its threads end; what they queued is dropped as stale) and everything
 * known of its session: its nodes go with it. */
static void
forget_session(KqZkRegistry *registry)
{
  if (registry->zh != NULL)
    zookeeper_close(registry->zh);
  registry->zh = NULL;
  g_clear_pointer(&registry->watcher_origin, g_free);
  registry->connected = FALSE;
  for (gint i = 0; i < N_SETS; i++) {
    ServerSet *set = &registry->sets[i];
    g_clear_pointer(&set->node, g_free);
    set->busy = FALSE;
    set->uncertain = FALSE;
  }
}

/* Start another session: after expiry, or when a cut-off create left a node we cannot tell
 * apart from another server's (closing the session removes it). */
static void
restart_session(KqZkRegistry *registry)
{
  forget_session(registry);
  open_session(registry);
  check_settled(registry);
}

static void
on_session_event(KqZkRegistry *registry, gint state)
{
  if (state == ZOO_CONNECTED_STATE) {
    if (registry->connected)
      return;
    registry->connected = TRUE;
    if (!registry->connected_once) {
      const clientid_t *id = zoo_client_id(registry->zh);
      registry->connected_once = TRUE;
      __atomic_add_fetch(&registry->stat_sessions, 1, __ATOMIC_RELAXED);
      g_message("zookeeper: connected to %s, session 0x%" G_GINT64_MODIFIER "x",
                registry->hosts, (gint64) id->client_id);
    } else {
      __atomic_add_fetch(&registry->stat_reconnects, 1, __ATOMIC_RELAXED);
      g_message("zookeeper: connection to %s regained, same session", registry->hosts);
    }
    for (gint i = 0; i < N_SETS; i++)
      if (registry->sets[i].uncertain) {
        g_message("zookeeper: a join was cut off; starting a new session to join cleanly");
        restart_session(registry);
        return;
      }
    reconcile(registry);
  } else if (state == ZOO_EXPIRED_SESSION_STATE) {
    __atomic_add_fetch(&registry->stat_expirations, 1, __ATOMIC_RELAXED);
    g_message("zookeeper: session expired (its nodes are gone); joining again with a new one");
    restart_session(registry);
  } else if (state == ZOO_AUTH_FAILED_STATE) {
    struct timeval tv = { RETRY_MS / 1000, (RETRY_MS % 1000) * 1000 };
    g_warning("zookeeper: %s refused the credentials; trying again in a second",
              registry->hosts);
    forget_session(registry);
    event_add(registry->retry, &tv);
    check_settled(registry);
  } else if (registry->connected) { /* connecting or associating again */
    registry->connected = FALSE;
    g_message("zookeeper: connection to %s lost; serving on, membership resumes when it is "
              "back", registry->hosts);
    check_settled(registry);
  }
}

static void
on_created(KqZkRegistry *registry, Msg *msg)
{
  ServerSet *set = &registry->sets[msg->set];

  set->busy = FALSE;
  if (msg->rc == ZOK) {
    set->node = g_steal_pointer(&msg->path);
    g_message("zookeeper: joined the %s server set as %s", set_names[msg->set], set->node);
  } else if (msg->rc == ZCONNECTIONLOSS || msg->rc == ZOPERATIONTIMEOUT) {
    set->uncertain = TRUE;
  } else if (msg->rc != ZCLOSING && msg->rc != ZSESSIONEXPIRED) {
    struct timeval tv = { RETRY_MS / 1000, (RETRY_MS % 1000) * 1000 };
    g_warning("zookeeper: cannot join the %s server set under %s: %s", set_names[msg->set],
              set->dir, zerror(msg->rc));
    set->uncertain = TRUE; /* held back until the retry timer */
    event_add(registry->retry, &tv);
  }
}

static void
on_deleted(KqZkRegistry *registry, Msg *msg)
{
  ServerSet *set = &registry->sets[msg->set];

  set->busy = FALSE;
  if (msg->rc == ZOK || msg->rc == ZNONODE) {
    g_message("zookeeper: left the %s server set (%s)", set_names[msg->set], set->node);
    g_clear_pointer(&set->node, g_free);
  } else if (msg->rc != ZCONNECTIONLOSS && msg->rc != ZOPERATIONTIMEOUT && msg->rc != ZCLOSING) {
    g_warning("zookeeper: cannot delete %s: %s; it goes with the session", set->node,
              zerror(msg->rc));
    g_clear_pointer(&set->node, g_free);
  }
}

static void
run_inbox(evutil_socket_t fd, short what, void *arg)
{
  KqZkRegistry *registry = arg;
  Msg *msg;

  while ((msg = g_async_queue_try_pop(registry->inbox)) != NULL) {
    if (msg->generation == registry->generation && registry->zh != NULL) {
      if (msg->kind == MSG_SESSION)
        on_session_event(registry, msg->state);
      else if (msg->kind == MSG_CREATED)
        on_created(registry, msg);
      else
        on_deleted(registry, msg);
      if (msg->kind != MSG_SESSION)
        reconcile(registry);
    }
    msg_free(msg);
  }
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
  KqZkRegistry *registry = arg;

  if (registry->zh == NULL) {
    open_session(registry);
    return;
  }
  /* A create the server refused: let it try again. */
  for (gint i = 0; i < N_SETS; i++)
    if (!registry->sets[i].busy)
      registry->sets[i].uncertain = FALSE;
  reconcile(registry);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
  KqZkRegistry *registry = arg;
  KqZkSettledFunc func = registry->settled;

  if (func == NULL)
    return;
  g_warning("zookeeper: no answer from %s within the session timeout; going ahead",
            registry->hosts);
  registry->settled = NULL;
  func(registry->settled_data);
}

static void
open_session(KqZkRegistry *registry)
{
  registry->generation++;
  registry->connected_once = FALSE;
  registry->watcher_origin = origin_new(registry, -1);
  errno = 0;
  registry->zh = zookeeper_init2(registry->hosts, watcher_cb, registry->session_timeout_ms,
                                 NULL, registry->watcher_origin, 0, client_log_cb);
  if (registry->zh == NULL) {
    struct timeval tv = { RETRY_MS / 1000, (RETRY_MS % 1000) * 1000 };
    if (!registry->init_warned)
      g_warning("zookeeper: cannot start a client for %s: %s; trying again every second",
                registry->hosts, g_strerror(errno));
    registry->init_warned = TRUE;
    g_clear_pointer(&registry->watcher_origin, g_free);
    event_add(registry->retry, &tv);
    return;
  }
  registry->init_warned = FALSE;
  if (registry->credentials != NULL)
    zoo_add_auth(registry->zh, "digest", registry->credentials,
                 (int) strlen(registry->credentials), NULL, NULL);
}

KqZkRegistry *
kq_zk_registry_new(struct event_base *base, const KqZooKeeperConfig *config,
                   const gchar *listen_address, const KqZkEndpoint *endpoints,
                   gsize n_endpoints, gboolean read, gboolean write)
{
  KqZkRegistry *registry = g_new0(KqZkRegistry, 1);
  g_autofree gchar *host = kq_zk_advertised_host(listen_address, config->advertise_address);

  registry->base = base;
  registry->inbox = g_async_queue_new();
  registry->wake = event_new(base, -1, 0, run_inbox, registry);
  registry->retry = evtimer_new(base, retry_cb, registry);
  registry->deadline = evtimer_new(base, deadline_cb, registry);
  registry->hosts = g_strdup_printf("%s:%d", config->host, config->port);
  registry->path_prefix = g_strdup(config->path_prefix);
  registry->session_timeout_ms = (gint) config->session_timeout_ms;
  registry->credentials = g_strdup(config->credentials);
  if (config->acl_creator) {
    /* Everyone reads, the creator (by its digest credentials) does everything. */
    registry->creator_acl[0] = (struct ACL) { ZOO_PERM_READ, { "world", "anyone" } };
    registry->creator_acl[1] = (struct ACL) { ZOO_PERM_ALL, { "auth", "" } };
    registry->acl = (struct ACL_vector) { 2, registry->creator_acl };
  } else {
    registry->acl = ZOO_OPEN_ACL_UNSAFE;
  }
  registry->member_json = kq_zk_member_json(host, endpoints, n_endpoints, config->shard);
  for (gint i = 0; i < N_SETS; i++)
    registry->sets[i].dir = g_strdup_printf("%s/%s", config->path_prefix, set_names[i]);
  registry->sets[SET_READ].want = read;
  registry->sets[SET_WRITE].want = write;

  zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
  g_message("zookeeper: server sets %s/read and %s/write at %s, member data %s",
            config->path_prefix, config->path_prefix, registry->hosts, registry->member_json);
  open_session(registry);
  publish_stats(registry);
  return registry;
}

void
kq_zk_registry_set_membership(KqZkRegistry *registry, gboolean read, gboolean write,
                              KqZkSettledFunc settled, gpointer data)
{
  registry->sets[SET_READ].want = read;
  registry->sets[SET_WRITE].want = write;
  registry->settled = settled;
  registry->settled_data = data;
  if (settled != NULL) {
    struct timeval tv = { registry->session_timeout_ms / 1000,
                          (registry->session_timeout_ms % 1000) * 1000 };
    event_add(registry->deadline, &tv);
  }
  reconcile(registry);
}

void
kq_zk_registry_leave(KqZkRegistry *registry, KqZkSettledFunc settled, gpointer data)
{
  registry->leaving = TRUE;
  kq_zk_registry_set_membership(registry, FALSE, FALSE, settled, data);
}

void
kq_zk_registry_get_stats(KqZkRegistry *registry, KqZkStats *out)
{
  out->connected = g_atomic_int_get(&registry->stat_connected);
  out->registered = g_atomic_int_get(&registry->stat_registered);
  out->read_member = g_atomic_int_get(&registry->stat_read_member);
  out->write_member = g_atomic_int_get(&registry->stat_write_member);
  out->sessions = __atomic_load_n(&registry->stat_sessions, __ATOMIC_RELAXED);
  out->reconnects = __atomic_load_n(&registry->stat_reconnects, __ATOMIC_RELAXED);
  out->expirations = __atomic_load_n(&registry->stat_expirations, __ATOMIC_RELAXED);
}

void
kq_zk_registry_free(KqZkRegistry *registry)
{
  Msg *msg;

  if (registry == NULL)
    return;
  /* Closing the session removes the nodes at once; the client's threads end with it. */
  if (registry->zh != NULL)
    zookeeper_close(registry->zh);
  while ((msg = g_async_queue_try_pop(registry->inbox)) != NULL)
    msg_free(msg);
  g_async_queue_unref(registry->inbox);
  g_free(registry->watcher_origin);
  event_free(registry->wake);
  event_free(registry->retry);
  event_free(registry->deadline);
  for (gint i = 0; i < N_SETS; i++) {
    g_free(registry->sets[i].dir);
    g_free(registry->sets[i].node);
  }
  g_free(registry->hosts);
  g_free(registry->path_prefix);
  g_free(registry->credentials);
  g_free(registry->member_json);
  g_free(registry);
}

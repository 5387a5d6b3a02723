/* Server-set discovery for kestrel-load (see load-discovery.h).
 *
 * The multi-threaded ZooKeeper client runs every watcher and completion on its one completion
 * thread, so the reading of a set (children, then each child's data) needs no lock of its own;
 * only publishing the result takes `lock`, which the worker threads take to pick a server. */
#include "config.h"

#include "load-discovery.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <zookeeper/zookeeper.h>

#define MAX_SERVERS 256
#define HASH_POINTS 64 /* points per member on the consistent-hashing ring */

typedef struct {
  gchar *name; /* "host:port" */
  struct sockaddr_in addr;
  atomic_uint_fast64_t puts, gets;
} Server;

typedef struct {
  LoadDiscovery *d;
  LoadSet set;
} SetRef;

/* One reading of a set: the children's data as it arrives. */
typedef struct {
  LoadDiscovery *d;
  zhandle_t *zh; /* the client's callbacks may run before zookeeper_init2 has set d->zh */
  LoadSet set;
  guint64 seq;
  guint pending;
  GArray *found; /* gint server numbers */
} Reading;

struct LoadDiscovery {
  zhandle_t *zh;
  gchar *hosts, *prefix, *endpoint;
  LoadSpread spread;
  guint deal_offset; /* random spread: where dealing starts */
  GRegex *endpoint_re, *service_re;
  SetRef refs[2];
  guint64 started[2], published[2]; /* completion thread only */

  GMutex lock;
  GCond changed;
  Server servers[MAX_SERVERS];
  guint n_servers;
  GArray *members[2]; /* gint server numbers, sorted */
  gboolean loaded[2];
  atomic_uint generation;
};

static const gchar *const set_names[2] = { "read", "write" };

static void read_set(LoadDiscovery *d, zhandle_t *zh, LoadSet set);

static guint32 fnv1a(const gchar *text, guint32 salt)
{
  guint32 h = 2166136261u ^ salt;
  for (const guchar *p = (const guchar *)text; *p; p++)
    h = (h ^ *p) * 16777619u;
  h ^= h >> 15; /* spread short keys that differ in their last bytes */
  h *= 0x2c1b3c6du;
  h ^= h >> 12;
  return h;
}

/* The member's endpoint for this tool's wire, else its service endpoint. */
static gint server_of_member(LoadDiscovery *d, const gchar *json)
{
  g_autoptr(GMatchInfo) m = NULL;
  if (!g_regex_match(d->endpoint_re, json, 0, &m)) {
    g_clear_pointer(&m, g_match_info_free);
    if (!g_regex_match(d->service_re, json, 0, &m))
      return -1;
  }
  g_autofree gchar *host = g_match_info_fetch(m, 1);
  g_autofree gchar *port = g_match_info_fetch(m, 2);
  g_autofree gchar *name = g_strdup_printf("%s:%s", host, port);
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((guint16)atoi(port)) };
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    g_printerr("kestrel-load: member %s is not an IPv4 address; skipped\n", name);
    return -1;
  }
  g_mutex_lock(&d->lock);
  gint found = -1;
  for (guint i = 0; i < d->n_servers && found < 0; i++)
    if (strcmp(d->servers[i].name, name) == 0)
      found = (gint)i;
  if (found < 0 && d->n_servers < MAX_SERVERS) {
    found = (gint)d->n_servers++;
    d->servers[found].name = g_steal_pointer(&name);
    d->servers[found].addr = addr;
  }
  g_mutex_unlock(&d->lock);
  return found;
}

static gint compare_int(gconstpointer a, gconstpointer b)
{
  return *(const gint *)a - *(const gint *)b;
}

static void publish(Reading *r)
{
  LoadDiscovery *d = r->d;
  if (r->seq < d->published[r->set]) /* a newer reading got there first */
    return;
  d->published[r->set] = r->seq;
  g_array_sort(r->found, compare_int);
  g_mutex_lock(&d->lock);
  g_array_unref(d->members[r->set]);
  d->members[r->set] = g_array_ref(r->found);
  d->loaded[r->set] = TRUE;
  atomic_fetch_add(&d->generation, 1);
  g_cond_broadcast(&d->changed);
  g_mutex_unlock(&d->lock);
}

static void reading_done(Reading *r)
{
  if (--r->pending > 0)
    return;
  publish(r);
  g_array_unref(r->found);
  g_free(r);
}

static void data_cb(int rc, const char *value, int len, const struct Stat *stat, const void *data)
{
  Reading *r = (Reading *)data;
  if (rc == ZOK && value != NULL && len > 0) {
    g_autofree gchar *json = g_strndup(value, (gsize)len);
    gint server = server_of_member(r->d, json);
    if (server >= 0)
      g_array_append_val(r->found, server);
  }
  reading_done(r);
}

static void watcher_cb(zhandle_t *zh, int type, int state, const char *path, void *context)
{
  LoadDiscovery *d = (LoadDiscovery *)zoo_get_context(zh);
  if (type == ZOO_SESSION_EVENT) {
    if (state == ZOO_CONNECTED_STATE) {
      read_set(d, zh, LOAD_SET_READ);
      read_set(d, zh, LOAD_SET_WRITE);
    } else if (state == ZOO_EXPIRED_SESSION_STATE) {
      g_printerr("kestrel-load: ZooKeeper session expired; the server lists stay as they were\n");
    }
    return;
  }
  if (context != NULL) /* a set's watch: children changed, or the set was created */
    read_set(d, zh, ((SetRef *)context)->set);
}

static void children_cb(int rc, const struct String_vector *strings, const void *data)
{
  Reading *r = (Reading *)data;
  LoadDiscovery *d = r->d;
  if (rc == ZNONODE) {
    /* no such set yet: learn when it appears */
    g_autofree gchar *dir = g_strdup_printf("%s/%s", d->prefix, set_names[r->set]);
    zoo_awexists(r->zh, dir, watcher_cb, &d->refs[r->set], NULL, NULL);
  }
  if (rc == ZOK)
    for (gint i = 0; i < strings->count; i++) {
      g_autofree gchar *path = g_strdup_printf("%s/%s/%s", d->prefix, set_names[r->set],
                                               strings->data[i]);
      r->pending++;
      if (zoo_aget(r->zh, path, 0, data_cb, r) != ZOK)
        r->pending--;
    }
  if (rc != ZOK && rc != ZNONODE) {
    /* connection trouble: the session event reads the set again */
    g_array_unref(r->found);
    g_free(r);
    return;
  }
  reading_done(r); /* the reading's own share */
}

static void read_set(LoadDiscovery *d, zhandle_t *zh, LoadSet set)
{
  g_autofree gchar *dir = g_strdup_printf("%s/%s", d->prefix, set_names[set]);
  Reading *r = g_new0(Reading, 1);
  r->d = d;
  r->zh = zh;
  r->set = set;
  r->seq = ++d->started[set];
  r->pending = 1;
  r->found = g_array_new(FALSE, FALSE, sizeof(gint));
  if (zoo_awget_children(zh, dir, watcher_cb, &d->refs[set], children_cb, r) != ZOK) {
    g_array_unref(r->found);
    g_free(r);
  }
}

gboolean load_discovery_parse_spread(const gchar *text, LoadSpread *out)
{
  if (g_strcmp0(text, "random") == 0)
    *out = LOAD_SPREAD_RANDOM;
  else if (g_strcmp0(text, "hash") == 0 || g_strcmp0(text, "consistent") == 0)
    *out = LOAD_SPREAD_HASH;
  else
    return FALSE;
  return TRUE;
}

static void quiet_log(const char *message)
{
  (void)message; /* the client repeats its connection errors on every retry */
}

LoadDiscovery *load_discovery_new(const gchar *spec, const gchar *endpoint, LoadSpread spread,
                                  guint32 seed, GError **error)
{
  const gchar *slash = strchr(spec, '/');
  if (slash == spec || *spec == '\0') {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                "--zookeeper wants HOST:PORT/path/prefix, got '%s'", spec);
    return NULL;
  }
  LoadDiscovery *d = g_new0(LoadDiscovery, 1);
  d->hosts = slash ? g_strndup(spec, (gsize)(slash - spec)) : g_strdup(spec);
  d->prefix = slash && slash[1] ? g_strdup(slash) : g_strdup("/kestrel");
  if (g_str_has_suffix(d->prefix, "/") && strlen(d->prefix) > 1)
    d->prefix[strlen(d->prefix) - 1] = '\0';
  d->endpoint = g_strdup(endpoint);
  d->spread = spread;
  d->deal_offset = seed % MAX_SERVERS;
  g_autofree gchar *quoted = g_regex_escape_string(endpoint, -1);
  g_autofree gchar *pattern = g_strdup_printf(
    "\"%s\"\\s*:\\s*\\{\\s*\"host\"\\s*:\\s*\"([^\"]+)\"\\s*,\\s*\"port\"\\s*:\\s*(\\d+)", quoted);
  d->endpoint_re = g_regex_new(pattern, 0, 0, NULL);
  d->service_re = g_regex_new(
    "\"serviceEndpoint\"\\s*:\\s*\\{\\s*\"host\"\\s*:\\s*\"([^\"]+)\"\\s*,\\s*\"port\"\\s*:\\s*(\\d+)",
    0, 0, NULL);
  for (gint s = 0; s < 2; s++) {
    d->refs[s] = (SetRef){ d, (LoadSet)s };
    d->members[s] = g_array_new(FALSE, FALSE, sizeof(gint));
  }
  g_mutex_init(&d->lock);
  g_cond_init(&d->changed);
  zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
  d->zh = zookeeper_init2(d->hosts, watcher_cb, 10000, NULL, d, 0, quiet_log);
  if (d->zh == NULL) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                "--zookeeper %s: %s", spec, g_strerror(errno));
    load_discovery_free(d);
    return NULL;
  }
  return d;
}

gboolean load_discovery_wait(LoadDiscovery *d, gint64 deadline_ns, GError **error)
{
  gint64 deadline_us = g_get_monotonic_time() +
                       (deadline_ns - (gint64)g_get_monotonic_time() * 1000) / 1000;
  g_mutex_lock(&d->lock);
  while (!(d->loaded[0] && d->loaded[1] && d->members[0]->len && d->members[1]->len)) {
    if (!g_cond_wait_until(&d->changed, &d->lock, deadline_us)) {
      g_mutex_unlock(&d->lock);
      g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                  "no servers in %s/read and %s/write at %s", d->prefix, d->prefix, d->hosts);
      return FALSE;
    }
  }
  g_mutex_unlock(&d->lock);
  return TRUE;
}

guint load_discovery_generation(LoadDiscovery *d)
{
  return atomic_load(&d->generation);
}

static gboolean is_member(GArray *members, gint server)
{
  for (guint i = 0; i < members->len; i++)
    if (g_array_index(members, gint, i) == server)
      return TRUE;
  return FALSE;
}

/* The member owning the first ring point at or after the connection's point. */
static gint ring_pick(LoadDiscovery *d, GArray *members, guint conn_id)
{
  gchar key[32];
  g_snprintf(key, sizeof key, "connection-%u", conn_id);
  guint32 at = fnv1a(key, 0), best = G_MAXUINT32, lowest = G_MAXUINT32;
  gint best_server = -1, lowest_server = -1;
  for (guint i = 0; i < members->len; i++) {
    gint s = g_array_index(members, gint, i);
    for (guint32 p = 0; p < HASH_POINTS; p++) {
      guint32 point = fnv1a(d->servers[s].name, p + 1);
      if (point >= at && (best_server < 0 || point < best))
        best = point, best_server = s;
      if (lowest_server < 0 || point < lowest)
        lowest = point, lowest_server = s;
    }
  }
  return best_server >= 0 ? best_server : lowest_server;
}

gboolean load_discovery_pick(LoadDiscovery *d, LoadSet set, guint conn_id,
                             gint *server, struct sockaddr_in *addr)
{
  g_mutex_lock(&d->lock);
  GArray *members = d->members[set];
  gint chosen = -1;
  if (members->len > 0) {
    /* Only producers are hashed: consumers hashed onto some of the members could leave one
     * with no reader, and its items would never be delivered. */
    if (d->spread == LOAD_SPREAD_HASH && set == LOAD_SET_WRITE)
      chosen = ring_pick(d, members, conn_id);
    else /* dealt in turn from a random start: an even share each, a newcomer included */
      chosen = g_array_index(members, gint, (conn_id + d->deal_offset) % members->len);
    *server = chosen;
    *addr = d->servers[chosen].addr;
  }
  g_mutex_unlock(&d->lock);
  return chosen >= 0;
}

void load_discovery_count(LoadDiscovery *d, gint server, gboolean put, guint n)
{
  if (server < 0 || server >= MAX_SERVERS)
    return;
  atomic_fetch_add(put ? &d->servers[server].puts : &d->servers[server].gets, n);
}

void load_discovery_print(LoadDiscovery *d, const gchar *command, gboolean json, FILE *out)
{
  g_mutex_lock(&d->lock);
  if (json)
    fprintf(out, "{\"command\":\"%s\",\"servers\":[", command);
  for (guint i = 0; i < d->n_servers; i++) {
    Server *s = &d->servers[i];
    guint64 puts = atomic_load(&s->puts), gets = atomic_load(&s->gets);
    gboolean r = is_member(d->members[LOAD_SET_READ], (gint)i);
    gboolean w = is_member(d->members[LOAD_SET_WRITE], (gint)i);
    if (json)
      fprintf(out, "%s{\"server\":\"%s\",\"puts\":%" G_GUINT64_FORMAT ",\"gets\":%"
              G_GUINT64_FORMAT ",\"read\":%s,\"write\":%s}", i ? "," : "", s->name, puts, gets,
              r ? "true" : "false", w ? "true" : "false");
    else
      fprintf(out, "%s: server %s: put %" G_GUINT64_FORMAT ", got %" G_GUINT64_FORMAT
              " (now in: %s%s%s)\n", command, s->name, puts, gets, r ? "read" : "",
              r && w ? ", " : "", w ? "write" : r ? "" : "none");
  }
  if (json)
    fprintf(out, "]}\n");
  g_mutex_unlock(&d->lock);
  fflush(out);
}

void load_discovery_free(LoadDiscovery *d)
{
  if (d == NULL)
    return;
  if (d->zh != NULL)
    zookeeper_close(d->zh);
  for (guint i = 0; i < d->n_servers; i++)
    g_free(d->servers[i].name);
  for (gint s = 0; s < 2; s++)
    g_array_unref(d->members[s]);
  g_clear_pointer(&d->endpoint_re, g_regex_unref);
  g_clear_pointer(&d->service_re, g_regex_unref);
  g_mutex_clear(&d->lock);
  g_cond_clear(&d->changed);
  g_free(d->hosts);
  g_free(d->prefix);
  g_free(d->endpoint);
  g_free(d);
}

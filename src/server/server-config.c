/* kestreld's configuration file (SPEC 8): the [server] group with Kestrel's key names, plus
 * [default], [queue NAME] and [alias NAME] handed to KqConfigSet. Every key and value is
 * checked before the server starts; an error names the file, the group, the key and what
 * was expected. */
#include <stddef.h>
#include <string.h>

#include <kestrel/error.h>

#include "log.h"
#include "server-config.h"

KqServerConfig *
kq_server_config_new_defaults(void)
{
  KqServerConfig *c = g_new0(KqServerConfig, 1);

  c->config_file = NULL;                            /* built-in defaults, no file */
  c->config_format = KQ_CONFIG_FORMAT_AUTO;         /* decided when a file is read */
  c->key_file = NULL;                               /* no file */
  c->listen_address = g_strdup("0.0.0.0");          /* every interface */
  c->memcache_port = 22133;                         /* Kestrel's memcache port */
  c->text_port = 2222;                              /* Kestrel's text port */
  c->thrift_port = 2229;                            /* Kestrel's Thrift port */
  c->admin_port = 2223;                             /* Kestrel's admin.httpPort */
  c->admin_listen_address = g_strdup("127.0.0.1");  /* admin (shutdown!) stays local */
  c->queue_path = g_strdup("/var/spool/kestrel");   /* where production.scale keeps journals */
  c->client_timeout_ms = KQ_UNSET;                  /* idle clients are never dropped */
  c->expiration_timer_ms = KQ_UNSET;                /* no background expiry sweep */
  c->max_open_transactions = 1;                     /* one open read per connection and queue */
  c->connection_backlog = 1024;                     /* listen(2) backlog */
  c->status_file = NULL;                            /* in the queue folder */
  c->default_status = g_strdup("UP");               /* status without a readable status file */
  c->status_grace_period_ms = 0;                    /* stricter status applies at once */
  c->enable_session_trace = FALSE;                  /* no per-connection log lines */
  c->memcache_strict = FALSE;                       /* Kestrel's memcache replies, byte for byte */
  c->connection_limit_refuse_writes = KQ_UNSET;     /* writes never refused for load */
  c->connection_limit_refuse_reads = KQ_UNSET;      /* reads never refused for load */
  c->thrift_max_frame_size = 16 * 1024 * 1024;      /* largest Thrift frame accepted */
  c->worker_threads = 0;                            /* one per core, at most 4 */
  c->log_file = NULL;                               /* log to stderr */
  c->log_level = g_strdup("info");                  /* Kestrel's Level.INFO */
  c->log_roll = g_strdup("never");                  /* Kestrel's Policy.Never */
  c->queues = kq_config_set_new();                  /* no [default]/[queue]/[alias] groups */
  return c;
}

void
kq_server_config_free(KqServerConfig *config)
{
  if (config == NULL)
    return;
  g_free(config->config_file);
  g_clear_pointer(&config->key_file, g_key_file_unref);
  g_free(config->listen_address);
  g_free(config->admin_listen_address);
  g_free(config->queue_path);
  g_free(config->status_file);
  g_free(config->default_status);
  g_free(config->log_file);
  g_free(config->log_level);
  g_free(config->log_roll);
  kq_config_set_free(config->queues);
  kq_zookeeper_config_free(config->zookeeper);
  g_free(config);
}

void
kq_zookeeper_config_free(KqZooKeeperConfig *zk)
{
  if (zk == NULL)
    return;
  g_free(zk->host);
  g_free(zk->path_prefix);
  g_free(zk->credentials);
  g_free(zk->advertise_address);
  g_free(zk);
}

static gboolean
expected(GError **error, const gchar *what, const gchar *text)
{
  g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG, "expected %s, got '%s'", what, text);
  return FALSE;
}

gboolean
kq_server_config_parse_port(const gchar *text, gint *port_out, GError **error)
{
  static const gchar what[] = "a port number 0..65535 (0 or 'none' disables)";
  gint64 port;

  if (!kq_parse_count(text, TRUE, &port, NULL) || port > 65535)
    return expected(error, what, text != NULL ? text : "");
  *port_out = port == KQ_UNSET ? 0 : (gint) port;
  return TRUE;
}

/* ---- the [server] keys ------------------------------------------------------------------ */

typedef enum {
  KEY_ADDRESS,        /* gchar*, non-empty */
  KEY_PATH,           /* gchar*, non-empty */
  KEY_PATH_OR_NONE,   /* gchar*, "none" -> NULL */
  KEY_STATUS_FILE,    /* gchar*, "none" -> NULL and status_file_none */
  KEY_PORT,           /* gint 0..65535 */
  KEY_INT,            /* gint, at least 1 */
  KEY_DURATION,       /* gint64 ms, "none" -> -1 */
  KEY_PERIOD,         /* gint64 ms, > 0 or "none" -> -1 */
  KEY_GRACE,          /* gint64 ms, "none" -> 0 */
  KEY_COUNT_OR_NONE,  /* gint64, "none" -> -1 */
  KEY_BOOL,           /* gboolean */
  KEY_FRAME_SIZE,     /* gint64 bytes, 1 .. 2^31-1 */
  KEY_MICROSECONDS,   /* gint64, 0 .. 1000000 */
  KEY_THREADS,        /* gint, "auto" -> 0, or 1 .. 64 */
  KEY_STATUS,         /* gchar*, UP / READONLY / QUIESCENT, stored upper-case */
  KEY_LOG_LEVEL,      /* gchar*, stored lower-case */
  KEY_LOG_ROLL,       /* gchar*, stored lower-case */
} KeyKind;

typedef struct {
  const gchar *name;
  KeyKind kind;
  gsize offset;
} ServerKey;

#define FIELD(f) offsetof(KqServerConfig, f)

/* SPEC 8 order. */
static const ServerKey server_keys[] = {
  { "listenAddress", KEY_ADDRESS, FIELD(listen_address) },
  { "memcacheListenPort", KEY_PORT, FIELD(memcache_port) },
  { "memcacheStrict", KEY_BOOL, FIELD(memcache_strict) },
  { "textListenPort", KEY_PORT, FIELD(text_port) },
  { "thriftListenPort", KEY_PORT, FIELD(thrift_port) },
  { "adminHttpPort", KEY_PORT, FIELD(admin_port) },
  { "queuePath", KEY_PATH, FIELD(queue_path) },
  { "clientTimeout", KEY_DURATION, FIELD(client_timeout_ms) },
  { "expirationTimerFrequency", KEY_PERIOD, FIELD(expiration_timer_ms) },
  { "maxOpenTransactions", KEY_INT, FIELD(max_open_transactions) },
  { "connectionBacklog", KEY_INT, FIELD(connection_backlog) },
  { "statusFile", KEY_STATUS_FILE, FIELD(status_file) },
  { "defaultStatus", KEY_STATUS, FIELD(default_status) },
  { "statusChangeGracePeriod", KEY_GRACE, FIELD(status_grace_period_ms) },
  { "enableSessionTrace", KEY_BOOL, FIELD(enable_session_trace) },
  { "connectionLimitRefuseWrites", KEY_COUNT_OR_NONE, FIELD(connection_limit_refuse_writes) },
  { "connectionLimitRefuseReads", KEY_COUNT_OR_NONE, FIELD(connection_limit_refuse_reads) },
  { "adminListenAddress", KEY_ADDRESS, FIELD(admin_listen_address) },
  { "thriftMaxFrameSize", KEY_FRAME_SIZE, FIELD(thrift_max_frame_size) },
  { "busyPollMicros", KEY_MICROSECONDS, FIELD(busy_poll_us) },
  { "workerThreads", KEY_THREADS, FIELD(worker_threads) },
  { "logFile", KEY_PATH_OR_NONE, FIELD(log_file) },
  { "logLevel", KEY_LOG_LEVEL, FIELD(log_level) },
  { "logRoll", KEY_LOG_ROLL, FIELD(log_roll) },
};

static void
replace_string(gpointer field, gchar *value)
{
  gchar **slot = field;
  g_free(*slot);
  *slot = value;
}

/* Parse `text` for `key` into its field of `config`; the error says what was expected. */
static gboolean
parse_server_value(KqServerConfig *config, const ServerKey *key, const gchar *text,
                   GError **error)
{
  gpointer field = (guint8 *) config + key->offset;
  gint64 number;
  gboolean flag;
  GLogLevelFlags level;
  KqLogRoll roll;

  switch (key->kind) {
  case KEY_ADDRESS:
    if (*text == '\0' || strpbrk(text, " \t") != NULL)
      return expected(error, "an IP address or host name such as 0.0.0.0", text);
    replace_string(field, g_strdup(text));
    return TRUE;
  case KEY_PATH:
    if (*text == '\0')
      return expected(error, "a directory path", text);
    replace_string(field, g_strdup(text));
    return TRUE;
  case KEY_PATH_OR_NONE:
    if (*text == '\0')
      return expected(error, "a file path or 'none'", text);
    replace_string(field, g_ascii_strcasecmp(text, "none") == 0 ? NULL : g_strdup(text));
    return TRUE;
  case KEY_STATUS_FILE:
    if (*text == '\0')
      return expected(error, "a file path or 'none'", text);
    config->status_file_none = g_ascii_strcasecmp(text, "none") == 0;
    replace_string(field, config->status_file_none ? NULL : g_strdup(text));
    return TRUE;
  case KEY_PORT:
    return kq_server_config_parse_port(text, field, error);
  case KEY_INT:
    if (!kq_parse_count(text, FALSE, &number, NULL) || number < 1 || number > G_MAXINT)
      return expected(error, "a whole number of at least 1", text);
    *(gint *) field = (gint) number;
    return TRUE;
  case KEY_DURATION:
  case KEY_PERIOD:
  case KEY_GRACE:
    if (!kq_parse_duration(text, &number, error))
      return FALSE;
    if (key->kind == KEY_PERIOD && number == 0)
      return expected(error, "a period above zero such as 1s or 1.second, or 'none'", text);
    if (key->kind == KEY_GRACE && number == KQ_UNSET)
      number = 0;
    *(gint64 *) field = number;
    return TRUE;
  case KEY_COUNT_OR_NONE:
    if (!kq_parse_count(text, TRUE, &number, error))
      return FALSE;
    *(gint64 *) field = number;
    return TRUE;
  case KEY_BOOL:
    if (!kq_parse_bool(text, &flag, error))
      return FALSE;
    *(gboolean *) field = flag;
    return TRUE;
  case KEY_FRAME_SIZE:
    if (!kq_parse_size(text, &number, NULL) || number < 1 || number > G_MAXINT32)
      return expected(error, "a size from 1B to 2147483647B such as 16MB", text);
    *(gint64 *) field = number;
    return TRUE;
  case KEY_MICROSECONDS:
    if (!kq_parse_count(text, FALSE, &number, NULL) || number < 0 || number > 1000000)
      return expected(error, "microseconds from 0 to 1000000", text);
    *(gint64 *) field = number;
    return TRUE;
  case KEY_THREADS:
    return kq_server_config_parse_worker_threads(text, field, error);
  case KEY_STATUS:
    if (g_ascii_strcasecmp(text, "UP") != 0 && g_ascii_strcasecmp(text, "READONLY") != 0 &&
        g_ascii_strcasecmp(text, "QUIESCENT") != 0)
      return expected(error, "UP, READONLY or QUIESCENT", text);
    replace_string(field, g_ascii_strup(text, -1));
    return TRUE;
  case KEY_LOG_LEVEL:
    if (!kq_log_level_from_string(text, &level))
      return expected(error, "error, critical, warning, message, info or debug", text);
    replace_string(field, g_ascii_strdown(text, -1));
    return TRUE;
  case KEY_LOG_ROLL:
    if (!kq_log_roll_from_string(text, &roll))
      return expected(error, "never, hourly, daily or sighup", text);
    replace_string(field, g_ascii_strdown(text, -1));
    return TRUE;
  }
  g_assert_not_reached();
}

gboolean
kq_server_config_parse_worker_threads(const gchar *text, gint *threads_out, GError **error)
{
  gint64 number;

  if (g_ascii_strcasecmp(text, "auto") == 0) {
    *threads_out = 0;
    return TRUE;
  }
  if (!kq_parse_count(text, FALSE, &number, NULL) || number < 1 || number > 64)
    return expected(error, "a number of threads from 1 to 64, or 'auto'", text);
  *threads_out = (gint) number;
  return TRUE;
}

static const ServerKey *
find_server_key(const gchar *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS(server_keys); i++)
    if (strcmp(server_keys[i].name, name) == 0)
      return &server_keys[i];
  return NULL;
}

static gchar *
accepted_server_keys(void)
{
  GString *names = g_string_new(NULL);

  for (gsize i = 0; i < G_N_ELEMENTS(server_keys); i++)
    g_string_append_printf(names, "%s%s", i > 0 ? ", " : "", server_keys[i].name);
  return g_string_free(names, FALSE);
}

static gboolean
load_server_group(KqServerConfig *config, GKeyFile *key_file, const gchar *label,
                  GError **error)
{
  g_auto(GStrv) keys = g_key_file_get_keys(key_file, "server", NULL, NULL);

  for (gsize i = 0; keys != NULL && keys[i] != NULL; i++) {
    const ServerKey *key = find_server_key(keys[i]);
    g_autoptr(GError) local = NULL;
    g_autofree gchar *value = NULL;

    if (key == NULL) {
      g_autofree gchar *names = accepted_server_keys();
      g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG,
                  "%s: [server] %s: unknown key (accepted: %s)", label, keys[i], names);
      return FALSE;
    }
    value = kq_config_read_value(key_file, "server", keys[i], &local);
    if (value == NULL || !parse_server_value(config, key, value, &local)) {
      g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG, "%s: [server] %s: %s", label, keys[i],
                  local->message);
      return FALSE;
    }
  }
  return TRUE;
}

/* ---- the [zookeeper] keys --------------------------------------------------------------- */

KqZooKeeperConfig *
kq_zookeeper_config_new_defaults(void)
{
  KqZooKeeperConfig *zk = g_new0(KqZooKeeperConfig, 1);

  zk->host = NULL;                         /* required */
  zk->port = 2181;                         /* ZooKeeper's client port */
  zk->path_prefix = g_strdup("/kestrel");  /* <prefix>/read and <prefix>/write */
  zk->session_timeout_ms = 10000;          /* Kestrel's ZooKeeperBuilder default */
  zk->acl_creator = FALSE;                 /* Kestrel's OpenUnsafeACL */
  zk->shard = -1;                          /* no shard */
  return zk;
}

static gboolean
parse_zookeeper_value(KqZooKeeperConfig *zk, const gchar *key, const gchar *text,
                      GError **error)
{
  gint64 number;

  if (strcmp(key, "host") == 0 || strcmp(key, "advertiseAddress") == 0) {
    if (*text == '\0' || strpbrk(text, " \t,/") != NULL)
      return expected(error, "an IP address or host name", text);
    replace_string(strcmp(key, "host") == 0 ? &zk->host : &zk->advertise_address,
                   g_strdup(text));
  } else if (strcmp(key, "port") == 0) {
    if (!kq_parse_count(text, FALSE, &number, NULL) || number < 1 || number > 65535)
      return expected(error, "a port number 1..65535", text);
    zk->port = (gint) number;
  } else if (strcmp(key, "pathPrefix") == 0) {
    if (text[0] != '/' || text[1] == '\0' || g_str_has_suffix(text, "/") ||
        strstr(text, "//") != NULL)
      return expected(error, "a ZooKeeper path such as /kestrel/production", text);
    replace_string(&zk->path_prefix, g_strdup(text));
  } else if (strcmp(key, "sessionTimeout") == 0) {
    if (!kq_parse_duration(text, &number, error))
      return FALSE;
    if (number <= 0 || number > G_MAXINT)
      return expected(error, "a duration above zero such as 10s", text);
    zk->session_timeout_ms = number;
  } else if (strcmp(key, "credentials") == 0) {
    if (strchr(text, ':') == NULL || text[0] == ':')
      return expected(error, "user:password", text);
    replace_string(&zk->credentials, g_strdup(text));
  } else if (strcmp(key, "acl") == 0) {
    if (g_ascii_strcasecmp(text, "open") == 0 || strcmp(text, "OpenUnsafeACL") == 0)
      zk->acl_creator = FALSE;
    else if (g_ascii_strcasecmp(text, "creator") == 0 ||
             strcmp(text, "EveryoneReadCreatorAllACL") == 0)
      zk->acl_creator = TRUE;
    else
      return expected(error, "open or creator", text);
  } else if (strcmp(key, "shard") == 0) {
    if (!kq_parse_count(text, FALSE, &number, NULL) || number < 0 || number > G_MAXINT32)
      return expected(error, "a shard number of 0 or more", text);
    zk->shard = (gint) number;
  } else {
    g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG,
                "unknown key (accepted: host, port, pathPrefix, sessionTimeout, credentials, "
                "acl, advertiseAddress, shard)");
    return FALSE;
  }
  return TRUE;
}

static gboolean
load_zookeeper_group(KqServerConfig *config, GKeyFile *key_file, const gchar *label,
                     GError **error)
{
  g_auto(GStrv) keys = g_key_file_get_keys(key_file, "zookeeper", NULL, NULL);
  KqZooKeeperConfig *zk = kq_zookeeper_config_new_defaults();

  kq_zookeeper_config_free(config->zookeeper);
  config->zookeeper = zk;
  for (gsize i = 0; keys != NULL && keys[i] != NULL; i++) {
    g_autoptr(GError) local = NULL;
    g_autofree gchar *value = kq_config_read_value(key_file, "zookeeper", keys[i], &local);

    if (value == NULL || !parse_zookeeper_value(zk, keys[i], value, &local)) {
      g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG, "%s: [zookeeper] %s: %s", label,
                  keys[i], local->message);
      return FALSE;
    }
  }
  if (zk->host == NULL) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG, "%s: [zookeeper] host: missing", label);
    return FALSE;
  }
  if (zk->acl_creator && zk->credentials == NULL) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG,
                "%s: [zookeeper] acl: creator needs credentials (user:password)", label);
    return FALSE;
  }
  return TRUE;
}

static gboolean
is_queue_group(const gchar *group)
{
  return strcmp(group, "default") == 0 || strcmp(group, "queue") == 0 ||
         strcmp(group, "alias") == 0 || g_str_has_prefix(group, "queue ") ||
         g_str_has_prefix(group, "alias ");
}

KqServerConfig *
kq_server_config_load_as(const gchar *path, KqConfigFormat format, GPtrArray *warnings,
                         GError **error)
{
  g_autoptr(KqServerConfig) config = kq_server_config_new_defaults();
  g_autoptr(GKeyFile) key_file = NULL;
  g_auto(GStrv) groups = NULL;

  key_file = kq_config_file_read(path, format, &config->config_format, warnings, error);
  if (key_file == NULL)
    return NULL;
  config->config_file = g_strdup(path);

  groups = g_key_file_get_groups(key_file, NULL);
  for (gsize i = 0; groups[i] != NULL; i++) {
    if (strcmp(groups[i], "server") == 0 || strcmp(groups[i], "zookeeper") == 0 ||
        is_queue_group(groups[i]))
      continue;
    g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG,
                "%s: [%s]: unknown group (accepted: [server], [zookeeper], [default], "
                "[queue NAME], [alias NAME])", path, groups[i]);
    return NULL;
  }
  if (!load_server_group(config, key_file, path, error))
    return NULL;
  if (g_key_file_has_group(key_file, "zookeeper") &&
      !load_zookeeper_group(config, key_file, path, error))
    return NULL;
  if (!kq_config_set_load_key_file(config->queues, key_file, path, error))
    return NULL;
  config->key_file = g_steal_pointer(&key_file);
  return g_steal_pointer(&config);
}

KqServerConfig *
kq_server_config_load(const gchar *path, GError **error)
{
  return kq_server_config_load_as(path, KQ_CONFIG_FORMAT_AUTO, NULL, error);
}

gboolean
kq_server_config_check_value(const gchar *key, const gchar *value, GError **error)
{
  g_autoptr(KqServerConfig) scratch = kq_server_config_new_defaults();
  const ServerKey *server_key = find_server_key(key);

  if (server_key == NULL) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG, "unknown [server] key");
    return FALSE;
  }
  return parse_server_value(scratch, server_key, value, error);
}

/* A [server] field as the key file accepts it back; NULL for a statusFile left to its default
 * (a file in the queue folder), which has no value of its own to print. */
static gchar *
format_server_value(const KqServerConfig *config, const ServerKey *key)
{
  gconstpointer field = (const guint8 *) config + key->offset;
  gint64 number;

  switch (key->kind) {
  case KEY_ADDRESS:
  case KEY_PATH:
  case KEY_STATUS:
  case KEY_LOG_LEVEL:
  case KEY_LOG_ROLL:
  case KEY_PATH_OR_NONE: {
    const gchar *text = *(gchar *const *) field;
    return g_strdup(text != NULL ? text : "none");
  }
  case KEY_PORT:
  case KEY_INT:
    return g_strdup_printf("%d", *(const gint *) field);
  case KEY_DURATION:
  case KEY_PERIOD:
  case KEY_GRACE:
    number = *(const gint64 *) field;
    return number < 0 ? g_strdup("none") : g_strdup_printf("%" G_GINT64_FORMAT "ms", number);
  case KEY_COUNT_OR_NONE:
    number = *(const gint64 *) field;
    return number < 0 ? g_strdup("none") : g_strdup_printf("%" G_GINT64_FORMAT, number);
  case KEY_FRAME_SIZE:
  case KEY_MICROSECONDS:
    return g_strdup_printf("%" G_GINT64_FORMAT, *(const gint64 *) field);
  case KEY_BOOL:
    return g_strdup(*(const gboolean *) field ? "true" : "false");
  case KEY_STATUS_FILE: {
    const gchar *text = *(gchar *const *) field;
    if (text == NULL)
      return config->status_file_none ? g_strdup("none") : NULL;
    return g_strdup(text);
  }
  case KEY_THREADS:
    return *(const gint *) field == 0 ? g_strdup("auto")
                                      : g_strdup_printf("%d", *(const gint *) field);
  }
  g_assert_not_reached();
}

gchar *
kq_server_config_to_key_file_text(const KqServerConfig *config)
{
  g_autoptr(GKeyFile) out = g_key_file_new();
  g_autoptr(GString) text = g_string_new(NULL);
  g_autofree gchar *data = NULL;

  if (config->key_file != NULL) {
    g_autofree gchar *source = g_key_file_to_data(config->key_file, NULL, NULL);
    g_key_file_load_from_data(out, source, (gsize) -1, G_KEY_FILE_KEEP_COMMENTS, NULL);
  }
  for (gsize i = 0; i < G_N_ELEMENTS(server_keys); i++) {
    const ServerKey *key = &server_keys[i];
    g_autofree gchar *value = format_server_value(config, key);
    g_autofree gchar *file_value = kq_config_read_value(out, "server", key->name, NULL);

    if (file_value != NULL) {
      /* The file's own words stay unless the command line changed the value. */
      g_autoptr(KqServerConfig) scratch = kq_server_config_new_defaults();
      g_autofree gchar *from_file = NULL;
      g_autofree gchar *comment = NULL;
      g_autofree gchar *note = NULL;

      if (parse_server_value(scratch, key, file_value, NULL))
        from_file = format_server_value(scratch, key);
      if (g_strcmp0(from_file, value) == 0 || value == NULL)
        continue;
      comment = g_key_file_get_comment(out, "server", key->name, NULL);
      note = g_strdup_printf("%s overridden on the command line (the file says %s)",
                             comment != NULL ? g_strchomp(comment) : "", file_value);
      g_key_file_set_value(out, "server", key->name, value);
      g_key_file_set_comment(out, "server", key->name, note, NULL);
      continue;
    }
    if (value == NULL)
      continue;
    g_key_file_set_value(out, "server", key->name, value);
    g_key_file_set_comment(out, "server", key->name, " built-in default or command line",
                           NULL);
  }
  g_string_append_printf(text, "# kestreld configuration resolved from %s\n"
                         "# Load it with: kestreld -f FILE\n",
                         config->config_file != NULL ? config->config_file
                                                     : "the built-in defaults");
  data = g_key_file_to_data(out, NULL, NULL);
  g_string_append(text, data);
  if (text->len > 0 && text->str[text->len - 1] != '\n')
    g_string_append_c(text, '\n');
  return g_string_free(g_steal_pointer(&text), FALSE);
}

/* The whole file is checked again, so a reload with a broken [server] group fails loudly
 * instead of half-applying; only the queue part is kept. */
KqConfigSet *
kq_server_config_load_queues_as(const gchar *path, KqConfigFormat format, GError **error)
{
  g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(KqServerConfig) config = kq_server_config_load_as(path, format, warnings, error);
  KqConfigSet *queues;

  if (config == NULL)
    return NULL;
  for (guint i = 0; i < warnings->len; i++)
    g_warning("%s", (const gchar *) g_ptr_array_index(warnings, i));
  queues = g_steal_pointer(&config->queues);
  return queues;
}

KqConfigSet *
kq_server_config_load_queues(const gchar *path, GError **error)
{
  return kq_server_config_load_queues_as(path, KQ_CONFIG_FORMAT_AUTO, error);
}

static void
make_absolute(gchar **path)
{
  if (*path != NULL && !g_path_is_absolute(*path)) {
    gchar *absolute = g_canonicalize_filename(*path, NULL);
    g_free(*path);
    *path = absolute;
  }
}

void
kq_server_config_make_paths_absolute(KqServerConfig *config)
{
  make_absolute(&config->queue_path);
  if (config->status_file == NULL && !config->status_file_none)
    config->status_file = g_build_filename(config->queue_path, KQ_DEFAULT_STATUS_FILE, NULL);
  make_absolute(&config->status_file);
  make_absolute(&config->log_file);
}

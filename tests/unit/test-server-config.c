/* kestreld's config file (SPEC 8): [server] defaults and keys, errors naming file/group/key,
 * the shipped config/development.conf and config/production.conf. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <kestrel/collection.h>
#include <kestrel/error.h>

#include "server-config.h"

#define MB (G_GINT64_CONSTANT(1) << 20)
#define GB (G_GINT64_CONSTANT(1) << 30)

static gchar *scratch_dir;

/* Write `text` to a fresh file in the scratch folder and return its path. */
static gchar *
write_conf(const gchar *text)
{
  static guint serial;
  gchar *path = g_strdup_printf("%s/test-%u.conf", scratch_dir, ++serial);

  g_assert_true(g_file_set_contents(path, text, -1, NULL));
  return path;
}

static gchar *
source_path(const gchar *relative)
{
  const gchar *top = g_getenv("top_srcdir");
#ifdef KQ_TOP_SRCDIR
  if (top == NULL)
    top = KQ_TOP_SRCDIR;
#endif
  if (top == NULL)
    top = ".";
  return g_build_filename(top, relative, NULL);
}

static void
test_defaults(void)
{
  g_autoptr(KqServerConfig) c = kq_server_config_new_defaults();
  KqQueueSettings s;

  g_assert_null(c->config_file);
  g_assert_cmpstr(c->listen_address, ==, "0.0.0.0");
  g_assert_cmpint(c->memcache_port, ==, 22133);
  g_assert_cmpint(c->text_port, ==, 2222);
  g_assert_cmpint(c->thrift_port, ==, 2229);
  g_assert_cmpint(c->admin_port, ==, 2223);
  g_assert_cmpstr(c->admin_listen_address, ==, "127.0.0.1");
  g_assert_cmpstr(c->queue_path, ==, "/var/spool/kestrel");
  g_assert_cmpint(c->client_timeout_ms, ==, KQ_UNSET);
  g_assert_cmpint(c->expiration_timer_ms, ==, KQ_UNSET);
  g_assert_cmpint(c->max_open_transactions, ==, 1);
  g_assert_cmpint(c->connection_backlog, ==, 1024);
  g_assert_null(c->status_file);
  g_assert_cmpstr(c->default_status, ==, "UP");
  g_assert_cmpint(c->status_grace_period_ms, ==, 0);
  g_assert_false(c->enable_session_trace);
  g_assert_false(c->memcache_strict);
  g_assert_cmpint(c->connection_limit_refuse_writes, ==, KQ_UNSET);
  g_assert_cmpint(c->connection_limit_refuse_reads, ==, KQ_UNSET);
  g_assert_cmpint(c->thrift_max_frame_size, ==, 16 * MB);
  g_assert_cmpint(c->busy_poll_us, ==, 0);
  g_assert_null(c->log_file);
  g_assert_cmpstr(c->log_level, ==, "info");
  g_assert_cmpstr(c->log_roll, ==, "never");
  g_assert_nonnull(c->queues);
  kq_config_set_resolve(c->queues, "anything", &s);
  g_assert_cmpint(s.max_memory_size, ==, 128 * MB);
  kq_settings_clear(&s);
}

static void
test_every_key(void)
{
  g_autofree gchar *path = write_conf(
    "# every [server] key\n"
    "[server]\n"
    "listenAddress = 127.0.0.1\n"
    "memcacheListenPort = 1\n"
    "textListenPort = 0\n"
    "thriftListenPort = none\n"
    "adminHttpPort = 65535\n"
    "queuePath = \"/srv/queues\"\n"
    "clientTimeout = 30.seconds\n"
    "expirationTimerFrequency = 1.second\n"
    "maxOpenTransactions = 100\n"
    "connectionBacklog = 50\n"
    "statusFile = /tmp/kestrel-status\n"
    "defaultStatus = readonly\n"
    "statusChangeGracePeriod = 5s\n"
    "enableSessionTrace = true\n"
    "memcacheStrict = yes\n"
    "connectionLimitRefuseWrites = 1000\n"
    "connectionLimitRefuseReads = 2000\n"
    "adminListenAddress = ::1\n"
    "thriftMaxFrameSize = 1MB\n"
    "busyPollMicros = 50\n"
    "logFile = /tmp/kestrel.log\n"
    "logLevel = DEBUG\n"
    "logRoll = Daily\n"
    "[default]\n"
    "maxItems = 10\n");
  g_autoptr(GError) error = NULL;
  g_autoptr(KqServerConfig) c = kq_server_config_load(path, &error);
  KqQueueSettings s;

  g_assert_no_error(error);
  g_assert_cmpstr(c->config_file, ==, path);
  g_assert_cmpstr(c->listen_address, ==, "127.0.0.1");
  g_assert_cmpint(c->memcache_port, ==, 1);
  g_assert_cmpint(c->text_port, ==, 0);
  g_assert_cmpint(c->thrift_port, ==, 0);
  g_assert_cmpint(c->admin_port, ==, 65535);
  g_assert_cmpstr(c->queue_path, ==, "/srv/queues");
  g_assert_cmpint(c->client_timeout_ms, ==, 30000);
  g_assert_cmpint(c->expiration_timer_ms, ==, 1000);
  g_assert_cmpint(c->max_open_transactions, ==, 100);
  g_assert_cmpint(c->connection_backlog, ==, 50);
  g_assert_cmpstr(c->status_file, ==, "/tmp/kestrel-status");
  g_assert_cmpstr(c->default_status, ==, "READONLY");
  g_assert_cmpint(c->status_grace_period_ms, ==, 5000);
  g_assert_true(c->enable_session_trace);
  g_assert_true(c->memcache_strict);
  g_assert_cmpint(c->connection_limit_refuse_writes, ==, 1000);
  g_assert_cmpint(c->connection_limit_refuse_reads, ==, 2000);
  g_assert_cmpstr(c->admin_listen_address, ==, "::1");
  g_assert_cmpint(c->thrift_max_frame_size, ==, MB);
  g_assert_cmpint(c->busy_poll_us, ==, 50);
  g_assert_cmpstr(c->log_file, ==, "/tmp/kestrel.log");
  g_assert_cmpstr(c->log_level, ==, "debug");
  g_assert_cmpstr(c->log_roll, ==, "daily");
  kq_config_set_resolve(c->queues, "q", &s);
  g_assert_cmpint(s.max_items, ==, 10);
  kq_settings_clear(&s);
  g_unlink(path);
}

static void
test_none_values(void)
{
  g_autofree gchar *path = write_conf("[server]\n"
                                      "clientTimeout = none\n"
                                      "expirationTimerFrequency = none\n"
                                      "statusFile = none\n"
                                      "logFile = none\n"
                                      "statusChangeGracePeriod = none\n"
                                      "connectionLimitRefuseReads = none\n"
                                      "defaultStatus = Quiescent\n");
  g_autoptr(GError) error = NULL;
  g_autoptr(KqServerConfig) c = kq_server_config_load(path, &error);

  g_assert_no_error(error);
  g_assert_cmpint(c->client_timeout_ms, ==, KQ_UNSET);
  g_assert_cmpint(c->expiration_timer_ms, ==, KQ_UNSET);
  g_assert_null(c->status_file);
  g_assert_true(c->status_file_none);
  g_assert_null(c->log_file);
  g_assert_cmpint(c->status_grace_period_ms, ==, 0);
  g_assert_cmpint(c->connection_limit_refuse_reads, ==, KQ_UNSET);
  g_assert_cmpstr(c->default_status, ==, "QUIESCENT");
  g_unlink(path);
}

typedef struct {
  const gchar *text;
  const gchar *after_path; /* the message is "<path>: " followed by this prefix */
  const gchar *also;       /* and contains this (or NULL) */
} BadFile;

static void
test_zookeeper(void)
{
  g_autofree gchar *none_path = write_conf("[server]\nmemcacheListenPort = 1\n");
  g_autofree gchar *defaults_path = write_conf("[zookeeper]\nhost = zk.example.com\n");
  g_autofree gchar *full_path = write_conf(
    "[zookeeper]\nhost = 10.0.0.5\nport = 2182\npathPrefix = /kestrel/prod\n"
    "sessionTimeout = 4s\ncredentials = kestrel:secret\nacl = creator\n"
    "advertiseAddress = 192.0.2.7\nshard = 3\n");
  g_autoptr(GError) error = NULL;
  g_autoptr(KqServerConfig) none = kq_server_config_load(none_path, &error);
  g_autoptr(KqServerConfig) defaults = kq_server_config_load(defaults_path, &error);
  g_autoptr(KqServerConfig) full = kq_server_config_load(full_path, &error);

  g_assert_no_error(error);
  g_assert_null(none->zookeeper); /* no group, no server sets */
  g_assert_cmpstr(defaults->zookeeper->host, ==, "zk.example.com");
  g_assert_cmpint(defaults->zookeeper->port, ==, 2181);
  g_assert_cmpstr(defaults->zookeeper->path_prefix, ==, "/kestrel");
  g_assert_cmpint(defaults->zookeeper->session_timeout_ms, ==, 10000);
  g_assert_null(defaults->zookeeper->credentials);
  g_assert_false(defaults->zookeeper->acl_creator);
  g_assert_null(defaults->zookeeper->advertise_address);
  g_assert_cmpint(defaults->zookeeper->shard, ==, -1);
  g_assert_cmpstr(full->zookeeper->host, ==, "10.0.0.5");
  g_assert_cmpint(full->zookeeper->port, ==, 2182);
  g_assert_cmpstr(full->zookeeper->path_prefix, ==, "/kestrel/prod");
  g_assert_cmpint(full->zookeeper->session_timeout_ms, ==, 4000);
  g_assert_cmpstr(full->zookeeper->credentials, ==, "kestrel:secret");
  g_assert_true(full->zookeeper->acl_creator);
  g_assert_cmpstr(full->zookeeper->advertise_address, ==, "192.0.2.7");
  g_assert_cmpint(full->zookeeper->shard, ==, 3);
  g_unlink(none_path);
  g_unlink(defaults_path);
  g_unlink(full_path);
}

static void
test_errors(void)
{
  static const BadFile bad[] = {
    { "[server]\nlistenPort = 1\n", "[server] listenPort: unknown key",
      "accepted: listenAddress, memcacheListenPort" },
    { "[server]\nmemcacheListenPort = 70000\n",
      "[server] memcacheListenPort: expected a port number 0..65535", "got '70000'" },
    { "[server]\ntextListenPort = -1\n", "[server] textListenPort: expected a port", NULL },
    { "[server]\nthriftListenPort = abc\n", "[server] thriftListenPort: expected a port",
      "got 'abc'" },
    { "[server]\nadminHttpPort = 99999999999999999999\n", "[server] adminHttpPort: expected",
      NULL },
    { "[server]\nlistenAddress =\n", "[server] listenAddress: expected an IP address", NULL },
    { "[server]\nqueuePath =\n", "[server] queuePath: expected a directory path", NULL },
    { "[server]\nclientTimeout = soon\n", "[server] clientTimeout: expected a duration",
      "got 'soon'" },
    { "[server]\nexpirationTimerFrequency = 0\n",
      "[server] expirationTimerFrequency: expected a period above zero", NULL },
    { "[server]\nmaxOpenTransactions = 0\n",
      "[server] maxOpenTransactions: expected a whole number of at least 1, got '0'", NULL },
    { "[server]\nconnectionBacklog = 3000000000\n", "[server] connectionBacklog: expected",
      NULL },
    { "[server]\ndefaultStatus = DOWN\n",
      "[server] defaultStatus: expected UP, READONLY or QUIESCENT, got 'DOWN'", NULL },
    { "[server]\nenableSessionTrace = sometimes\n",
      "[server] enableSessionTrace: expected true or false", NULL },
    { "[server]\nconnectionLimitRefuseWrites = many\n",
      "[server] connectionLimitRefuseWrites: expected a whole number or 'none'", NULL },
    { "[server]\nthriftMaxFrameSize = 0\n", "[server] thriftMaxFrameSize: expected a size",
      NULL },
    { "[server]\nthriftMaxFrameSize = 4GB\n", "[server] thriftMaxFrameSize: expected a size",
      NULL },
    { "[server]\nbusyPollMicros = 1000001\n",
      "[server] busyPollMicros: expected microseconds from 0 to 1000000, got '1000001'", NULL },
    { "[server]\nbusyPollMicros = 50us\n",
      "[server] busyPollMicros: expected microseconds from 0 to 1000000, got '50us'", NULL },
    { "[server]\nlogLevel = verbose\n",
      "[server] logLevel: expected error, critical, warning, message, info or debug, "
      "got 'verbose'", NULL },
    { "[server]\nlogRoll = weekly\n",
      "[server] logRoll: expected never, hourly, daily or sighup, got 'weekly'", NULL },
    { "[server]\nstatusChangeGracePeriod = later\n",
      "[server] statusChangeGracePeriod: expected a duration", NULL },
    { "[servers]\nlistenAddress = 0.0.0.0\n", "[servers]: unknown group",
      "[server], [zookeeper], [default], [queue NAME], [alias NAME]" },
    { "[zookeeper]\nport = 2181\n", "[zookeeper] host: missing", NULL },
    { "[zookeeper]\nhost = zk\nport = 0\n", "[zookeeper] port: expected a port number", NULL },
    { "[zookeeper]\nhost = zk\npathPrefix = kestrel\n", "[zookeeper] pathPrefix: expected",
      NULL },
    { "[zookeeper]\nhost = zk\npathPrefix = /kestrel/\n", "[zookeeper] pathPrefix: expected",
      NULL },
    { "[zookeeper]\nhost = zk\nsessionTimeout = 0\n", "[zookeeper] sessionTimeout: expected",
      NULL },
    { "[zookeeper]\nhost = zk\nacl = closed\n", "[zookeeper] acl: expected open or creator",
      NULL },
    { "[zookeeper]\nhost = zk\nacl = creator\n", "[zookeeper] acl: creator needs credentials",
      NULL },
    { "[zookeeper]\nhost = zk\ncredentials = nopassword\n",
      "[zookeeper] credentials: expected user:password", NULL },
    { "[zookeeper]\nhost = zk\nchroot = /x\n", "[zookeeper] chroot: unknown key", "pathPrefix" },
    { "[default]\nmaxSize = huge\n", "[default] maxSize: expected a size", "got 'huge'" },
    { "[queue a]\nkeepjournal = false\n", "[queue a] keepjournal: unknown queue option",
      "keepJournal" },
    { "[alias a]\ndestinationQueues = b/c\n", "[alias a] destinationQueues: expected", NULL },
  };

  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autofree gchar *path = write_conf(bad[i].text);
    g_autofree gchar *prefix = g_strdup_printf("%s: %s", path, bad[i].after_path);
    g_autoptr(GError) error = NULL;
    g_autoptr(KqServerConfig) c = kq_server_config_load(path, &error);

    g_test_message("file: %s", bad[i].text);
    g_assert_null(c);
    g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG);
    g_test_message("error: %s", error->message);
    g_assert_true(g_str_has_prefix(error->message, prefix));
    if (bad[i].also != NULL)
      g_assert_nonnull(strstr(error->message, bad[i].also));
    g_unlink(path);
  }
}

static void
test_missing_file(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KqServerConfig) c = kq_server_config_load("/nonexistent/kestrel.conf", &error);

  g_assert_null(c);
  g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG);
  g_assert_true(g_str_has_prefix(error->message, "/nonexistent/kestrel.conf: "));
}

static void
test_parse_port(void)
{
  g_autoptr(GError) error = NULL;
  gint port = -1;

  g_assert_true(kq_server_config_parse_port("22133", &port, NULL));
  g_assert_cmpint(port, ==, 22133);
  g_assert_true(kq_server_config_parse_port("0", &port, NULL));
  g_assert_cmpint(port, ==, 0);
  g_assert_true(kq_server_config_parse_port("65535", &port, NULL));
  g_assert_cmpint(port, ==, 65535);
  g_assert_true(kq_server_config_parse_port("none", &port, NULL));
  g_assert_cmpint(port, ==, 0);
  g_assert_false(kq_server_config_parse_port("65536", &port, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG);
  g_clear_error(&error);
  g_assert_false(kq_server_config_parse_port("", &port, NULL));
  g_assert_false(kq_server_config_parse_port("-1", &port, NULL));
  g_assert_false(kq_server_config_parse_port("80x", &port, NULL));
  g_assert_cmpint(port, ==, 0);
}

static void
test_paths_absolute(void)
{
  g_autoptr(KqServerConfig) c = kq_server_config_new_defaults();
  g_autofree gchar *cwd = g_get_current_dir();
  g_autofree gchar *spool = g_build_filename(cwd, "spool", NULL);
  g_autofree gchar *log = g_build_filename(cwd, "logs", "k.log", NULL);

  g_free(c->queue_path);
  c->queue_path = g_strdup("spool");
  c->log_file = g_strdup("logs/k.log");
  kq_server_config_make_paths_absolute(c);
  g_assert_cmpstr(c->queue_path, ==, spool);
  g_assert_cmpstr(c->log_file, ==, log);
  /* no statusFile: a file of the queue folder whose name no queue can have */
  g_autofree gchar *status = g_build_filename(spool, ".kestrel.status", NULL);
  g_assert_cmpstr(c->status_file, ==, status);
  g_assert_false(kq_queue_name_is_valid(".kestrel.status", NULL));

  g_free(c->queue_path);
  c->queue_path = g_strdup("/var/spool/kestrel");
  kq_server_config_make_paths_absolute(c);
  g_assert_cmpstr(c->queue_path, ==, "/var/spool/kestrel");
}

static void
test_load_queues(void)
{
  g_autofree gchar *path = write_conf("[server]\nmemcacheListenPort = 1\n"
                                      "[queue a]\nmaxItems = 3\n"
                                      "[alias b]\ndestinationQueues = a\n");
  g_autofree gchar *broken = write_conf("[server]\nmemcacheListenPort = x\n"
                                        "[queue a]\nmaxItems = 3\n");
  g_autoptr(GError) error = NULL;
  g_autoptr(KqConfigSet) set = kq_server_config_load_queues(path, &error);
  KqQueueSettings s;

  g_assert_no_error(error);
  kq_config_set_resolve(set, "a", &s);
  g_assert_cmpint(s.max_items, ==, 3);
  kq_settings_clear(&s);
  g_assert_nonnull(kq_config_set_alias_destinations(set, "b"));

  g_assert_null(kq_server_config_load_queues(broken, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG);
  g_unlink(path);
  g_unlink(broken);
}

/* ---- the shipped config files ----------------------------------------------------------- */

static void
test_development_conf(void)
{
  g_autofree gchar *path = source_path("config/development.conf");
  g_autoptr(GError) error = NULL;
  g_autoptr(KqServerConfig) c = kq_server_config_load(path, &error);
  g_autoptr(GPtrArray) queues = NULL;
  g_autoptr(GPtrArray) aliases = NULL;
  const gchar *const *dest;
  KqQueueSettings s;

  g_assert_no_error(error);
  g_assert_cmpstr(c->listen_address, ==, "0.0.0.0");
  g_assert_cmpint(c->memcache_port, ==, 22133);
  g_assert_cmpint(c->text_port, ==, 2222);
  g_assert_cmpint(c->thrift_port, ==, 2229);
  g_assert_cmpint(c->admin_port, ==, 2223);
  g_assert_cmpstr(c->queue_path, ==, "spool");
  g_assert_cmpint(c->client_timeout_ms, ==, 30000);
  g_assert_cmpint(c->expiration_timer_ms, ==, 1000);
  g_assert_cmpint(c->max_open_transactions, ==, 100);
  g_assert_null(c->log_file);
  g_assert_cmpstr(c->log_level, ==, "info");
  g_assert_cmpstr(c->log_roll, ==, "never");

  queues = kq_config_set_queue_names(c->queues);
  g_assert_cmpuint(queues->len, ==, 9);
  static const gchar *const names[] = { "hello", "jobs_pending", "jobs_ready", "slow", "small",
                                        "spam", "spam0", "transient_events", "weather_updates" };
  for (guint i = 0; i < queues->len; i++)
    g_assert_cmpstr(g_ptr_array_index(queues, i), ==, names[i]);

  kq_config_set_resolve(c->queues, "unconfigured", &s);
  g_assert_cmpint(s.default_journal_size, ==, 16 * MB);
  g_assert_cmpint(s.max_memory_size, ==, 128 * MB);
  g_assert_cmpint(s.max_journal_size, ==, GB);
  g_assert_cmpint(s.sync_journal_ms, ==, KQ_UNSET);
  kq_settings_clear(&s);

  kq_config_set_resolve(c->queues, "weather_updates", &s);
  g_assert_cmpint(s.max_age_ms, ==, 1800000);
  g_assert_cmpint(s.max_items, ==, 1500000);
  g_assert_true(s.keep_journal);
  kq_settings_clear(&s);

  kq_config_set_resolve(c->queues, "transient_events", &s);
  g_assert_false(s.keep_journal);
  kq_settings_clear(&s);

  kq_config_set_resolve(c->queues, "jobs_pending", &s);
  g_assert_cmpstr(s.expire_to_queue, ==, "jobs_ready");
  g_assert_cmpint(s.max_age_ms, ==, 30000);
  kq_settings_clear(&s);

  kq_config_set_resolve(c->queues, "jobs_ready", &s);
  g_assert_cmpint(s.sync_journal_ms, ==, 0);
  kq_settings_clear(&s);

  kq_config_set_resolve(c->queues, "spam", &s);
  g_assert_cmpint(s.max_items, ==, KQ_UNSET);
  g_assert_cmpint(s.max_journal_size, ==, GB);
  kq_settings_clear(&s);

  kq_config_set_resolve(c->queues, "hello", &s);
  g_assert_true(s.fanout_only);
  kq_settings_clear(&s);
  /* A fanout child of hello inherits fanoutOnly like any explicit parent option. */
  kq_config_set_resolve(c->queues, "hello+world", &s);
  g_assert_true(s.fanout_only);
  kq_settings_clear(&s);

  kq_config_set_resolve(c->queues, "small", &s);
  g_assert_cmpint(s.max_size, ==, 128 * MB);
  g_assert_cmpint(s.max_memory_size, ==, 16 * MB);
  g_assert_cmpint(s.max_journal_size, ==, 128 * MB);
  g_assert_true(s.discard_old_when_full);
  g_assert_cmpint(s.default_journal_size, ==, 16 * MB);
  kq_settings_clear(&s);

  kq_config_set_resolve(c->queues, "slow", &s);
  g_assert_cmpint(s.sync_journal_ms, ==, 10);
  kq_settings_clear(&s);

  aliases = kq_config_set_alias_names(c->queues);
  g_assert_cmpuint(aliases->len, ==, 2);
  dest = kq_config_set_alias_destinations(c->queues, "wx_updates");
  g_assert_cmpstr(dest[0], ==, "weather_updates");
  g_assert_null(dest[1]);
  dest = kq_config_set_alias_destinations(c->queues, "spam_all");
  g_assert_cmpstr(dest[0], ==, "spam");
  g_assert_cmpstr(dest[1], ==, "spam0");
  g_assert_null(dest[2]);
}

static void
test_production_conf(void)
{
  g_autofree gchar *path = source_path("config/production.conf");
  g_autoptr(GError) error = NULL;
  g_autoptr(KqServerConfig) c = kq_server_config_load(path, &error);
  g_autoptr(GPtrArray) queues = NULL;
  g_autoptr(GPtrArray) aliases = NULL;
  KqQueueSettings s;

  g_assert_no_error(error);
  g_assert_cmpstr(c->listen_address, ==, "0.0.0.0");
  g_assert_cmpint(c->memcache_port, ==, 22133);
  g_assert_cmpint(c->text_port, ==, 2222);
  g_assert_cmpint(c->thrift_port, ==, 2229);
  g_assert_cmpint(c->admin_port, ==, 2223);
  g_assert_cmpstr(c->queue_path, ==, "/var/spool/kestrel");
  g_assert_cmpint(c->client_timeout_ms, ==, KQ_UNSET);
  g_assert_cmpint(c->expiration_timer_ms, ==, 1000);
  g_assert_cmpint(c->max_open_transactions, ==, 100);
  g_assert_cmpstr(c->log_file, ==, "/var/log/kestrel/kestrel.log");
  g_assert_cmpstr(c->log_level, ==, "info");
  g_assert_cmpstr(c->log_roll, ==, "sighup");

  queues = kq_config_set_queue_names(c->queues);
  g_assert_cmpuint(queues->len, ==, 2);
  g_assert_cmpstr(g_ptr_array_index(queues, 0), ==, "transient_events");
  g_assert_cmpstr(g_ptr_array_index(queues, 1), ==, "weather_updates");
  aliases = kq_config_set_alias_names(c->queues);
  g_assert_cmpuint(aliases->len, ==, 0);

  kq_config_set_resolve(c->queues, "anything", &s);
  g_assert_cmpint(s.default_journal_size, ==, 16 * MB);
  g_assert_cmpint(s.max_memory_size, ==, 128 * MB);
  g_assert_cmpint(s.max_journal_size, ==, GB);
  g_assert_cmpint(s.sync_journal_ms, ==, 100);
  kq_settings_clear(&s);

  kq_config_set_resolve(c->queues, "weather_updates", &s);
  g_assert_cmpint(s.max_age_ms, ==, 1800000);
  g_assert_cmpint(s.max_items, ==, 1500000);
  g_assert_cmpint(s.sync_journal_ms, ==, 100);
  kq_settings_clear(&s);

  kq_config_set_resolve(c->queues, "transient_events", &s);
  g_assert_false(s.keep_journal);
  kq_settings_clear(&s);
}

int
main(int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  int rc;

  g_test_init(&argc, &argv, NULL);
  scratch_dir = g_dir_make_tmp("kestrel-test-config-XXXXXX", &error);
  g_assert_no_error(error);

  g_test_add_func("/server-config/defaults", test_defaults);
  g_test_add_func("/server-config/every-key", test_every_key);
  g_test_add_func("/server-config/none-values", test_none_values);
  g_test_add_func("/server-config/errors", test_errors);
  g_test_add_func("/server-config/zookeeper", test_zookeeper);
  g_test_add_func("/server-config/missing-file", test_missing_file);
  g_test_add_func("/server-config/parse-port", test_parse_port);
  g_test_add_func("/server-config/paths-absolute", test_paths_absolute);
  g_test_add_func("/server-config/load-queues", test_load_queues);
  g_test_add_func("/server-config/development-conf", test_development_conf);
  g_test_add_func("/server-config/production-conf", test_production_conf);
  rc = g_test_run();
  g_rmdir(scratch_dir);
  g_free(scratch_dir);
  return rc;
}

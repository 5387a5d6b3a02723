/* kestreld's configuration: the [server] group of the key file (SPEC 8) plus the queue and alias
 * settings, with command-line overrides applied by main.c. */
#pragma once
#include <glib.h>
#include <kestrel/settings.h>

#include "config/config-file.h"

G_BEGIN_DECLS

/* The [zookeeper] group: Kestrel 2.4's ZooKeeperBuilder (server sets, docs/cluster.md). */
typedef struct {
  gchar *host;              /* required */
  gint port;                /* 2181 */
  gchar *path_prefix;       /* "/kestrel": members go under <prefix>/read and <prefix>/write */
  gint64 session_timeout_ms; /* 10 s */
  gchar *credentials;       /* "user:password" for the digest scheme, NULL: none */
  gboolean acl_creator;     /* FALSE: open ACL; TRUE: everyone reads, the creator does all */
  gchar *advertise_address; /* NULL: the listen address, or the machine's when wildcard */
  gint shard;               /* -1: no shard in the member data */
} KqZooKeeperConfig;

typedef struct {
  gchar *config_file;            /* path it was loaded from, NULL for built-in defaults */
  KqConfigFormat config_format;  /* format it was read as (reload reads it the same way) */
  GKeyFile *key_file;            /* the file as a key file (translated if need be), or NULL */
  gchar *listen_address;         /* default "0.0.0.0" */
  gint memcache_port;            /* 22133; 0 disables */
  gboolean memcache_strict;      /* FALSE: Kestrel's replies; TRUE: what memcache clients expect */
  gint text_port;                /* 2222; 0 disables */
  gint thrift_port;              /* 2229; 0 disables */
  gint admin_port;               /* 2223; 0 disables */
  gchar *admin_listen_address;   /* "127.0.0.1" */
  gchar *queue_path;             /* "/var/spool/kestrel" */
  gint64 client_timeout_ms;      /* -1 none */
  gint64 expiration_timer_ms;    /* -1 none */
  gint max_open_transactions;    /* 1 */
  gint connection_backlog;       /* 1024 */
  gchar *status_file;            /* NULL: the default (see make_paths_absolute) or none */
  gboolean status_file_none;     /* statusFile = none: status not configured */
  gchar *default_status;         /* "UP" */
  gint64 status_grace_period_ms; /* 0 */
  gboolean enable_session_trace; /* FALSE */
  gint64 connection_limit_refuse_writes; /* -1 none */
  gint64 connection_limit_refuse_reads;  /* -1 none */
  gint64 thrift_max_frame_size;  /* 16MB */
  gint64 busy_poll_us;           /* 0: the loop sleeps as soon as it is idle */
  gint worker_threads;           /* memcache/text threads; 0: one per core, at most 4 */
  gchar *log_file;               /* NULL: stderr */
  gchar *log_level;              /* "info" */
  gchar *log_roll;               /* "never" */
  KqConfigSet *queues;           /* [default], [queue *], [alias *] */
  KqZooKeeperConfig *zookeeper;  /* NULL: no [zookeeper] group, no server sets */
} KqServerConfig;

/* Starts with a dot, so it can never be a queue's name nor a journal file (SPEC 1.6); the
 * engine leaves its `.kestrel*` files alone and silent. */
#define KQ_DEFAULT_STATUS_FILE ".kestrel.status"

KqServerConfig *kq_server_config_new_defaults(void);
/* Load a key file; unknown keys / bad values: FALSE with an error naming file, group, key and
 * what was expected. */
KqServerConfig *kq_server_config_load(const gchar *path, GError **error);
/* Load a file in any format (config/config-file.h); warnings about Kestrel settings without
 * an equivalent are appended to `warnings` (may be NULL). */
KqServerConfig *kq_server_config_load_as(const gchar *path, KqConfigFormat format,
                                         GPtrArray *warnings, GError **error);
/* Re-read only the queue and alias settings of the file (for reload). */
KqConfigSet *kq_server_config_load_queues(const gchar *path, GError **error);
KqConfigSet *kq_server_config_load_queues_as(const gchar *path, KqConfigFormat format,
                                             GError **error);
/* Check one [server] value without keeping it; the error says what was expected. */
gboolean kq_server_config_check_value(const gchar *key, const gchar *value, GError **error);
/* The resolved configuration as a key file: every [server] key with its value after defaults,
 * file and command line, then the file's [default], [queue] and [alias] groups, with the
 * comments saying where each value came from. */
gchar *kq_server_config_to_key_file_text(const KqServerConfig *config);
void kq_server_config_free(KqServerConfig *config);
/* Kestrel's ZooKeeperBuilder defaults, host unset: for the key file and other config forms. */
KqZooKeeperConfig *kq_zookeeper_config_new_defaults(void);
void kq_zookeeper_config_free(KqZooKeeperConfig *zk);

/* workerThreads: "auto" (0) or 1..64. */
gboolean kq_server_config_parse_worker_threads(const gchar *text, gint *threads_out,
                                               GError **error);
/* A port number 0..65535 ("none" = 0 = listener disabled), for config values and options. */
gboolean kq_server_config_parse_port(const gchar *text, gint *port_out, GError **error);
/* Make queuePath, statusFile and logFile absolute against the current directory, so a
 * relative path in the file means "relative to where kestreld was started" even after
 * --daemonize changes to /. Without a statusFile (and not `none`), the status is kept in
 * KQ_DEFAULT_STATUS_FILE inside the queue folder. */
void kq_server_config_make_paths_absolute(KqServerConfig *config);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(KqServerConfig, kq_server_config_free)

G_END_DECLS

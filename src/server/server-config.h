/* kestreld's configuration: the [server] group of the key file (SPEC 8) plus the queue and alias
 * settings, with command-line overrides applied by main.c. */
#pragma once
#include <glib.h>
#include <kestrel/settings.h>

G_BEGIN_DECLS

typedef struct {
  gchar *config_file;            /* path it was loaded from, NULL for built-in defaults */
  gchar *listen_address;         /* default "0.0.0.0" */
  gint memcache_port;            /* 22133; 0 disables */
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
  gchar *log_file;               /* NULL: stderr */
  gchar *log_level;              /* "info" */
  gchar *log_roll;               /* "never" */
  KqConfigSet *queues;           /* [default], [queue *], [alias *] */
} KqServerConfig;

/* Starts with a dot, so it can never be a queue's name nor a journal file (SPEC 1.6); the
 * engine leaves its `.kestrel*` files alone and silent. */
#define KQ_DEFAULT_STATUS_FILE ".kestrel.status"

KqServerConfig *kq_server_config_new_defaults(void);
/* Load a key file; unknown keys / bad values: FALSE with an error naming file, group, key and
 * what was expected. */
KqServerConfig *kq_server_config_load(const gchar *path, GError **error);
/* Re-read only the queue and alias settings of the file (for reload). */
KqConfigSet *kq_server_config_load_queues(const gchar *path, GError **error);
void kq_server_config_free(KqServerConfig *config);

/* A port number 0..65535 ("none" = 0 = listener disabled), for config values and options. */
gboolean kq_server_config_parse_port(const gchar *text, gint *port_out, GError **error);
/* Make queuePath, statusFile and logFile absolute against the current directory, so a
 * relative path in the file means "relative to where kestreld was started" even after
 * --daemonize changes to /. Without a statusFile (and not `none`), the status is kept in
 * KQ_DEFAULT_STATUS_FILE inside the queue folder. */
void kq_server_config_make_paths_absolute(KqServerConfig *config);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(KqServerConfig, kq_server_config_free)

G_END_DECLS

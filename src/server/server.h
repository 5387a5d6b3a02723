/* kestreld's shared state: the engine, global counters, status, and the listeners' loop. */
#pragma once
#include <glib.h>
#include <kestrel/kestrel.h>
#include "server-config.h"

struct event_base;

G_BEGIN_DECLS

/* Global counters of SPEC 6, updated atomically. The server keeps one set (connections, and
 * what Thrift counts); each worker thread keeps its own for its requests, so threads never
 * write the same cache line. kq_server_read_stats sums them. */
typedef struct {
  gint64 curr_connections, total_connections;
  gint64 cmd_get, cmd_set, cmd_peek, get_hits, get_misses;
  gint64 bytes_read, bytes_written;
} KqServerStats;

typedef enum {
  KQ_STATUS_NOT_CONFIGURED = 0, /* same numbers as the Thrift Status enum */
  KQ_STATUS_QUIESCENT = 1,
  KQ_STATUS_READ_ONLY = 2,
  KQ_STATUS_UP = 3,
} KqStatus;

typedef struct _KqServer KqServer;
typedef struct _KqZkRegistry KqZkRegistry;

/* Errors the server reports to clients (beyond the engine's KQ_ERROR). */
#define KQ_SERVER_ERROR (kq_server_error_quark())
GQuark kq_server_error_quark(void);

typedef enum {
  KQ_SERVER_ERROR_UNAVAILABLE,    /* refused by status or connection limits (SPEC 1.6) */
  KQ_SERVER_ERROR_NOT_CONFIGURED, /* status requested but no statusFile configured */
  KQ_SERVER_ERROR_BAD_STATUS,     /* unknown status name */
  KQ_SERVER_ERROR_LISTEN,         /* a listener could not be set up */
} KqServerErrorCode;

KqServer *kq_server_new(KqServerConfig *config, GError **error); /* takes ownership of config */
/* Run until shutdown (signal, `shutdown` command). Returns the exit code. */
int kq_server_run(KqServer *server);
void kq_server_free(KqServer *server);

/* Accessors for front-ends (thread-safe). */
KqCollection *kq_server_get_collection(KqServer *server);
KqServerStats *kq_server_get_stats(KqServer *server);
/* The counters of the server and of every worker thread, summed. */
void kq_server_read_stats(KqServer *server, KqServerStats *out);
const KqServerConfig *kq_server_get_config(KqServer *server);
KqStatus kq_server_get_status(KqServer *server);
gboolean kq_server_set_status(KqServer *server, KqStatus status, GError **error);
gboolean kq_server_allows_writes(KqServer *server);
gboolean kq_server_allows_reads(KqServer *server);
/* As the two above, with the availability error to send back (names the operation). */
gboolean kq_server_check_writes(KqServer *server, const gchar *op, GError **error);
gboolean kq_server_check_reads(KqServer *server, const gchar *op, GError **error);
/* The server-set registry, NULL without [zookeeper] (zookeeper/zk-registry.h). */
KqZkRegistry *kq_server_get_zookeeper(KqServer *server);
/* The main thread's libevent loop (memcache, text): for another front-end served on it. */
struct event_base *kq_server_get_event_base(KqServer *server);
/* Ask the server to stop (thread-safe, callable from any front-end). */
void kq_server_request_shutdown(KqServer *server);
/* Re-read queue/alias settings from the config file. */
gboolean kq_server_reload(KqServer *server, GError **error);
gint64 kq_server_uptime_s(KqServer *server);
/* Seconds since the epoch when the server started. */
gint64 kq_server_start_time_s(KqServer *server);
/* "UP", "READONLY", "QUIESCENT", "NOT_CONFIGURED". Parsing ignores case and accepts Kestrel's
 * spellings ("ReadOnly", "read_only"). */
const gchar *kq_status_to_string(KqStatus status);
/* Kestrel's own name of a status (its case object: "Up", "ReadOnly", "Quiescent"), as its
 * status file and Ostrich's status label hold it; NULL for NOT_CONFIGURED. */
const gchar *kq_status_kestrel_name(KqStatus status);
gboolean kq_status_from_string(const gchar *text, KqStatus *out);

G_END_DECLS

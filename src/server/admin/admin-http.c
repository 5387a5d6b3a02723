/* The admin HTTP service (see admin-http.h and docs/admin.md).
 *
 * Every handler runs on the main loop and answers at once: stats are gathered with the same
 * calls the memcache `stats` command makes, so the loop is never blocked for long. Shutdown
 * waits until its reply has been written, so the caller sees "ok" before the server goes. */
#include "config.h"

#include "admin-http.h"
#include "admin-dashboard.h"

#include <errno.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>


#include "ostrich-stats.h"
#include "stats-format.h"
#include "stats-history.h"


/* Admin requests are small: refuse big ones before reading them. */
#define MAX_HEADERS_SIZE 8192
#define MAX_BODY_SIZE 65536
#define IDLE_TIMEOUT_S 30

#define TYPE_TEXT "text/plain; charset=utf-8"
#define TYPE_JSON "application/json"
#define TYPE_HTML "text/html; charset=utf-8"
#define TYPE_PROMETHEUS "text/plain; version=0.0.4; charset=utf-8"

struct _KqAdminHttp {
  KqServer *server;
  struct evhttp *http;
  KqStatsHistory *history;
  KqOstrichListeners *listeners;
  gchar *description;
};

/* json: the path ended in .json (Ostrich answers a command in the format its extension names). */
typedef void (*RouteFunc)(KqAdminHttp *admin, struct evhttp_request *req, gboolean json);

/* ---- replies ----------------------------------------------------------------------------- */

static void
reply(struct evhttp_request *req, int code, const char *reason, const char *content_type,
      const gchar *body, gsize len)
{
  struct evkeyvalq *headers = evhttp_request_get_output_headers(req);

  evhttp_add_header(headers, "Content-Type", content_type);
  evhttp_add_header(headers, "Cache-Control", "no-store");
  evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
  evhttp_send_reply(req, code, reason, NULL);
}

static void
reply_text(struct evhttp_request *req, int code, const char *reason, const gchar *text)
{
  reply(req, code, reason, TYPE_TEXT, text, strlen(text));
}

static void
reply_owned(struct evhttp_request *req, const char *content_type, gchar *body)
{
  reply(req, HTTP_OK, "OK", content_type, body, strlen(body));
  g_free(body);
}

static void
reply_error(struct evhttp_request *req, int code, const char *reason, const gchar *message)
{
  g_autofree gchar *text = g_strdup_printf("%s\n", message);
  reply_text(req, code, reason, text);
}

/* A one-word answer: `word` as text, {"response":"word"} as JSON (Ostrich's wrapping). */
static void
reply_word(struct evhttp_request *req, gboolean json, const gchar *word)
{
  if (json)
    reply_owned(req, TYPE_JSON, g_strdup_printf("{\"response\":\"%s\"}\n", word));
  else
    reply_owned(req, TYPE_TEXT, g_strdup_printf("%s\n", word));
}

/* ---- endpoints --------------------------------------------------------------------------- */

static void
ping(KqAdminHttp *admin, struct evhttp_request *req, gboolean json)
{
  reply_word(req, json, "pong");
}

/* Ostrich's fields (its build_* ones describe the jar: here the build's tool versions), plus
 * start_time_iso; start_time as Java's Date.toString prints it, uptime in milliseconds. */
static void
server_info(KqAdminHttp *admin, struct evhttp_request *req, gboolean json)
{
  gint64 start = kq_server_start_time_s(admin->server);
  g_autoptr(GDateTime) start_utc = g_date_time_new_from_unix_utc(start);
  g_autoptr(GDateTime) start_local = g_date_time_to_local(start_utc);
  g_autofree gchar *start_iso = g_date_time_format_iso8601(start_utc);
  g_autofree gchar *start_java = g_date_time_format(start_local, "%a %b %d %H:%M:%S %Z %Y");
  g_autofree gchar *build = g_strdup_printf(
    "compiler %s, glib %u.%u.%u, libevent %s", __VERSION__, glib_major_version,
    glib_minor_version, glib_micro_version, event_get_version());
  gint64 uptime_ms = kq_server_uptime_s(admin->server) * 1000;
  g_autofree gchar *uptime = g_strdup_printf("%" G_GINT64_FORMAT, uptime_ms);
  /* sorted by name, as Ostrich prints them; NULL value: an empty list */
  const gchar *names[] = { "build", "build_branch_name", "build_last_few_commits",
                           "build_revision", "name", "start_time", "start_time_iso", "uptime",
                           "version" };
  const gchar *values[] = { build, "", NULL, "", "kestreld", start_java, start_iso, uptime,
                            PACKAGE_VERSION };
  GString *out = g_string_new(json ? "{" : NULL);

  for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
    if (!json) {
      g_string_append_printf(out, values[i] != NULL ? "%s: %s\n" : "%s:\n", names[i],
                             values[i]);
      continue;
    }
    g_string_append_printf(out, "%s\"%s\":", i > 0 ? "," : "", names[i]);
    if (values[i] == NULL)
      g_string_append(out, "[]");
    else if (values[i] == uptime)
      g_string_append(out, uptime);
    else
      kq_json_append_string(out, values[i]);
  }
  if (json)
    g_string_append(out, "}\n");
  reply_owned(req, json ? TYPE_JSON : TYPE_TEXT, g_string_free(out, FALSE));
}

/* Ostrich's stats: since start, or with ?period=N as latched over the last N seconds. */
static void
ostrich_stats(KqAdminHttp *admin, struct evhttp_request *req, gboolean json)
{
  const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
  struct evkeyvalq params;
  const char *period;
  g_autoptr(KqOstrichSummary) now = NULL;
  const KqOstrichSummary *summary;

  if (evhttp_parse_query_str(query != NULL ? query : "", &params) != 0) {
    reply_error(req, HTTP_BADREQUEST, "Bad Request", "usage: /stats.json[?period=SECONDS]");
    return;
  }
  period = evhttp_find_header(&params, "period");
  if (period == NULL) {
    summary = now = kq_ostrich_summary_take(admin->server);
  } else {
    g_autoptr(GError) error = NULL;
    gint64 seconds = 0;
    if (!g_ascii_string_to_signed(period, 10, 1, KQ_OSTRICH_MAX_PERIOD_S, &seconds, NULL))
      seconds = 0;
    summary = kq_ostrich_listeners_get(admin->listeners, seconds, &error);
    if (summary == NULL) {
      reply_error(req, HTTP_BADREQUEST, "Bad Request", error->message);
      evhttp_clear_headers(&params);
      return;
    }
  }
  evhttp_clear_headers(&params);
  if (json)
    reply_owned(req, TYPE_JSON, kq_stats_format_ostrich_json(summary));
  else
    reply_owned(req, TYPE_TEXT, kq_stats_format_ostrich_text(summary));
}

/* kestreld's own layout: the memcache `stats` names, plus operation stats. */
static void
kestreld_stats(KqAdminHttp *admin, struct evhttp_request *req, gboolean json)
{
  g_autoptr(KqStatsSnapshot) snapshot = kq_stats_snapshot_take(admin->server);
  if (json)
    reply_owned(req, TYPE_JSON, kq_stats_format_json(snapshot));
  else
    reply_owned(req, TYPE_TEXT, kq_stats_format_text(snapshot));
}

static void
metrics(KqAdminHttp *admin, struct evhttp_request *req, gboolean json)
{
  g_autoptr(KqStatsSnapshot) snapshot = kq_stats_snapshot_take(admin->server);
  reply_owned(req, TYPE_PROMETHEUS, kq_stats_format_prometheus(snapshot));
}

static void
shutdown_after_reply(struct evhttp_request *req, void *arg)
{
  kq_server_request_shutdown(arg);
}

static void
shutdown_after(KqAdminHttp *admin, struct evhttp_request *req, gboolean json, const gchar *what)
{
  g_message("%s requested over admin HTTP", what);
  evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
  evhttp_request_set_on_complete_cb(req, shutdown_after_reply, admin->server);
  reply_word(req, json, "ok");
}

static void
shutdown_txt(KqAdminHttp *admin, struct evhttp_request *req, gboolean json)
{
  shutdown_after(admin, req, json, "shutdown");
}

/* Kestrel does not refine Ostrich's quiesce, whose default is a shutdown: so is it here. The
 * memcache `status quiescent` is what refuses traffic and keeps the server running. */
static void
quiesce_txt(KqAdminHttp *admin, struct evhttp_request *req, gboolean json)
{
  shutdown_after(admin, req, json, "quiesce (a clean shutdown)");
}

static void
reload_txt(KqAdminHttp *admin, struct evhttp_request *req, gboolean json)
{
  g_autoptr(GError) error = NULL;

  if (!kq_server_reload(admin->server, &error)) {
    reply_error(req, HTTP_INTERNAL, "Internal Server Error", error->message);
    return;
  }
  reply_word(req, json, "ok");
}

static void
status_txt(KqAdminHttp *admin, struct evhttp_request *req, gboolean json)
{
  g_autofree gchar *text =
    g_strdup_printf("%s\n", kq_status_to_string(kq_server_get_status(admin->server)));
  reply_text(req, HTTP_OK, "OK", text);
}

static void
graph_data(KqAdminHttp *admin, struct evhttp_request *req, gboolean json)
{
  const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
  struct evkeyvalq params;
  const char *queue, *stat;
  g_autoptr(GArray) points = NULL;
  GString *out;

  /* evhttp_parse_query_str initialises params, and leaves them empty when it fails */
  if (evhttp_parse_query_str(query != NULL ? query : "", &params) != 0) {
    reply_error(req, HTTP_BADREQUEST, "Bad Request", "usage: /graph_data.json?q=QUEUE&stat=STAT");
    return;
  }
  queue = evhttp_find_header(&params, "q");
  stat = evhttp_find_header(&params, "stat");
  if (queue == NULL || stat == NULL) {
    reply_error(req, HTTP_BADREQUEST, "Bad Request", "usage: /graph_data.json?q=QUEUE&stat=STAT");
  } else if (!kq_stats_history_knows_stat(stat)) {
    g_autofree gchar *known = g_strjoinv(", ", (gchar **) kq_stats_history_stat_names());
    g_autofree gchar *message = g_strdup_printf("no history of stat '%s'; kept: %s", stat, known);
    reply_error(req, HTTP_BADREQUEST, "Bad Request", message);
  } else if ((points = kq_stats_history_get(admin->history, queue, stat)) == NULL) {
    g_autofree gchar *message = g_strdup_printf("no history of queue '%s'", queue);
    reply_error(req, HTTP_NOTFOUND, "Not Found", message);
  } else {
    out = g_string_new("{\"queue\":");
    kq_json_append_string(out, queue);
    g_string_append(out, ",\"stat\":");
    kq_json_append_string(out, stat);
    g_string_append(out, ",\"interval_s\":1,\"data\":[");
    for (guint i = 0; i < points->len; i++) {
      const KqHistoryPoint *p = &g_array_index(points, KqHistoryPoint, i);
      g_string_append_printf(out, "%s[%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT "]",
                             i > 0 ? "," : "", p->time_s, p->value);
    }
    g_string_append(out, "]}\n");
    reply_owned(req, TYPE_JSON, g_string_free(out, FALSE));
  }
  evhttp_clear_headers(&params);
}

static void
dashboard(KqAdminHttp *admin, struct evhttp_request *req, gboolean json)
{
  reply(req, HTTP_OK, "OK", TYPE_HTML, (const gchar *)kq_admin_dashboard_page,
        kq_admin_dashboard_page_len);
}

static const struct {
  const char *path;
  RouteFunc func;
  gboolean json;
} routes[] = {
  { "/", dashboard, FALSE },
  { "/ping.txt", ping, FALSE },
  { "/ping.json", ping, TRUE },
  { "/server_info.json", server_info, TRUE },
  { "/server_info.txt", server_info, FALSE },
  { "/stats.json", ostrich_stats, TRUE },
  { "/stats.txt", ostrich_stats, FALSE },
  { "/kestreld/stats.json", kestreld_stats, TRUE },
  { "/kestreld/stats.txt", kestreld_stats, FALSE },
  { "/metrics", metrics, FALSE },
  { "/shutdown.txt", shutdown_txt, FALSE },
  { "/shutdown.json", shutdown_txt, TRUE },
  { "/reload.txt", reload_txt, FALSE },
  { "/reload.json", reload_txt, TRUE },
  { "/quiesce.txt", quiesce_txt, FALSE },
  { "/quiesce.json", quiesce_txt, TRUE },
  { "/status.txt", status_txt, FALSE },
  { "/graph_data.json", graph_data, TRUE },
};

/* Unknown path: 404 whatever the method; known path, method other than GET: 405. */
static void
request_cb(struct evhttp_request *req, void *arg)
{
  KqAdminHttp *admin = arg;
  const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));

  if (path == NULL || *path == '\0')
    path = "/";
  for (gsize i = 0; i < G_N_ELEMENTS(routes); i++) {
    if (strcmp(path, routes[i].path) != 0)
      continue;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
      evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
      reply_error(req, HTTP_BADMETHOD, "Method Not Allowed", "only GET is allowed");
      return;
    }
    routes[i].func(admin, req, routes[i].json);
    return;
  }
  g_autofree gchar *message = g_strdup_printf("no such page: %s", path);
  reply_error(req, HTTP_NOTFOUND, "Not Found", message);
}

/* ---- life cycle -------------------------------------------------------------------------- */

KqAdminHttp *
kq_admin_http_start(KqServer *server, GError **error)
{
  const KqServerConfig *config = kq_server_get_config(server);
  struct event_base *base = kq_server_get_event_base(server);
  KqAdminHttp *admin;

  if (config->admin_port == 0)
    return NULL;
  admin = g_new0(KqAdminHttp, 1);
  admin->server = server;
  admin->description =
    g_strdup_printf("admin %s:%d", config->admin_listen_address, config->admin_port);
  admin->http = evhttp_new(base);
  if (admin->http == NULL) {
    g_set_error(error, KQ_SERVER_ERROR, KQ_SERVER_ERROR_LISTEN, "cannot listen on %s",
                admin->description);
    goto fail;
  }
  /* Every method reaches request_cb, so that a known page answers 405 with Allow. */
  evhttp_set_allowed_methods(admin->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
  evhttp_set_max_headers_size(admin->http, MAX_HEADERS_SIZE);
  evhttp_set_max_body_size(admin->http, MAX_BODY_SIZE);
  evhttp_set_timeout(admin->http, IDLE_TIMEOUT_S);
  evhttp_set_gencb(admin->http, request_cb, admin);
  errno = 0;
  if (evhttp_bind_socket_with_handle(admin->http, config->admin_listen_address,
                                     (ev_uint16_t) config->admin_port) == NULL) {
    int err = errno;
    g_set_error(error, KQ_SERVER_ERROR, KQ_SERVER_ERROR_LISTEN, "cannot listen on %s: %s",
                admin->description, err != 0 ? g_strerror(err) : "bad address");
    goto fail;
  }
  admin->history = kq_stats_history_new(kq_server_get_collection(server), base);
  admin->listeners = kq_ostrich_listeners_new(server, base);
  return admin;

fail:
  kq_admin_http_free(admin);
  return NULL;
}

void
kq_admin_http_free(KqAdminHttp *admin)
{
  if (admin == NULL)
    return;
  g_clear_pointer(&admin->http, evhttp_free);
  g_clear_pointer(&admin->history, kq_stats_history_free);
  g_clear_pointer(&admin->listeners, kq_ostrich_listeners_free);
  g_free(admin->description);
  g_free(admin);
}

const gchar *
kq_admin_http_describe(KqAdminHttp *admin)
{
  return admin->description;
}

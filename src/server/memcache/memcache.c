/* The memcache front-end (SPEC 2), answering as Kestrel 2.4's MemcacheHandler did.
 *
 * With the server's memcacheStrict on, it answers as memcache clients expect instead: a get
 * echoes the key as sent (options included), "noreply" on set, delete and flush_all silences
 * the reply, and flush_all answers OK.
 *
 * Requests are parsed in place from the connection's input (memcache-parse.c) and answered
 * straight into its output buffer; pipelined requests are all handled in one pass and the
 * replies go out together when the loop next writes. Hot paths (get, set) build their reply
 * lines by hand: no allocation and no printf per request. */
#include "config.h"

#include "memcache.h"

#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "memcache-parse.h"
#include "stats-report.h"

/* Items at least this big are handed to the socket by reference instead of being copied. */
#define ZERO_COPY_MIN 16384

typedef enum {
  MC_WAIT_GET,
  MC_WAIT_MONITOR,
} McWaitKind;

/* memcache's longest key: strict mode echoes keys, so it holds them to that limit. */
#define STRICT_KEY_MAX 250

/* Per-connection state: what the parked request was. */
typedef struct {
  McWaitKind kind;
  KqMonitor monitor;
  /* Strict mode: the key a get echoes (kept here for a get that waits); 0: the queue name. */
  gsize key_len;
  char key[STRICT_KEY_MAX];
} McState;

static KqServerStats *
stats_of(KqConnection *conn)
{
  return kq_connection_stats(conn);
}

#define STAT_INC(conn, field) \
  __atomic_add_fetch(&stats_of(conn)->field, 1, __ATOMIC_RELAXED)

static gboolean
is_strict(KqConnection *conn)
{
  return kq_server_get_config(kq_connection_get_server(conn))->memcache_strict;
}

/* Strict mode and "noreply": the request is answered with nothing, errors included, except
 * refusals that close the connection. */
static gboolean
is_quiet(KqConnection *conn, const KqMcRequest *req)
{
  return req->noreply && is_strict(conn);
}

/* ---- replies ----------------------------------------------------------------------------- */

/* Error text goes on one line whatever the engine put in it. */
static void
add_message(struct evbuffer *out, const char *message)
{
  for (const char *p = message; *p != '\0'; p++) {
    char c = (*p == '\r' || *p == '\n') ? ' ' : *p;
    evbuffer_add(out, &c, 1);
  }
}

static void
reply_client_error(KqConnection *conn, const char *why, gboolean close_after)
{
  struct evbuffer *out = kq_connection_output(conn);

  kq_buffer_add_literal(out, "CLIENT_ERROR");
  if (why != NULL && *why != '\0') {
    kq_buffer_add_literal(out, " ");
    add_message(out, why);
  }
  kq_buffer_add_literal(out, "\r\n");
  if (close_after)
    kq_connection_close_after_output(conn);
}

static void
reply_error_and_close(KqConnection *conn)
{
  kq_connection_write_literal(conn, "ERROR\r\n");
  kq_connection_close_after_output(conn);
}

/* The engine failed a request that was valid (the journal cannot be written): "SERVER_ERROR
 * <why>", which a client tells from "not stored" and from "empty". The connection stays. */
static void
reply_server_error(KqConnection *conn, const char *why)
{
  struct evbuffer *out = kq_connection_output(conn);

  kq_buffer_add_literal(out, "SERVER_ERROR ");
  add_message(out, why);
  kq_buffer_add_literal(out, "\r\n");
}

/* An availability refusal: Kestrel answered a bare SERVER_ERROR (clients retry on it). */
static void
reply_unavailable(KqConnection *conn)
{
  kq_connection_write_literal(conn, "SERVER_ERROR\r\n");
  kq_connection_close_after_output(conn);
}

static void
release_item(const void *data, size_t len, void *item)
{
  kq_item_unref(item);
}

/* "VALUE <key> 0 <len>\r\n<data>\r\n" */
static void
add_value(KqConnection *conn, const char *name, gsize name_len, const KqItem *item)
{
  char head[KQ_NAME_INLINE + 40];

  if (name_len < KQ_NAME_INLINE) {
    gsize n = 0;
    memcpy(head, "VALUE ", 6);
    n = 6;
    memcpy(head + n, name, name_len);
    n += name_len;
    memcpy(head + n, " 0 ", 3);
    n += 3;
    n += kq_format_u64(head + n, item->len);
    head[n++] = '\r';
    head[n++] = '\n';
    kq_connection_write(conn, head, n);
  } else {
    struct evbuffer *out = kq_connection_output(conn);
    kq_buffer_add_literal(out, "VALUE ");
    evbuffer_add(out, name, name_len);
    evbuffer_add_printf(out, " 0 %" G_GSIZE_FORMAT "\r\n", item->len);
  }
  if (item->len >= ZERO_COPY_MIN)
    evbuffer_add_reference(kq_connection_output(conn), item->data, item->len, release_item,
                           kq_item_ref((KqItem *) item));
  else
    kq_connection_write(conn, item->data, item->len);
  kq_connection_write_literal(conn, "\r\n");
}

static void
add_number_line(struct evbuffer *out, gint64 value)
{
  char line[24];
  gsize n;

  if (value < 0) {
    line[0] = '-';
    n = 1 + kq_format_u64(line + 1, (guint64) -value);
  } else {
    n = kq_format_u64(line, (guint64) value);
  }
  line[n++] = '\r';
  line[n++] = '\n';
  evbuffer_add(out, line, n);
}

/* ---- names ------------------------------------------------------------------------------- */

/* NUL-terminated queue name of a request, or a CLIENT_ERROR reply (connection kept). */
static gboolean
request_name(KqConnection *conn, const KqMcRequest *req, KqName *name)
{
  g_autoptr(GError) error = NULL;

  if (kq_name_init(name, req->queue, req->queue_len, &error))
    return TRUE;
  if (!is_quiet(conn, req))
    reply_client_error(conn, error->message, FALSE);
  return FALSE;
}

/* The queue behind a name for reading (created on first reference), or NULL after replying
 * with the error. */
static KqQueue *
get_queue(KqConnection *conn, const gchar *name)
{
  g_autoptr(GError) error = NULL;
  KqCollection *collection = kq_server_get_collection(kq_connection_get_server(conn));
  KqQueue *queue = kq_collection_get(collection, name, TRUE, &error);

  if (queue == NULL) {
    if (error != NULL && g_error_matches(error, KQ_ERROR, KQ_ERROR_BAD_NAME))
      reply_client_error(conn, error->message, FALSE);
    else
      reply_unavailable(conn); /* shutting down */
  }
  return queue;
}

/* ---- set --------------------------------------------------------------------------------- */

/* memcache exptime: 0 never; below 1,000,000 seconds from now; else absolute Unix seconds.
 * The engine takes absolute ms with 0 meaning none, so "already expired" becomes 1. */
static gint64
expiry_from_exptime(gint64 exptime)
{
  gint64 ms;

  if (exptime == 0)
    return 0;
  if (exptime < 1000000)
    ms = kq_clock_now_ms() + exptime * 1000;
  else
    ms = exptime * 1000;
  return ms > 0 ? ms : 1;
}

/* A set's data large enough for a queue to hold it as an item is handed over in the block
 * it was read into, when it can be (its request came alone), instead of copied. */
static gboolean
mc_add(KqConnection *conn, KqCollection *collection, const gchar *name, const KqMcRequest *req,
       GError **error)
{
  gint64 expiry = expiry_from_exptime(req->exptime);
  g_autoptr(KqItem) item = NULL;

  if (req->data_len >= KQ_ITEM_HELD_WHOLE)
    item = kq_connection_take_input(conn, req->data, req->data_len,
                                    req->data + req->data_len + 2); /* the data's \r\n ends it */
  if (item != NULL)
    return kq_collection_add_item(collection, name, item, expiry, error);
  return kq_collection_add(collection, name, req->data, req->data_len, expiry, error);
}

static void
mc_set(KqConnection *conn, const KqMcRequest *req)
{
  g_autoptr(GError) error = NULL;
  KqCollection *collection = kq_server_get_collection(kq_connection_get_server(conn));
  gboolean quiet = is_quiet(conn, req);
  KqName name;

  if (!kq_connection_check_writes(conn, "setItem", NULL)) {
    reply_unavailable(conn);
    return;
  }
  if (!request_name(conn, req, &name))
    return;
  STAT_INC(conn, cmd_set);
  if (mc_add(conn, collection, name.str, req, &error)) {
    /* The reply waits until the write is as durable as syncJournal asks. */
    if (!quiet) {
      kq_connection_hold_until_durable(conn, name.str);
      kq_connection_write_literal(conn, "STORED\r\n");
    }
  } else if (g_error_matches(error, KQ_ERROR, KQ_ERROR_BAD_NAME)) {
    if (!quiet)
      reply_client_error(conn, error->message, FALSE);
  } else if (g_error_matches(error, KQ_ERROR, KQ_ERROR_IO)) {
    g_warning("set on '%s': %s", name.str, error->message);
    if (!quiet)
      reply_server_error(conn, error->message);
  } else if (!quiet) {
    kq_connection_write_literal(conn, "NOT_STORED\r\n");
  }
  kq_name_clear(&name);
}

/* ---- get --------------------------------------------------------------------------------- */

/* Reply for an item (or none, or the error that kept it from being taken) a get obtained;
 * records an opened item as this connection's. */
static void
finish_get(KqConnection *conn, KqQueue *queue, KqItem *item, const GError *error)
{
  if (error != NULL) {
    reply_server_error(conn, error->message);
    return;
  }
  if (item == NULL) {
    STAT_INC(conn, get_misses);
    kq_connection_write_literal(conn, "END\r\n");
    return;
  }
  STAT_INC(conn, get_hits);
  if (item->xid != 0)
    kq_connection_add_open_read(conn, queue, item->xid);
  McState *state = kq_connection_get_data(conn);
  if (state->key_len > 0) {
    add_value(conn, state->key, state->key_len, item);
  } else {
    const gchar *queue_name = kq_queue_get_name(queue);
    add_value(conn, queue_name, strlen(queue_name), item);
  }
  kq_connection_write_literal(conn, "END\r\n");
  kq_item_unref(item);
}

static void
mc_get(KqConnection *conn, const KqMcRequest *req)
{
  KqServer *server = kq_connection_get_server(conn);
  KqCollection *collection = kq_server_get_collection(server);
  McState *state = kq_connection_get_data(conn);
  g_autoptr(GError) error = NULL;
  KqQueue *queue = NULL;
  KqItem *item = NULL;
  KqName name;

  state->key_len = 0;
  if (is_strict(conn)) {
    /* memcache clients check that the key comes back as they sent it. */
    if (req->key_len > STRICT_KEY_MAX) {
      reply_client_error(conn, "key longer than " G_STRINGIFY(STRICT_KEY_MAX) " bytes", FALSE);
      return;
    }
    memcpy(state->key, req->key, req->key_len);
    state->key_len = req->key_len;
  }
  if (!request_name(conn, req, &name))
    return;

  if (req->abort) {
    kq_connection_abort_reads(conn, name.str, 1);
    kq_connection_write_literal(conn, "END\r\n");
    goto out;
  }
  if (req->close) {
    kq_connection_confirm_reads(conn, name.str, 1);
    if (!req->open) {
      kq_connection_write_literal(conn, "END\r\n");
      goto out;
    }
  }
  if (!req->open && !req->peek && kq_connection_count_open_reads(conn, name.str) > 0) {
    g_warning("attempt to perform a non-transactional fetch with an open transaction on '%s' "
              "(session %" G_GUINT64_FORMAT ")", name.str, kq_connection_get_id(conn));
    reply_error_and_close(conn);
    goto out;
  }
  if (!kq_connection_check_reads(conn, "getItem", NULL)) {
    reply_unavailable(conn);
    goto out;
  }
  if (req->open && kq_connection_count_open_reads(conn, name.str) >=
                     (guint) kq_server_get_config(server)->max_open_transactions) {
    g_warning("attempt to open too many reads on '%s' (session %" G_GUINT64_FORMAT ")",
              name.str, kq_connection_get_id(conn));
    reply_error_and_close(conn);
    goto out;
  }

  if (req->peek)
    STAT_INC(conn, cmd_peek);
  else
    STAT_INC(conn, cmd_get);
  /* An alias is write-only: reads see an empty queue. */
  if (kq_collection_is_alias(collection, name.str)) {
    kq_connection_write_literal(conn, "END\r\n");
    goto out;
  }
  queue = get_queue(conn, name.str);
  if (queue == NULL)
    goto out;

  KqRemoveFlags flags = req->peek ? KQ_REMOVE_PEEK : req->open ? KQ_REMOVE_OPEN : KQ_REMOVE_PLAIN;
  state->kind = MC_WAIT_GET;
  if (!kq_connection_remove(conn, queue, flags, req->timeout_ms, &item, &error))
    goto out; /* parked: finish_get runs when the wait ends */
  finish_get(conn, queue, item, error);

out:
  if (queue != NULL)
    kq_queue_unref(queue);
  kq_name_clear(&name);
}

/* ---- monitor ----------------------------------------------------------------------------- */

static void
emit_monitor_value(KqConnection *conn, KqQueue *queue, KqItem *item)
{
  const gchar *queue_name = kq_queue_get_name(queue);
  add_value(conn, queue_name, strlen(queue_name), item);
}

/* After the VALUE blocks: END, or the error that stopped the monitor (an item it could not
 * take) in its place. */
static void
end_monitor(KqConnection *conn, const GError *error)
{
  if (error != NULL)
    reply_server_error(conn, error->message);
  else
    kq_connection_write_literal(conn, "END\r\n");
}

static void
mc_monitor(KqConnection *conn, const KqMcRequest *req)
{
  KqServer *server = kq_connection_get_server(conn);
  McState *state = kq_connection_get_data(conn);
  g_autoptr(GError) error = NULL;
  KqQueue *queue;
  KqName name;

  if (!request_name(conn, req, &name))
    return;
  if (!kq_connection_check_reads(conn, "monitorUntil", NULL)) {
    reply_unavailable(conn);
    goto out;
  }
  if (kq_collection_is_alias(kq_server_get_collection(server), name.str)) {
    kq_connection_write_literal(conn, "END\r\n");
    goto out;
  }
  queue = get_queue(conn, name.str);
  if (queue == NULL)
    goto out;
  state->monitor.deadline_ms = kq_clock_now_ms() + req->seconds * 1000;
  state->monitor.left =
    req->count >= 0 ? req->count : kq_server_get_config(server)->max_open_transactions;
  state->kind = MC_WAIT_MONITOR;
  if (kq_connection_monitor_run(conn, queue, &state->monitor, emit_monitor_value, &error))
    end_monitor(conn, error);
  kq_queue_unref(queue);
out:
  kq_name_clear(&name);
}

static void
mc_wait_finished(KqConnection *conn, KqQueue *queue, KqItem *item, const GError *wait_error)
{
  McState *state = kq_connection_get_data(conn);
  g_autoptr(GError) error = NULL;

  if (state->kind == MC_WAIT_GET) {
    finish_get(conn, queue, item, wait_error);
    return;
  }
  if (wait_error != NULL)
    end_monitor(conn, wait_error);
  else if (kq_connection_monitor_resume(conn, queue, &state->monitor, item, emit_monitor_value,
                                        &error))
    end_monitor(conn, error);
}

/* ---- queue management -------------------------------------------------------------------- */

typedef enum { QUEUE_FLUSH, QUEUE_DELETE, QUEUE_FLUSH_EXPIRED } QueueOp;

static void
mc_queue_op(KqConnection *conn, const KqMcRequest *req, QueueOp op)
{
  static const char *const op_names[] = { "flush", "delete", "flushExpired" };
  KqCollection *collection = kq_server_get_collection(kq_connection_get_server(conn));
  g_autoptr(GError) error = NULL;
  gint64 expired = 0;
  gboolean ok = TRUE;
  KqName name;

  if (!kq_connection_check_writes(conn, op_names[op], NULL)) {
    reply_unavailable(conn);
    return;
  }
  if (!request_name(conn, req, &name))
    return;
  /* Aliases hold nothing: flush and delete are ignored (the engine knows). */
  switch (op) {
  case QUEUE_FLUSH:
    ok = kq_collection_flush(collection, name.str, &error);
    break;
  case QUEUE_DELETE:
    ok = kq_collection_delete(collection, name.str, &error);
    break;
  case QUEUE_FLUSH_EXPIRED:
    expired = kq_collection_flush_expired(collection, name.str, &error);
    ok = error == NULL;
    break;
  }
  if (!ok && g_error_matches(error, KQ_ERROR, KQ_ERROR_BAD_NAME)) {
    if (!is_quiet(conn, req))
      reply_client_error(conn, error->message, FALSE);
  } else {
    if (!ok)
      g_warning("%s '%s': %s", op_names[op], name.str, error->message);
    struct evbuffer *out = kq_connection_output(conn);
    if (op == QUEUE_FLUSH)
      kq_buffer_add_literal(out, "END\r\n");
    else if (op == QUEUE_DELETE && !is_quiet(conn, req))
      kq_buffer_add_literal(out, "DELETED\r\n");
    else if (op == QUEUE_FLUSH_EXPIRED)
      add_number_line(out, expired);
  }
  kq_name_clear(&name);
}

/* ---- stats ------------------------------------------------------------------------------- */

static void
print_stats(struct evbuffer *out, GPtrArray *stats, const gchar *line_format)
{
  for (guint i = 0; i < stats->len; i++) {
    const KqStat *stat = stats->pdata[i];
    evbuffer_add_printf(out, line_format, stat->name, stat->value);
  }
}

static void
mc_stats(KqConnection *conn)
{
  KqServer *server = kq_connection_get_server(conn);
  KqCollection *collection = kq_server_get_collection(server);
  struct evbuffer *out = kq_connection_output(conn);
  g_autoptr(GPtrArray) global = kq_stats_report_global(server);
  g_autoptr(GPtrArray) names = kq_stats_report_names(collection);

  print_stats(out, global, "STAT %s %s\r\n");
  for (guint i = 0; i < names->len; i++) {
    g_autoptr(GPtrArray) stats = kq_stats_report_queue(collection, names->pdata[i], FALSE);
    if (stats == NULL)
      continue; /* deleted meanwhile */
    for (guint j = 0; j < stats->len; j++) {
      const KqStat *stat = stats->pdata[j];
      evbuffer_add_printf(out, "STAT queue_%s_%s %s\r\n", (const gchar *) names->pdata[i],
                          stat->name, stat->value);
    }
  }
  kq_buffer_add_literal(out, "END\r\n");
}

/* dump_stats [q ...]: every queue and alias, or the ones named. */
static void
mc_dump_stats(KqConnection *conn, const KqMcRequest *req)
{
  KqCollection *collection = kq_server_get_collection(kq_connection_get_server(conn));
  struct evbuffer *out = kq_connection_output(conn);
  g_autoptr(GPtrArray) names = NULL;

  if (req->args_len > 0) {
    /* Split the raw bytes: a NUL byte inside a name must be seen, not cut at. */
    const char *p = req->args, *end = req->args + req->args_len;
    names = g_ptr_array_new_with_free_func(g_free);
    while (p < end) {
      const char *space = memchr(p, ' ', (gsize) (end - p));
      const char *word_end = space != NULL ? space : end;
      if (word_end > p) {
        KqName name;
        g_autoptr(GError) error = NULL;
        if (!kq_name_init(&name, p, (gsize) (word_end - p), &error)) {
          reply_client_error(conn, error->message, FALSE);
          return;
        }
        g_ptr_array_add(names, g_strdup(name.str));
        kq_name_clear(&name);
      }
      p = word_end + 1;
    }
  } else {
    names = kq_stats_report_names(collection);
  }
  for (guint i = 0; i < names->len; i++) {
    g_autoptr(GPtrArray) stats = kq_stats_report_queue(collection, names->pdata[i], FALSE);
    evbuffer_add_printf(out, "queue '%s' {\r\n", (const gchar *) names->pdata[i]);
    if (stats != NULL)
      print_stats(out, stats, "  %s=%s\r\n");
    kq_buffer_add_literal(out, "}\r\n");
  }
  kq_buffer_add_literal(out, "END\r\n");
}

/* dump_config: every resolved option of every queue, in SPEC 5 order. */
static void
mc_dump_config(KqConnection *conn)
{
  KqCollection *collection = kq_server_get_collection(kq_connection_get_server(conn));
  struct evbuffer *out = kq_connection_output(conn);
  g_autoptr(GPtrArray) names = kq_collection_queue_names(collection);

  for (guint i = 0; i < names->len; i++) {
    g_autoptr(KqQueue) queue = kq_collection_get(collection, names->pdata[i], FALSE, NULL);
    KqQueueSettings settings;

    if (queue == NULL)
      continue;
    kq_queue_get_settings(queue, &settings);
    evbuffer_add_printf(out, "queue '%s' {\r\n", (const gchar *) names->pdata[i]);
    for (const gchar *const *opt = kq_settings_option_names; *opt != NULL; opt++) {
      g_autofree gchar *value = kq_settings_format(&settings, *opt);
      evbuffer_add_printf(out, "  %s=%s\r\n", *opt, value);
    }
    kq_buffer_add_literal(out, "}\r\n");
    kq_settings_clear(&settings);
  }
  kq_buffer_add_literal(out, "END\r\n");
}

/* ---- server commands --------------------------------------------------------------------- */

static void
mc_status(KqConnection *conn, const KqMcRequest *req)
{
  KqServer *server = kq_connection_get_server(conn);
  struct evbuffer *out = kq_connection_output(conn);
  g_autoptr(GError) error = NULL;
  KqStatus status = kq_server_get_status(server);

  /* Kestrel: status without a configured status store is ERROR and a disconnect. */
  if (status == KQ_STATUS_NOT_CONFIGURED) {
    reply_error_and_close(conn);
    return;
  }
  if (req->args_len == 0) {
    evbuffer_add_printf(out, "%s\r\n", kq_status_to_string(status));
    return;
  }
  g_autofree gchar *arg = g_strndup(req->args, req->args_len);
  if (!kq_status_from_string(arg, &status) || !kq_server_set_status(server, status, &error)) {
    reply_client_error(conn, error != NULL ? error->message : "unknown status", TRUE);
    return;
  }
  kq_buffer_add_literal(out, "END\r\n");
}

static void
mc_reload(KqConnection *conn)
{
  g_autoptr(GError) error = NULL;

  if (!kq_server_reload(kq_connection_get_server(conn), &error)) {
    /* Kestrel logged a bad config and kept the old settings. */
    g_warning("reload failed: %s", error->message);
    kq_connection_write_literal(conn, "ERROR\r\n");
    return;
  }
  kq_connection_write_literal(conn, "Reloaded config.\r\n");
}

static void
mc_dispatch(KqConnection *conn, const KqMcRequest *req)
{
  KqServer *server = kq_connection_get_server(conn);
  KqCollection *collection = kq_server_get_collection(server);
  struct evbuffer *out;

  switch (req->command) {
  case KQ_MC_SET:
    mc_set(conn, req);
    break;
  case KQ_MC_GET:
    mc_get(conn, req);
    break;
  case KQ_MC_MONITOR:
    mc_monitor(conn, req);
    break;
  case KQ_MC_CONFIRM: {
    KqName name;
    if (!request_name(conn, req, &name))
      break;
    /* Kestrel confirms all `count` or none: fewer open (or a count of 0 or less) is ERROR. */
    guint count = (guint) CLAMP(req->count, 0, G_MAXUINT);
    gboolean done = count > 0 && kq_connection_count_open_reads(conn, name.str) >= count;
    if (done)
      kq_connection_confirm_reads(conn, name.str, count);
    kq_name_clear(&name);
    if (done)
      kq_connection_write_literal(conn, "END\r\n");
    else
      kq_connection_write_literal(conn, "ERROR\r\n");
    break;
  }
  case KQ_MC_DELETE:
    mc_queue_op(conn, req, QUEUE_DELETE);
    break;
  case KQ_MC_FLUSH:
    mc_queue_op(conn, req, QUEUE_FLUSH);
    break;
  case KQ_MC_FLUSH_EXPIRED:
    mc_queue_op(conn, req, QUEUE_FLUSH_EXPIRED);
    break;
  case KQ_MC_FLUSH_ALL:
    if (!kq_connection_check_writes(conn, "flushAll", NULL)) {
      reply_unavailable(conn);
      break;
    }
    kq_collection_flush_all(collection);
    if (!is_strict(conn))
      kq_connection_write_literal(conn, "Flushed all queues.\r\n");
    else if (!req->noreply)
      kq_connection_write_literal(conn, "OK\r\n");
    break;
  case KQ_MC_FLUSH_ALL_EXPIRED:
    add_number_line(kq_connection_output(conn), kq_collection_flush_all_expired(collection));
    break;
  case KQ_MC_STATS:
    mc_stats(conn);
    break;
  case KQ_MC_DUMP_STATS:
    mc_dump_stats(conn, req);
    break;
  case KQ_MC_DUMP_CONFIG:
    mc_dump_config(conn);
    break;
  case KQ_MC_STATUS:
    mc_status(conn, req);
    break;
  case KQ_MC_VERSION:
    out = kq_connection_output(conn);
    kq_buffer_add_literal(out, "VERSION " PACKAGE_VERSION "\r\n");
    break;
  case KQ_MC_RELOAD:
    mc_reload(conn);
    break;
  case KQ_MC_SHUTDOWN:
    kq_connection_close_after_output(conn);
    kq_server_request_shutdown(server);
    break;
  case KQ_MC_QUIT:
    kq_connection_close_after_output(conn);
    break;
  }
}

static gsize
mc_handle_input(KqConnection *conn, const char *buf, gsize len)
{
  gsize pos = 0;

  while (pos < len && kq_connection_takes_requests(conn)) {
    KqMcRequest req;
    gsize used = 0;
    KqParseResult result = kq_mc_parse(buf + pos, len - pos, KQ_MEMCACHE_MAX_DATA, &req, &used);

    if (result == KQ_PARSE_NEED_MORE)
      break;
    kq_connection_trace(conn, buf + pos, used);
    if (used == 0) {
      /* Cannot happen with a sane parser; never spin on it. */
      reply_client_error(conn, "bad request", TRUE);
      break;
    }
    pos += used;
    kq_connection_count_request(conn, used);
    switch (result) {
    case KQ_PARSE_OK:
      mc_dispatch(conn, &req);
      break;
    case KQ_PARSE_CLIENT_ERROR:
      reply_client_error(conn, req.error, req.close_after);
      break;
    case KQ_PARSE_ERROR:
      kq_connection_write_literal(conn, "ERROR\r\n");
      if (req.close_after)
        kq_connection_close_after_output(conn);
      break;
    case KQ_PARSE_NEED_MORE:
      break;
    }
  }
  return pos;
}

/* The whole length of the request buf begins: a whole request's, or a set's whose line is
 * here but not all of its data; 0 when not known yet (or the request is malformed). */
static gsize
mc_request_length(const char *buf, gsize len)
{
  KqMcRequest req;
  gsize used;

  switch (kq_mc_parse(buf, len, KQ_MEMCACHE_MAX_DATA, &req, &used)) {
  case KQ_PARSE_OK:
    return used;
  case KQ_PARSE_NEED_MORE:
    return req.awaiting;
  default:
    return 0;
  }
}

const KqFrontEnd kq_memcache_front_end = {
  .name = "memcache",
  .handle_input = mc_handle_input,
  .wait_finished = mc_wait_finished,
  .data_size = sizeof(McState),
  .request_length = mc_request_length,
};

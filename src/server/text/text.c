/* The text front-end (SPEC 3), answering as Kestrel 2.4's TextHandler did: one reply line per
 * request, "+<count>", "-<message>", ":<item>" or "*". Reads are always reliable: a get opens
 * its item and the next get (or peek, or monitor) on that queue confirms it. */
#include "config.h"

#include "text.h"

#include <string.h>

#include <event2/buffer.h>

#include "text-parse.h"

typedef enum {
  TEXT_WAIT_GET,
  TEXT_WAIT_MONITOR,
} TextWaitKind;

typedef struct {
  TextWaitKind kind;
  KqMonitor monitor;
  /* A put waiting for its empty line: how much of it was searched already, so a big put
   * arriving in pieces is scanned once, not re-parsed on every read. 0: not waiting. */
  gsize put_scanned;
  gsize put_line_start; /* where the last (unfinished) line of it begins */
} TextState;

#define STAT_INC(conn, field) \
  __atomic_add_fetch(&kq_connection_stats(conn)->field, 1, __ATOMIC_RELAXED)

/* ---- replies ----------------------------------------------------------------------------- */

static void
reply_error(KqConnection *conn, const char *message)
{
  struct evbuffer *out = kq_connection_output(conn);

  kq_buffer_add_literal(out, "-");
  for (const char *p = message; *p != '\0'; p++) {
    char c = (*p == '\r' || *p == '\n') ? ' ' : *p;
    evbuffer_add(out, &c, 1);
  }
  kq_buffer_add_literal(out, "\n");
}

static void
reply_count(KqConnection *conn, guint64 count)
{
  char line[24];
  gsize n = 0;

  line[n++] = '+';
  n += kq_format_u64(line + n, count);
  line[n++] = '\n';
  kq_connection_write(conn, line, n);
}

static void
release_item(const void *data, size_t len, void *item)
{
  kq_item_unref(item);
}

static void
reply_item(KqConnection *conn, KqItem *item)
{
  kq_connection_write_literal(conn, ":");
  if (item->len >= 16384)
    evbuffer_add_reference(kq_connection_output(conn), item->data, item->len, release_item,
                           kq_item_ref(item));
  else
    kq_connection_write(conn, item->data, item->len);
  kq_connection_write_literal(conn, "\n");
}

/* ---- helpers ----------------------------------------------------------------------------- */

static gboolean
request_name(KqConnection *conn, const KqTextRequest *req, KqName *name)
{
  g_autoptr(GError) error = NULL;

  if (kq_name_init(name, req->queue, req->queue_len, &error))
    return TRUE;
  reply_error(conn, error->message);
  return FALSE;
}

/* The queue to read from, or NULL after replying ("*" for an alias: it reads as empty). */
static KqQueue *
read_queue(KqConnection *conn, const gchar *name)
{
  KqCollection *collection = kq_server_get_collection(kq_connection_get_server(conn));
  g_autoptr(GError) error = NULL;
  KqQueue *queue;

  if (kq_collection_is_alias(collection, name)) {
    kq_connection_write_literal(conn, "*\n");
    return NULL;
  }
  queue = kq_collection_get(collection, name, TRUE, &error);
  if (queue == NULL)
    reply_error(conn, error != NULL ? error->message : "Server is shutting down.");
  return queue;
}

/* ---- put --------------------------------------------------------------------------------- */

static void
text_put(KqConnection *conn, const KqTextRequest *req)
{
  KqCollection *collection = kq_server_get_collection(kq_connection_get_server(conn));
  g_autoptr(GError) error = NULL;
  const char *item;
  gsize item_len, pos = 0;
  guint stored = 0;
  gint64 expiry = 0;
  KqName name;

  if (!request_name(conn, req, &name))
    return;
  if (!kq_connection_check_writes(conn, "setItem", &error)) {
    reply_error(conn, error->message);
    goto out;
  }
  /* Milliseconds from now. 0, like none, never expires (a choice); a negative expiry has
   * already passed, as in Kestrel. */
  if (req->has_number && req->number != 0)
    expiry = MAX(kq_clock_now_ms() + req->number, 1);
  while (kq_text_put_next_item(req, &pos, &item, &item_len)) {
    g_autoptr(GError) add_error = NULL;

    STAT_INC(conn, cmd_set);
    if (kq_collection_add(collection, name.str, item, item_len, expiry, &add_error)) {
      stored++;
    } else if (g_error_matches(add_error, KQ_ERROR, KQ_ERROR_BAD_NAME)) {
      reply_error(conn, add_error->message);
      goto out;
    } else if (g_error_matches(add_error, KQ_ERROR, KQ_ERROR_IO)) {
      /* The journal cannot be written: the rest would fail too. Stop; the reply counts the
       * items stored before, or is the error when there were none. */
      g_warning("put on '%s': %s", name.str, add_error->message);
      if (stored == 0) {
        reply_error(conn, add_error->message);
        goto out;
      }
      break;
    }
  }
  if (stored > 0)
    kq_connection_hold_until_durable(conn, name.str);
  reply_count(conn, stored);
out:
  kq_name_clear(&name);
}

/* A put still missing its empty line is only parsed again once one may have arrived. */
static gboolean
put_may_be_complete(TextState *state, const char *buf, gsize len)
{
  gsize from;

  if (state->put_scanned == 0 || len >= KQ_TEXT_MAX_PUT_BYTES)
    return TRUE;
  from = state->put_scanned >= 2 ? state->put_scanned - 2 : 0;
  for (const char *p = buf + from; p < buf + len;) {
    const char *nl = memchr(p, '\n', (gsize) (buf + len - p));
    if (nl == NULL)
      break;
    gsize rest = (gsize) (buf + len - nl);
    if ((rest > 1 && nl[1] == '\n') || (rest > 2 && nl[1] == '\r' && nl[2] == '\n'))
      return TRUE;
    state->put_line_start = (gsize) (nl - buf) + 1;
    p = nl + 1;
  }
  /* An overlong line is the parser's to report. */
  if (len - state->put_line_start >= KQ_TEXT_MAX_LINE)
    return TRUE;
  state->put_scanned = len;
  return FALSE;
}

/* ---- reads ------------------------------------------------------------------------------- */

/* The item, "*" for none, or "-<why>" when the item could not be taken (never "*"). */
static void
finish_get(KqConnection *conn, KqQueue *queue, KqItem *item, const GError *error)
{
  if (error != NULL) {
    reply_error(conn, error->message);
    return;
  }
  if (item == NULL) {
    STAT_INC(conn, get_misses);
    kq_connection_write_literal(conn, "*\n");
    return;
  }
  STAT_INC(conn, get_hits);
  if (item->xid != 0)
    kq_connection_add_open_read(conn, queue, item->xid);
  reply_item(conn, item);
  kq_item_unref(item);
}

/* get and peek: confirm this connection's reads on the queue, then open (or peek at) the next. */
static void
text_get(KqConnection *conn, const KqTextRequest *req, gboolean peek)
{
  KqServer *server = kq_connection_get_server(conn);
  TextState *state = kq_connection_get_data(conn);
  g_autoptr(GError) error = NULL;
  KqQueue *queue = NULL;
  KqItem *item = NULL;
  KqName name;

  if (!request_name(conn, req, &name))
    return;
  /* As in Kestrel, earlier reads are confirmed even when this read is then refused. */
  kq_connection_confirm_reads(conn, name.str, G_MAXUINT);
  if (!kq_connection_check_reads(conn, "getItem", &error)) {
    reply_error(conn, error->message);
    goto out;
  }
  if (!peek && kq_server_get_config(server)->max_open_transactions < 1) {
    g_autofree gchar *message = g_strdup_printf("Too many open transactions; limit=%d",
      kq_server_get_config(server)->max_open_transactions);
    reply_error(conn, message);
    goto out;
  }
  if (peek)
    STAT_INC(conn, cmd_peek);
  else
    STAT_INC(conn, cmd_get);
  queue = read_queue(conn, name.str);
  if (queue == NULL)
    goto out;
  state->kind = TEXT_WAIT_GET;
  if (!kq_connection_remove(conn, queue, peek ? KQ_REMOVE_PEEK : KQ_REMOVE_OPEN, req->number,
                            &item, &error))
    goto out; /* parked */
  finish_get(conn, queue, item, error);
out:
  if (queue != NULL)
    kq_queue_unref(queue);
  kq_name_clear(&name);
}

/* ":<item>" lines, each an open read, until the time limit or the open-read limit; then "*". */
static void
emit_monitor_item(KqConnection *conn, KqQueue *queue, KqItem *item)
{
  reply_item(conn, item);
}

/* After the items: "*", or the error that stopped the monitor in its place. */
static void
end_monitor(KqConnection *conn, const GError *error)
{
  if (error != NULL)
    reply_error(conn, error->message);
  else
    kq_connection_write_literal(conn, "*\n");
}

static void
text_monitor(KqConnection *conn, const KqTextRequest *req)
{
  TextState *state = kq_connection_get_data(conn);
  g_autoptr(GError) error = NULL;
  KqQueue *queue;
  KqName name;

  if (!request_name(conn, req, &name))
    return;
  kq_connection_confirm_reads(conn, name.str, G_MAXUINT);
  if (!kq_connection_check_reads(conn, "monitorUntil", &error)) {
    reply_error(conn, error->message);
    goto out;
  }
  queue = read_queue(conn, name.str);
  if (queue == NULL)
    goto out;
  state->monitor.deadline_ms = kq_clock_now_ms() + req->number;
  state->monitor.left = kq_server_get_config(kq_connection_get_server(conn))->max_open_transactions;
  state->kind = TEXT_WAIT_MONITOR;
  if (kq_connection_monitor_run(conn, queue, &state->monitor, emit_monitor_item, &error))
    end_monitor(conn, error);
  kq_queue_unref(queue);
out:
  kq_name_clear(&name);
}

static void
text_wait_finished(KqConnection *conn, KqQueue *queue, KqItem *item, const GError *wait_error)
{
  TextState *state = kq_connection_get_data(conn);
  g_autoptr(GError) error = NULL;

  if (state->kind == TEXT_WAIT_GET) {
    finish_get(conn, queue, item, wait_error);
    return;
  }
  if (wait_error != NULL)
    end_monitor(conn, wait_error);
  else if (kq_connection_monitor_resume(conn, queue, &state->monitor, item, emit_monitor_item,
                                        &error))
    end_monitor(conn, error);
}

/* ---- the rest ---------------------------------------------------------------------------- */

static void
text_confirm(KqConnection *conn, const KqTextRequest *req)
{
  KqName name;

  if (!request_name(conn, req, &name))
    return;
  /* Kestrel confirms all `count` or none: fewer open (or a count of 0 or less) is an error. */
  guint count = (guint) CLAMP(req->number, 0, G_MAXUINT);
  if (count > 0 && kq_connection_count_open_reads(conn, name.str) >= count) {
    kq_connection_confirm_reads(conn, name.str, count);
    reply_count(conn, count);
  } else
    reply_error(conn, "Not that many transactions open.");
  kq_name_clear(&name);
}

static void
text_flush_or_delete(KqConnection *conn, const KqTextRequest *req, gboolean delete)
{
  KqCollection *collection = kq_server_get_collection(kq_connection_get_server(conn));
  g_autoptr(GError) error = NULL;
  gboolean ok;
  KqName name;

  if (!request_name(conn, req, &name))
    return;
  if (!kq_connection_check_writes(conn, delete ? "delete" : "flush", &error)) {
    reply_error(conn, error->message);
    goto out;
  }
  ok = delete ? kq_collection_delete(collection, name.str, &error)
              : kq_collection_flush(collection, name.str, &error);
  if (!ok && g_error_matches(error, KQ_ERROR, KQ_ERROR_BAD_NAME))
    reply_error(conn, error->message);
  else
    reply_count(conn, 0);
out:
  kq_name_clear(&name);
}

static void
text_status(KqConnection *conn, const KqTextRequest *req)
{
  KqServer *server = kq_connection_get_server(conn);
  g_autoptr(GError) error = NULL;
  KqStatus status = kq_server_get_status(server);

  if (status == KQ_STATUS_NOT_CONFIGURED) {
    reply_error(conn, "Server status not configured.");
    return;
  }
  if (req->args_len == 0) {
    evbuffer_add_printf(kq_connection_output(conn), ":%s\n", kq_status_to_string(status));
    return;
  }
  g_autofree gchar *arg = g_strndup(req->args, req->args_len);
  if (!kq_status_from_string(arg, &status)) {
    reply_error(conn, "Unknown status.");
    return;
  }
  if (!kq_server_set_status(server, status, &error)) {
    reply_error(conn, error->message);
    return;
  }
  reply_count(conn, 0);
}

static void
text_dispatch(KqConnection *conn, const KqTextRequest *req)
{
  switch (req->command) {
  case KQ_TEXT_PUT:
    text_put(conn, req);
    break;
  case KQ_TEXT_GET:
    text_get(conn, req, FALSE);
    break;
  case KQ_TEXT_PEEK:
    text_get(conn, req, TRUE);
    break;
  case KQ_TEXT_MONITOR:
    text_monitor(conn, req);
    break;
  case KQ_TEXT_CONFIRM:
    text_confirm(conn, req);
    break;
  case KQ_TEXT_FLUSH:
    text_flush_or_delete(conn, req, FALSE);
    break;
  case KQ_TEXT_DELETE:
    text_flush_or_delete(conn, req, TRUE);
    break;
  case KQ_TEXT_STATUS:
    text_status(conn, req);
    break;
  case KQ_TEXT_VERSION:
    kq_connection_write_literal(conn, ":" PACKAGE_VERSION "\n");
    break;
  case KQ_TEXT_QUIT:
    kq_connection_close_after_output(conn);
    break;
  case KQ_TEXT_SHUTDOWN:
    reply_count(conn, 0);
    kq_connection_close_after_output(conn);
    kq_server_request_shutdown(kq_connection_get_server(conn));
    break;
  }
}

static gsize
text_handle_input(KqConnection *conn, const char *buf, gsize len)
{
  TextState *state = kq_connection_get_data(conn);
  gsize pos = 0;

  while (pos < len && kq_connection_takes_requests(conn)) {
    KqTextRequest req;
    gsize used = 0;

    if (pos == 0 && !put_may_be_complete(state, buf, len))
      break;
    KqParseResult result = kq_text_parse(buf + pos, len - pos, &req, &used);
    if (result == KQ_PARSE_NEED_MORE) {
      /* Only a request with items can be unfinished past its first line. */
      const char *nl = memrchr(buf + pos, '\n', len - pos);
      if (nl != NULL) {
        state->put_scanned = len - pos;
        state->put_line_start = (gsize) (nl - (buf + pos)) + 1;
      }
      break;
    }
    state->put_scanned = 0;
    kq_connection_trace(conn, buf + pos, used);
    if (used == 0) {
      reply_error(conn, "Bad request.");
      kq_connection_close_after_output(conn);
      break;
    }
    pos += used;
    kq_connection_count_request(conn, used);
    switch (result) {
    case KQ_PARSE_OK:
      text_dispatch(conn, &req);
      break;
    case KQ_PARSE_CLIENT_ERROR:
    case KQ_PARSE_ERROR:
      reply_error(conn, req.error != NULL ? req.error : "Bad request.");
      if (req.close_after)
        kq_connection_close_after_output(conn);
      break;
    case KQ_PARSE_NEED_MORE:
      break;
    }
  }
  return pos;
}

const KqFrontEnd kq_text_front_end = {
  .name = "text",
  .handle_input = text_handle_input,
  .wait_finished = text_wait_finished,
  .data_size = sizeof(TextState),
};

/* The memcache wire of kestrel-load (SPEC 2): `set` to put, `get q[/t=..][/close][/open][/abort]`
 * to get, replies STORED / NOT_STORED and VALUE ... END parsed line by line. */
#include "config.h"

#include <string.h>

#include "load-wire.h"

#define MAX_LINE 512

enum { STAGE_LINE, STAGE_VALUE };

/* Appends "VERB QUEUE[SUFFIX]\r\n" as one piece: a request is built once per item, so no printf. */
static void add_command(struct evbuffer *out, const gchar *verb, const gchar *queue,
                        const gchar *suffix)
{
  gchar line[MAX_LINE];
  gsize v = strlen(verb), q = strlen(queue), x = strlen(suffix);
  if (v + 1 + q + x + 2 > sizeof line) {
    evbuffer_add_printf(out, "%s %s%s\r\n", verb, queue, suffix);
    return;
  }
  memcpy(line, verb, v);
  line[v] = ' ';
  memcpy(line + v + 1, queue, q);
  memcpy(line + v + 1 + q, suffix, x);
  memcpy(line + v + 1 + q + x, "\r\n", 2);
  evbuffer_add(out, line, v + 1 + q + x + 2);
}

static void mc_put(struct evbuffer *out, const gchar *queue, const guint8 *items, gsize item_size,
                   guint n)
{
  /* " 0 0 <size>", digits written backwards from the end */
  gchar flags_and_size[32];
  gchar *p = flags_and_size + sizeof flags_and_size - 1;
  *p = '\0';
  gsize v = item_size;
  do {
    *--p = (gchar)('0' + v % 10);
    v /= 10;
  } while (v);
  p -= 5;
  memcpy(p, " 0 0 ", 5);
  for (guint i = 0; i < n; i++) {
    add_command(out, "set", queue, p);
    evbuffer_add(out, items + i * item_size, item_size);
    evbuffer_add(out, "\r\n", 2);
  }
}

static void mc_get(struct evbuffer *out, const gchar *queue, const LoadGetSpec *spec)
{
  gchar opts[64] = "";
  gsize n = 0;
  if (spec->block_ms >= 0)
    n += (gsize)g_snprintf(opts + n, sizeof opts - n, "/t=%d", spec->block_ms);
  if (spec->xact & LOAD_GET_CLOSE)
    n += (gsize)g_strlcpy(opts + n, "/close", sizeof opts - n);
  if (spec->xact & LOAD_GET_OPEN)
    n += (gsize)g_strlcpy(opts + n, "/open", sizeof opts - n);
  if (spec->xact & LOAD_GET_ABORT)
    g_strlcpy(opts + n, "/abort", sizeof opts - n);
  add_command(out, "get", queue, opts);
}

static void mc_flush(struct evbuffer *out, const gchar *queue)
{
  add_command(out, "flush", queue, "");
}

static void mc_stats(struct evbuffer *out, const gchar *queue)
{
  evbuffer_add(out, "stats\r\n", 7);
}

/* A `STAT queue_<q>_<name> <value>` line of the queue asked about. */
static void stats_line(LoadWireParser *p, const gchar *line, LoadWireEvent *ev)
{
  gsize qlen = strlen(p->queue);
  if (!g_str_has_prefix(line, "STAT queue_") || strncmp(line + 11, p->queue, qlen) != 0)
    return;
  const gchar *rest = line + 11 + qlen;
  gint64 *field = g_str_has_prefix(rest, "_items ") ? &ev->items
                  : g_str_has_prefix(rest, "_bytes ") ? &ev->bytes : NULL;
  if (field)
    load_wire_parse_int(strchr(rest, ' ') + 1, 0, G_MAXINT64, field);
}

/* One reply line without its terminator; FALSE when no whole line is buffered yet. The line
 * is looked for in the first contiguous piece of input (where a short reply nearly always is)
 * before the slower search across pieces. */
static gboolean take_line(struct evbuffer *in, gchar *buf, gsize cap, gboolean *too_long)
{
  struct evbuffer_iovec first;
  if (evbuffer_peek(in, -1, NULL, &first, 1) > 0) {
    const gchar *start = first.iov_base;
    const gchar *nl = memchr(start, '\n', first.iov_len);
    if (nl && nl > start && nl[-1] == '\r') {
      gsize len = (gsize)(nl - 1 - start);
      *too_long = len >= cap;
      if (!*too_long) {
        memcpy(buf, start, len);
        buf[len] = '\0';
      }
      evbuffer_drain(in, len + 2);
      return TRUE;
    }
  }
  size_t eol = 0;
  struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_CRLF);
  if (p.pos < 0)
    return FALSE;
  *too_long = (gsize)p.pos >= cap;
  if (*too_long) {
    evbuffer_drain(in, (size_t)p.pos + eol);
    return TRUE;
  }
  evbuffer_remove(in, buf, (size_t)p.pos);
  buf[p.pos] = '\0';
  evbuffer_drain(in, eol);
  return TRUE;
}

static gboolean parse_value_len(const gchar *line, gsize *len)
{
  const gchar *sp = strrchr(line, ' ');
  gint64 v = 0;
  if (!sp || !load_wire_parse_int(sp + 1, 0, G_MAXINT32, &v))
    return FALSE;
  *len = (gsize)v;
  return TRUE;
}

static LoadWireStatus mc_parse(LoadWireParser *p, struct evbuffer *in, LoadReqKind kind,
                               LoadWireEvent *ev)
{
  gchar line[MAX_LINE];
  gboolean too_long = FALSE;

  load_wire_drain(p, in);
  if (p->stage == STAGE_VALUE) {
    if (evbuffer_get_length(in) < p->len + 2)
      return LOAD_WIRE_MORE;
    const guint8 *d = evbuffer_pullup(in, (ssize_t)(p->len + 2));
    if (d[p->len] != '\r' || d[p->len + 1] != '\n')
      return load_wire_error(ev, "data block not followed by CRLF");
    p->stage = STAGE_LINE;
    p->items++;
    p->drain = p->len + 2;
    ev->data = d;
    ev->len = p->len;
    ev->id = 0;
    return LOAD_WIRE_ITEM;
  }
  if (!take_line(in, line, sizeof line, &too_long))
    return LOAD_WIRE_MORE;
  if (too_long)
    return load_wire_error(ev, "overlong line");
  if (kind == LOAD_REQ_FLUSH && strcmp(line, "END") == 0)
    return LOAD_WIRE_DONE;
  if (kind == LOAD_REQ_STATS) {
    if (strcmp(line, "END") == 0)
      return LOAD_WIRE_DONE; /* ev->items/bytes were set by the STAT lines (the caller keeps ev) */
    if (!g_str_has_prefix(line, "STAT "))
      return load_wire_error(ev, "%s", line);
    stats_line(p, line, ev);
    return LOAD_WIRE_MORE; /* the caller calls again at once while input is buffered */
  }
  if (kind == LOAD_REQ_PUT) {
    if (strcmp(line, "STORED") == 0)
      ev->count = 1;
    else if (strcmp(line, "NOT_STORED") == 0)
      ev->count = 0;
    else
      return load_wire_error(ev, "%s", line);
    return LOAD_WIRE_DONE;
  }
  if (kind == LOAD_REQ_GET && strcmp(line, "END") == 0) {
    ev->count = p->items;
    p->items = 0;
    return LOAD_WIRE_DONE;
  }
  if (kind == LOAD_REQ_GET && g_str_has_prefix(line, "VALUE ") && p->items == 0 &&
      parse_value_len(line, &p->len)) {
    p->stage = STAGE_VALUE;
    return mc_parse(p, in, kind, ev);
  }
  return load_wire_error(ev, "%s", line);
}

const LoadWire load_wire_memcache = {
  .name = "memcache",
  .default_port = 22133,
  .batches = FALSE,
  .put = mc_put,
  .get = mc_get,
  .confirm = NULL,
  .flush = mc_flush,
  .stats = mc_stats,
  .parse = mc_parse,
};

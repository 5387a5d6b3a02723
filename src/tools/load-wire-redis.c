/* The redis wire of kestrel-load: a list used as a queue, the way people use redis instead of a
 * queue server. LPUSH puts, RPOP gets (BRPOP with a timeout), so items come out in FIFO order.
 * Replies are RESP, parsed incrementally: `:n` (LPUSH), `$len` + data or `$-1` (RPOP),
 * `*2` + key + value or `*-1` (BRPOP), `-ERR ...` (an error). */
#include "config.h"

#include <string.h>

#include "load-wire.h"

#define MAX_LINE 512

enum { STAGE_LINE, STAGE_BULK };

static void add_bulk(struct evbuffer *out, const void *data, gsize len)
{
  evbuffer_add_printf(out, "$%" G_GSIZE_FORMAT "\r\n", len);
  evbuffer_add(out, data, len);
  evbuffer_add(out, "\r\n", 2);
}

static void redis_put(struct evbuffer *out, const gchar *queue, const guint8 *items,
                      gsize item_size, guint n)
{
  for (guint i = 0; i < n; i++) {
    evbuffer_add(out, "*3\r\n$5\r\nLPUSH\r\n", 15);
    add_bulk(out, queue, strlen(queue));
    add_bulk(out, items + i * item_size, item_size);
  }
}

static void redis_get(struct evbuffer *out, const gchar *queue, const LoadGetSpec *spec)
{
  if (spec->block_ms > 0) {
    /* BRPOP takes seconds (fractions allowed since redis 6); 0 would mean forever */
    gchar timeout[32];
    g_snprintf(timeout, sizeof timeout, "%d.%03d", spec->block_ms / 1000, spec->block_ms % 1000);
    evbuffer_add(out, "*3\r\n$5\r\nBRPOP\r\n", 15);
    add_bulk(out, queue, strlen(queue));
    add_bulk(out, timeout, strlen(timeout));
  } else {
    evbuffer_add(out, "*2\r\n$4\r\nRPOP\r\n", 14);
    add_bulk(out, queue, strlen(queue));
  }
}

static void redis_flush(struct evbuffer *out, const gchar *queue)
{
  evbuffer_add(out, "*2\r\n$3\r\nDEL\r\n", 13);
  add_bulk(out, queue, strlen(queue));
}

static void redis_stats(struct evbuffer *out, const gchar *queue)
{
  evbuffer_add(out, "*2\r\n$4\r\nLLEN\r\n", 14);
  add_bulk(out, queue, strlen(queue));
}

/* The number after a RESP type byte. */
static gboolean line_number(const gchar *line, gint64 *v)
{
  return load_wire_parse_int(line + 1, -1, G_MAXINT32, v);
}

static LoadWireStatus redis_parse(LoadWireParser *p, struct evbuffer *in, LoadReqKind kind,
                                  LoadWireEvent *ev)
{
  load_wire_drain(p, in);
  for (;;) {
    if (p->stage == STAGE_BULK) {
      if (evbuffer_get_length(in) < p->len + 2)
        return LOAD_WIRE_MORE;
      const guint8 *d = evbuffer_pullup(in, (ssize_t)(p->len + 2));
      if (d[p->len] != '\r' || d[p->len + 1] != '\n')
        return load_wire_error(ev, "bulk string not followed by CRLF");
      p->stage = STAGE_LINE;
      if (p->left > 0) { /* BRPOP's key */
        p->left--;
        evbuffer_drain(in, p->len + 2);
        continue;
      }
      p->items++;
      p->drain = p->len + 2;
      ev->data = d;
      ev->len = p->len;
      ev->id = 0;
      return LOAD_WIRE_ITEM;
    }
    if (p->items > 0) { /* the item was handed out: the reply is complete */
      ev->count = p->items;
      p->items = 0;
      return LOAD_WIRE_DONE;
    }
    gchar line[MAX_LINE];
    size_t eol = 0;
    struct evbuffer_ptr at = evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_CRLF);
    if (at.pos < 0)
      return LOAD_WIRE_MORE;
    if (at.pos == 0 || (gsize)at.pos >= sizeof line)
      return load_wire_error(ev, "bad reply line");
    evbuffer_remove(in, line, (size_t)at.pos);
    line[at.pos] = '\0';
    evbuffer_drain(in, eol);

    gint64 v = 0;
    if (line[0] == '-')
      return load_wire_error(ev, "%s", line + 1);
    if (kind != LOAD_REQ_GET && line[0] == ':') { /* LPUSH, DEL, LLEN */
      ev->count = 1;
      ev->items = line_number(line, &v) ? v : -1;
      ev->bytes = -1;
      return LOAD_WIRE_DONE;
    }
    if (kind != LOAD_REQ_GET || !line_number(line, &v))
      return load_wire_error(ev, "unexpected reply %s", line);
    if ((line[0] == '$' || line[0] == '*') && v < 0) { /* nil: nothing to pop */
      p->left = 0;
      ev->count = 0;
      return LOAD_WIRE_DONE;
    }
    if (line[0] == '*' && v == 2 && p->left == 0) {
      p->left = 1; /* key, then value */
      continue;
    }
    if (line[0] != '$')
      return load_wire_error(ev, "unexpected reply %s", line);
    p->len = (gsize)v;
    p->stage = STAGE_BULK;
  }
}

const LoadWire load_wire_redis = {
  .name = "redis",
  .default_port = 6379,
  .batches = FALSE,
  .put = redis_put,
  .get = redis_get,
  .confirm = NULL,
  .flush = redis_flush,
  .stats = redis_stats,
  .parse = redis_parse,
};

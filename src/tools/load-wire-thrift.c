/* The Thrift wire of kestrel-load (SPEC 4, docs/thrift.md): framed transport, binary protocol,
 * encoded by hand so that it runs on the same non-blocking connections as the other wires.
 * put(queue, items) -> i32, get(queue, max_items, timeout_msec, auto_abort_msec) -> list<Item>,
 * confirm(queue, ids) -> i32, flush_queue(queue), peek(queue) -> QueueInfo. A reply is parsed
 * once its whole frame is buffered; the items of a get reply are handed out one at a time. */
#include "config.h"

#include <string.h>

#include "load-wire.h"

enum { T_STOP = 0, T_BOOL = 2, T_BYTE = 3, T_DOUBLE = 4, T_I16 = 6, T_I32 = 8, T_I64 = 10,
       T_STRING = 11, T_STRUCT = 12, T_MAP = 13, T_SET = 14, T_LIST = 15 };
enum { MSG_CALL = 1, MSG_REPLY = 2, MSG_EXCEPTION = 3 };

#define VERSION_1 0x80010000u
#define MAX_FRAME (256u << 20) /* a reply bigger than this is not one of ours */
#define MAX_DEPTH 32

enum { STAGE_FRAME, STAGE_ITEMS };

/* ---- encoding */

static void add_i32(GByteArray *b, guint32 v)
{
  guint8 x[4] = { v >> 24, v >> 16, v >> 8, v };
  g_byte_array_append(b, x, 4);
}

static void add_i64(GByteArray *b, guint64 v)
{
  add_i32(b, (guint32)(v >> 32));
  add_i32(b, (guint32)v);
}

static void add_field(GByteArray *b, guint8 type, guint16 id)
{
  guint8 x[3] = { type, id >> 8, id };
  g_byte_array_append(b, x, 3);
}

static void add_binary(GByteArray *b, const void *data, gsize len)
{
  add_i32(b, (guint32)len);
  g_byte_array_append(b, data, (guint)len);
}

/* A call message up to its first argument; the frame length is patched by send_frame. */
static GByteArray *begin_call(const gchar *method, const gchar *queue)
{
  GByteArray *b = g_byte_array_new();
  add_i32(b, 0); /* frame length */
  add_i32(b, VERSION_1 | MSG_CALL);
  add_binary(b, method, strlen(method));
  add_i32(b, 0); /* seqid: replies come back in order on one connection */
  if (queue) {
    add_field(b, T_STRING, 1);
    add_binary(b, queue, strlen(queue));
  }
  return b;
}

static void send_frame(struct evbuffer *out, GByteArray *b)
{
  guint8 stop = T_STOP;
  g_byte_array_append(b, &stop, 1);
  guint32 n = b->len - 4;
  b->data[0] = n >> 24, b->data[1] = n >> 16, b->data[2] = n >> 8, b->data[3] = n;
  evbuffer_add(out, b->data, b->len);
  g_byte_array_free(b, TRUE);
}

static void thrift_put(struct evbuffer *out, const gchar *queue, const guint8 *items,
                       gsize item_size, guint n)
{
  GByteArray *b = begin_call("put", queue);
  guint8 elem = T_STRING;
  add_field(b, T_LIST, 2);
  g_byte_array_append(b, &elem, 1);
  add_i32(b, n);
  for (guint i = 0; i < n; i++)
    add_binary(b, items + i * item_size, item_size);
  add_field(b, T_I32, 3);
  add_i32(b, 0); /* expiration_msec: never */
  send_frame(out, b);
}

static void thrift_get(struct evbuffer *out, const gchar *queue, const LoadGetSpec *spec)
{
  GByteArray *b = begin_call("get", queue);
  add_field(b, T_I32, 2);
  add_i32(b, MAX(spec->max_items, 1));
  add_field(b, T_I32, 3);
  add_i32(b, (guint32)MAX(spec->block_ms, 0));
  add_field(b, T_I32, 4);
  add_i32(b, (guint32)MAX(spec->auto_abort_ms, 0));
  send_frame(out, b);
}

static void thrift_confirm(struct evbuffer *out, const gchar *queue, const gint64 *ids, guint n)
{
  GByteArray *b = begin_call("confirm", queue);
  guint8 elem = T_I64;
  add_field(b, T_SET, 2);
  g_byte_array_append(b, &elem, 1);
  add_i32(b, n);
  for (guint i = 0; i < n; i++)
    add_i64(b, (guint64)ids[i]);
  send_frame(out, b);
}

static void thrift_flush(struct evbuffer *out, const gchar *queue)
{
  send_frame(out, begin_call("flush_queue", queue));
}

static void thrift_stats(struct evbuffer *out, const gchar *queue)
{
  send_frame(out, begin_call("peek", queue));
}

/* ---- decoding: a cursor over one whole frame; every read is bounds-checked */

typedef struct {
  const guint8 *p;
  gsize len, pos;
  gboolean bad;
} Cursor;

static const guint8 *take(Cursor *c, gsize n)
{
  if (c->bad || n > c->len - c->pos) {
    c->bad = TRUE;
    return NULL;
  }
  const guint8 *at = c->p + c->pos;
  c->pos += n;
  return at;
}

static guint8 rd_byte(Cursor *c)
{
  const guint8 *x = take(c, 1);
  return x ? x[0] : 0;
}

static guint32 rd_i32(Cursor *c)
{
  const guint8 *x = take(c, 4);
  return x ? (guint32)x[0] << 24 | (guint32)x[1] << 16 | (guint32)x[2] << 8 | x[3] : 0;
}

static gint64 rd_i64(Cursor *c)
{
  guint64 hi = rd_i32(c);
  return (gint64)(hi << 32 | rd_i32(c));
}

static const guint8 *rd_binary(Cursor *c, gsize *len)
{
  gint32 n = (gint32)rd_i32(c);
  if (n < 0) {
    c->bad = TRUE;
    return NULL;
  }
  *len = (gsize)n;
  return take(c, (gsize)n);
}

static void skip(Cursor *c, guint8 type, guint depth);

static void skip_struct(Cursor *c, guint depth)
{
  for (;;) {
    guint8 type = rd_byte(c);
    if (c->bad || type == T_STOP)
      return;
    take(c, 2);
    skip(c, type, depth + 1);
  }
}

static void skip(Cursor *c, guint8 type, guint depth)
{
  static const guint8 fixed[16] = { [T_BOOL] = 1, [T_BYTE] = 1, [T_DOUBLE] = 8, [T_I16] = 2,
                                    [T_I32] = 4, [T_I64] = 8 };
  gsize len = 0;
  if (depth > MAX_DEPTH || type >= 16) {
    c->bad = TRUE;
    return;
  }
  if (fixed[type]) {
    take(c, fixed[type]);
  } else if (type == T_STRING) {
    rd_binary(c, &len);
  } else if (type == T_STRUCT) {
    skip_struct(c, depth);
  } else if (type == T_LIST || type == T_SET || type == T_MAP) {
    guint8 kt = rd_byte(c), vt = type == T_MAP ? rd_byte(c) : 0;
    gint32 n = (gint32)rd_i32(c);
    if (n < 0)
      c->bad = TRUE;
    for (gint32 i = 0; i < n && !c->bad; i++) {
      skip(c, kt, depth + 1);
      if (type == T_MAP)
        skip(c, vt, depth + 1);
    }
  } else {
    c->bad = TRUE;
  }
}

/* TApplicationException { 1: string message, 2: i32 type } */
static LoadWireStatus exception(Cursor *c, LoadWireEvent *ev)
{
  const guint8 *msg = NULL;
  gsize len = 0;
  for (;;) {
    guint8 type = rd_byte(c);
    if (c->bad || type == T_STOP)
      break;
    guint16 id = (guint16)(rd_byte(c) << 8);
    id |= rd_byte(c);
    if (id == 1 && type == T_STRING)
      msg = rd_binary(c, &len);
    else
      skip(c, type, 1);
  }
  return load_wire_error(ev, "application exception: %.*s", msg ? (int)MIN(len, 100) : 7,
                         msg ? (const gchar *)msg : "unknown");
}

/* QueueInfo: 2 items, 3 bytes. */
static void queue_info(Cursor *c, LoadWireEvent *ev)
{
  for (;;) {
    guint8 type = rd_byte(c);
    if (c->bad || type == T_STOP)
      return;
    guint16 id = (guint16)(rd_byte(c) << 8);
    id |= rd_byte(c);
    if ((id == 2 || id == 3) && type == T_I64)
      *(id == 2 ? &ev->items : &ev->bytes) = rd_i64(c);
    else
      skip(c, type, 1);
  }
}

/* The reply's header and result struct up to its success field (id 0). For a get, leaves the
 * cursor at the first list element with p->left set; otherwise fills ev. */
static LoadWireStatus begin_reply(LoadWireParser *p, Cursor *c, LoadReqKind kind,
                                  LoadWireEvent *ev)
{
  guint32 version = rd_i32(c);
  gsize name_len = 0;
  rd_binary(c, &name_len);
  rd_i32(c); /* seqid */
  if (c->bad || (version & 0xffff0000u) != VERSION_1)
    return load_wire_error(ev, "not a strict binary Thrift message");
  if ((version & 0xff) == MSG_EXCEPTION)
    return exception(c, ev);
  if ((version & 0xff) != MSG_REPLY)
    return load_wire_error(ev, "message type %u is not a reply", version & 0xff);
  for (;;) {
    guint8 type = rd_byte(c);
    if (c->bad)
      break;
    if (type == T_STOP) {
      if (kind == LOAD_REQ_FLUSH) /* void: an empty result */
        return LOAD_WIRE_DONE;
      break;
    }
    guint16 id = (guint16)(rd_byte(c) << 8);
    id |= rd_byte(c);
    if (id != 0) {
      skip(c, type, 1); /* a declared exception: Kestrel's IDL has none */
      continue;
    }
    if ((kind == LOAD_REQ_PUT || kind == LOAD_REQ_CONFIRM) && type == T_I32) {
      gint32 n = (gint32)rd_i32(c);
      ev->count = (guint)MAX(n, 0);
      return c->bad ? load_wire_error(ev, "truncated reply") : LOAD_WIRE_DONE;
    }
    if (kind == LOAD_REQ_STATS && type == T_STRUCT) {
      queue_info(c, ev);
      return c->bad ? load_wire_error(ev, "truncated reply") : LOAD_WIRE_DONE;
    }
    if (kind == LOAD_REQ_GET && type == T_LIST) {
      guint8 elem = rd_byte(c);
      gint32 n = (gint32)rd_i32(c);
      if (c->bad || elem != T_STRUCT || n < 0)
        return load_wire_error(ev, "bad item list");
      p->left = (guint)n;
      p->items = 0;
      p->stage = STAGE_ITEMS;
      return LOAD_WIRE_MORE;
    }
    break;
  }
  return load_wire_error(ev, "reply without the expected result");
}

/* Item { 1: binary data, 2: i64 id } */
static gboolean next_item(Cursor *c, LoadWireEvent *ev)
{
  ev->data = NULL;
  ev->len = 0;
  ev->id = 0;
  for (;;) {
    guint8 type = rd_byte(c);
    if (c->bad || type == T_STOP)
      break;
    guint16 id = (guint16)(rd_byte(c) << 8);
    id |= rd_byte(c);
    if (id == 1 && type == T_STRING)
      ev->data = rd_binary(c, &ev->len);
    else if (id == 2 && type == T_I64)
      ev->id = rd_i64(c);
    else
      skip(c, type, 1);
  }
  if (!ev->data && !c->bad)
    ev->data = (const guint8 *)""; /* an item without data is an empty item */
  return !c->bad;
}

static LoadWireStatus thrift_parse(LoadWireParser *p, struct evbuffer *in, LoadReqKind kind,
                                   LoadWireEvent *ev)
{
  if (p->stage == STAGE_FRAME) {
    guint8 head[4];
    if (evbuffer_copyout(in, head, 4) < 4)
      return LOAD_WIRE_MORE;
    p->len = (gsize)head[0] << 24 | (gsize)head[1] << 16 | (gsize)head[2] << 8 | head[3];
    if (p->len > MAX_FRAME)
      return load_wire_error(ev, "reply frame of %" G_GSIZE_FORMAT " bytes", p->len);
    if (evbuffer_get_length(in) < p->len + 4)
      return LOAD_WIRE_MORE;
  }
  Cursor c = { .p = evbuffer_pullup(in, (ssize_t)(p->len + 4)) + 4, .len = p->len, .pos = p->pos };
  LoadWireStatus st = LOAD_WIRE_MORE;
  if (p->stage == STAGE_FRAME) {
    st = begin_reply(p, &c, kind, ev);
    p->pos = c.pos;
    if (st != LOAD_WIRE_MORE)
      goto frame_done;
  }
  if (p->left > 0) {
    if (!next_item(&c, ev))
      return load_wire_error(ev, "truncated item");
    p->pos = c.pos;
    p->left--;
    p->items++;
    return LOAD_WIRE_ITEM; /* its bytes stay in the frame until the frame is done */
  }
  rd_byte(&c); /* the result struct's stop */
  ev->count = p->items;
  st = c.bad ? load_wire_error(ev, "truncated reply") : LOAD_WIRE_DONE;
frame_done:
  if (st == LOAD_WIRE_DONE) {
    evbuffer_drain(in, p->len + 4);
    p->stage = STAGE_FRAME;
    p->pos = 0;
    p->items = 0;
  }
  return st;
}

const LoadWire load_wire_thrift = {
  .name = "thrift",
  .default_port = 2229,
  .batches = TRUE,
  .put = thrift_put,
  .get = thrift_get,
  .confirm = thrift_confirm,
  .flush = thrift_flush,
  .stats = thrift_stats,
  .parse = thrift_parse,
};

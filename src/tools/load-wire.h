/* kestrel-load wire protocols: how a put, get or confirm request is encoded onto a connection's
 * output and how its reply is parsed, incrementally, from the input. The engine (load-engine.c)
 * knows nothing of the protocol; one implementation per protocol: memcache (load-wire-memcache.c),
 * Thrift framed/binary (load-wire-thrift.c) and redis RESP lists (load-wire-redis.c). */
#ifndef KESTREL_LOAD_WIRE_H
#define KESTREL_LOAD_WIRE_H

#include <event2/buffer.h>
#include <glib.h>

/* flush and stats are the blocking set-up and monitoring requests of load-admin.c */
typedef enum { LOAD_REQ_PUT, LOAD_REQ_GET, LOAD_REQ_CONFIRM, LOAD_REQ_FLUSH, LOAD_REQ_STATS } LoadReqKind;

/* memcache reliable-read options of a get (SPEC 2), in the order they are written */
enum { LOAD_GET_CLOSE = 1, LOAD_GET_OPEN = 2, LOAD_GET_ABORT = 4 };

typedef struct {
  guint max_items;    /* items one call may return (wires that batch; else 1) */
  gint block_ms;      /* wait up to this long for items; < 0: do not wait */
  gint auto_abort_ms; /* > 0: open reads, confirmed by id (Thrift) */
  guint xact;         /* LOAD_GET_* (memcache) */
} LoadGetSpec;

typedef enum {
  LOAD_WIRE_MORE,  /* the reply is not all buffered yet */
  LOAD_WIRE_ITEM,  /* an item of a get reply: ev->data/len/id, valid until the next parse call */
  LOAD_WIRE_DONE,  /* the reply is complete: ev->count */
  LOAD_WIRE_ERROR, /* an unexpected reply: ev->message; the connection cannot be trusted */
} LoadWireStatus;

typedef struct {
  const guint8 *data;
  gsize len;
  gint64 id;            /* open-read id (Thrift), else 0 */
  guint count;          /* put: items stored; get: items returned; confirm: ids confirmed */
  gint64 items, bytes;  /* stats: the queue's items and bytes (-1: unknown) */
  gchar message[128];
} LoadWireEvent;

/* Where a connection is within the reply at the head of its queue; zeroed on (re)connect. */
typedef struct {
  gint stage;
  gsize len;    /* length of the value block or frame being read */
  gsize pos;    /* cursor in a Thrift frame */
  gsize drain;  /* bytes of input consumed but not yet dropped (an item handed out lives there) */
  guint items;  /* items of this reply so far */
  guint left;   /* Thrift: list elements still to read; redis: bulk strings to skip */
  const gchar *queue; /* stats: the queue asked about */
} LoadWireParser;

typedef struct {
  const gchar *name;
  guint default_port;
  /* TRUE: one put or get call carries many items, so a rollup is items per call; FALSE: a
   * rollup is that many single-item requests pipelined. */
  gboolean batches;
  /* n items of item_size bytes each, laid out one after the other (n is 1 unless batches) */
  void (*put)(struct evbuffer *out, const gchar *queue, const guint8 *items, gsize item_size,
              guint n);
  void (*get)(struct evbuffer *out, const gchar *queue, const LoadGetSpec *spec);
  /* NULL when the protocol has no reliable reads by id */
  void (*confirm)(struct evbuffer *out, const gchar *queue, const gint64 *ids, guint n);
  void (*flush)(struct evbuffer *out, const gchar *queue);  /* empty the queue */
  void (*stats)(struct evbuffer *out, const gchar *queue);  /* its items and bytes */
  LoadWireStatus (*parse)(LoadWireParser *p, struct evbuffer *in, LoadReqKind kind,
                          LoadWireEvent *ev);
} LoadWire;

extern const LoadWire load_wire_memcache;
extern const LoadWire load_wire_thrift;
extern const LoadWire load_wire_redis;

/* Sets ev->message (printf-style) and returns LOAD_WIRE_ERROR. */
LoadWireStatus load_wire_error(LoadWireEvent *ev, const gchar *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Drops the bytes a previous ITEM left in the input. */
void load_wire_drain(LoadWireParser *p, struct evbuffer *in);
/* A decimal number of a reply: digits, a leading '-' only where min < 0, nothing else, within
 * min..max. Every number read off the wire goes through here. */
gboolean load_wire_parse_int(const gchar *s, gint64 min, gint64 max, gint64 *out);

#endif

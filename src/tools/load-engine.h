/* kestrel-load engine: worker threads (one libevent event_base each) driving non-blocking
 * connections. Each connection keeps a ring of requests in flight; their encoding and the
 * incremental parsing of replies belong to the run's wire protocol (load-wire.h), and what to
 * send next is decided by the connection's role (load-roles.c). Requests a callback queues are
 * written before it returns (load-socket.h); a write event waits only on a full socket. */
#ifndef KESTREL_LOAD_ENGINE_H
#define KESTREL_LOAD_ENGINE_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <glib.h>

#include "load-discovery.h"
#include "load-histogram.h"
#include "load-wire.h"

#define LOAD_RING 1024 /* most requests one connection may have in flight (rollup cap) */

typedef struct LoadRun LoadRun;
typedef struct LoadWorker LoadWorker;
typedef struct LoadConn LoadConn;

typedef struct {
  LoadReqKind kind;
  guint64 seq;      /* put: its first item; otherwise role-defined */
  guint count;      /* put: items, seq + i * stride for i < count */
  guint stride;
  gint64 sent_ns;   /* monotonic send time, for latency */
  guint flags;      /* role-defined (e.g. this get confirms an open read) */
} LoadReq;

typedef struct {
  void (*start)(LoadConn *c);                                       /* connected */
  void (*stored)(LoadConn *c, const LoadReq *r, guint stored);     /* the first `stored` were */
  void (*value)(LoadConn *c, const LoadReq *r, const guint8 *data, gsize len, gint64 id);
  void (*got)(LoadConn *c, const LoadReq *r, guint items);         /* get finished */
  void (*confirmed)(LoadConn *c, const LoadReq *r, guint n);       /* ids still open, now gone */
  void (*closed)(LoadConn *c);                                      /* lost the connection */
  void (*tick)(LoadConn *c);                                        /* every few ms */
} LoadRole;

/* Shared by every thread of one phase; counters are atomics, the rest is read-only while running. */
struct LoadRun {
  const LoadWire *wire;
  struct sockaddr_in addr;
  gchar **queues;        /* queue names; item seq goes to queues[seq % n_queues] */
  guint n_queues;
  gsize item_size;
  guint64 slots;         /* sequence numbers 0..slots-1 exist in this whole command */
  _Atomic guint8 *seen;  /* per sequence: times delivered (saturating) */
  guint8 *stored;        /* per sequence: 1 once STORED (written by the owning producer only) */
  guint32 *owner;        /* per sequence: producer id expected in the header */

  atomic_uint_fast64_t puts, refused, gets, empty_gets, distinct, duplicated, corrupted,
    errors, stored_total, drops, kills;
  atomic_int producers_left;
  atomic_int_fast64_t producers_done_ns; /* 0 while producers run */
  atomic_int_fast64_t last_progress_ns;
  atomic_bool abort;

  gboolean wait_for_all;   /* consumers stop only when every stored item came, or idle */
  gint64 idle_ns;          /* consumers give up after this long without progress */
  gint64 deadline_ns;      /* whole phase gives up at this monotonic time */
  gboolean verbose;
  LoadDiscovery *discovery; /* --zookeeper: servers from the server sets, else `addr` */
  guint32 seed;            /* with a connection's id, seeds its GRand */
  guint next_id;           /* connection ids are unique within the run */

  guint threads;           /* worker threads per phase (at most one per connection) */
  GPtrArray *pending;      /* connections of the next phase */
  LoadWorker *workers;
  guint n_workers;
  atomic_int workers_left;
  atomic_int_fast64_t phase_end_ns; /* set by the last worker to finish */
  LoadHistogram put_hist, get_hist; /* merged after the phase */
};

struct LoadWorker {
  LoadRun *run;
  struct event_base *base;
  struct event *tick;
  GPtrArray *conns;
  guint active;
  pthread_t thread;
  LoadHistogram put_hist, get_hist;
  gint64 read_ns; /* while a read callback runs: when its replies were read (one clock read for
                   * every reply parsed and request sent in it); 0 otherwise */
};

struct LoadConn {
  LoadWorker *w;
  LoadRun *run;
  const LoadRole *role;
  evutil_socket_t fd;        /* -1 without a socket */
  struct evbuffer *in, *out; /* replies read, requests not yet written */
  struct event *read_ev;     /* persistent while connected */
  struct event *write_ev;    /* pending while connecting, or while the socket is full */
  gboolean connecting, write_pending;
  gint dial_errno;           /* the dial failed at once; write_ev reports it from the loop */
  gboolean reparse;          /* read_ev was activated to parse replies still buffered */
  guint socket_gen;          /* bumped when the socket goes, so callbacks notice */
  guint id;                  /* the order it was added in, over the whole run */
  LoadReq ring[LOAD_RING];
  guint head, count;
  LoadWireParser parser;
  gboolean kill_after_write; /* close as soon as the request left (many-clients -k) */
  gboolean finished;
  guint reconnects;
  /* --zookeeper: the server it uses (-1 none), the membership it last looked at, and whether
   * it is to move once nothing is in flight */
  gint server;
  struct sockaddr_in addr;
  guint seen_generation;
  gboolean writes;        /* a producer: dials from the write set */
  gboolean moving;        /* to `target` */
  gint target;
  struct sockaddr_in target_addr;
  guint64 arrived_seq;    /* --zookeeper reliable reads: the item just opened, counted once */
  gboolean arrived_valid; /* the close of its read is confirmed */
  struct event *redial;
  struct event *timer;
  void (*timer_fn)(LoadConn *c);

  /* role state */
  gchar *queue;            /* consumers: their queue; producers: their only queue, or NULL */
  guint64 next, end;       /* producers: seq range still to send */
  guint32 producer_id;
  guint depth;             /* requests kept in flight */
  guint batch;             /* items per put or get call (wires that batch) */
  guint sleep_ms;          /* producers: pause between puts */
  gint block_ms;           /* consumers: t= option, < 0 none */
  gboolean xact;           /* consumers: open/close reads */
  gboolean have_open;      /* an open read awaits confirmation */
  guint64 open_seq;
  gint64 open_id;          /* Thrift: id of the open read */
  gboolean open_valid;     /* the open read was an intact item */
  gboolean stopping;
  gdouble kill_pct;        /* many-clients: drop the connection before reading the reply */
  gdouble drop_pct;        /* leaky-reader: never confirm this read */
  gint auto_abort_ms;      /* leaky-reader over Thrift: open reads by id */
  GRand *rand;             /* its random choices: a stream of its own, from run->seed and id */
  guint8 *scratch;         /* items being encoded */
  gsize scratch_size;
};

gint64 load_now_ns(void);

/* A run lives for the whole command; its counters and per-item arrays span all phases. */
LoadRun *load_run_new(const LoadWire *wire, const gchar *host, guint port, guint threads,
                      guint64 slots, gsize item_size, GError **error);
/* Adds a connection running `role` to the next phase. */
LoadConn *load_run_add(LoadRun *run, const LoadRole *role);
/* Connects the phase's connections and runs them on worker threads; returns at once. */
void load_run_start(LoadRun *run, gint64 deadline_ns);
gboolean load_run_finished(LoadRun *run);
/* Waits for the phase to end, merges latency histograms into the run, frees the connections. */
void load_run_join(LoadRun *run);
void load_run_free(LoadRun *run);

/* For roles. */
/* Puts items seq, seq + stride, ... (count of them; 1 unless the wire batches), generated with
 * the connection's producer id, as one request. */
void load_conn_put(LoadConn *c, const gchar *queue, guint64 seq, guint count, guint stride);
void load_conn_get(LoadConn *c, const gchar *queue, const LoadGetSpec *spec, guint flags,
                   guint64 seq);
void load_conn_confirm(LoadConn *c, const gchar *queue, const gint64 *ids, guint n, guint flags,
                       guint64 seq);
void load_conn_finish(LoadConn *c);    /* done: close and stop counting it */
void load_conn_reconnect(LoadConn *c); /* drop the socket (aborting what the server holds), dial again */
/* --zookeeper: nothing in flight any more; go to the server the membership now gives. */
void load_conn_move(LoadConn *c);
void load_conn_after(LoadConn *c, guint ms, void (*cb)(LoadConn *c));
/* Notes that an item was stored or delivered now (for --idle-ms); c's thread's clock. */
void load_progress(LoadRun *run, const LoadConn *c);

#endif

/* The connection and hub structs and the functions connection.c, connection-io.c (the socket
 * side), connection-wait.c (the engine side) and connection-move.c (moving between loops)
 * share. Private to those four files. */
#pragma once
#include "connection.h"
#include "input-buffer.h"

/* Bytes of small replies a loop gathers for the connection it serves before they go to that
 * connection's evbuffer. */
#define KQ_REPLY_STAGE 16384

struct _KqConnectionHub {
  KqServer *server;
  struct event_base *base;
  struct event *wake;        /* activated by engine callbacks from any thread */
  GMutex lock;               /* guards the ready list and the conn fields marked "hub lock" */
  GCond cond;                /* signalled when a wait completion arrives (used at shutdown) */
  KqConnection *ready_head;  /* hub lock */
  KqConnection *ready_tail;  /* hub lock */
  KqConnection *live;        /* open connections, loop thread only */
  guint64 activity;          /* see kq_connection_hub_activity; loop thread only */
  gboolean stopping;         /* closing everything: no new requests are started */
  KqServerStats stats;       /* this thread's request counters (atomic) */
  const KqConnectionPlacement *placement; /* NULL: connections stay */
  gpointer placement_data;
  guint index;               /* for logs: the loop's number, from 1 */
  guint8 *spare_input;       /* the connections' spare input block (input-buffer.h) */
  GPtrArray *bulk;           /* its bulk connections (not owned); loop thread only */
  guint small_turns;         /* turns of small requests since a bulk connection had one */
  /* Small replies (kq_connection_write) of the connection being served, `reply_owner`: they
   * come after everything in its `out`, and are sent from here when its `out` and `unsent`
   * are empty, with no evbuffer chain made and freed per reply. One per loop, since a
   * connection's replies are sent (or moved to its `out`) before its callback returns. */
  KqConnection *reply_owner;
  gsize reply_len;
  char reply[KQ_REPLY_STAGE];
};

struct _KqConnection {
  KqConnectionHub *hub;
  KqServer *server;
  const KqFrontEnd *fe;
  /* The socket, read and written directly: libevent's bufferevents would ask the kernel how
   * much is readable (an ioctl) before every read. */
  evutil_socket_t fd;        /* -1 once the socket is closed */
  struct event *read_event;  /* persistent; its timeout is clientTimeout */
  struct event *write_event; /* pending while `unsent` holds bytes */
  struct event *resume_event; /* next turn for buffered requests; made on first use */
  KqInputBuffer in;          /* bytes read and not yet handled */
  gsize in_whole;            /* the length of the request at its front when known, else 0 */
  struct evbuffer *unsent;   /* replies the socket has not taken yet */
  guint64 id;
  gint refs;
  KqConnection *prev, *next; /* hub->live */
  gboolean closing;          /* no more requests; socket freed once replies are out */
  gboolean in_process;       /* a front-end callback is running: defer closing */
  gsize unprocessed;         /* input bytes already counted in bytes_read */
  guint turn_requests;       /* requests still to be handled this turn */
  gsize turn_bytes;          /* bytes of requests still to be handled this turn */
  gboolean resume_pending;   /* its turn ended with requests buffered: resume_event is set */
  gboolean peer_done;        /* the client shut down its side: close once its input is handled */
  gboolean read_paused;      /* the socket is not being read (see conn_update_reading) */
  gboolean output_blocked;   /* requests wait until the client reads its replies */
  gboolean refuse_writes;    /* connectionLimitRefuseWrites was exceeded at accept */
  gboolean refuse_reads;     /* connectionLimitRefuseReads was exceeded at accept */
  gboolean bulk;             /* has carried a message of KQ_BULK_MESSAGE_BYTES or more */

  /* The parked request. wait_queue != NULL while an engine callback may still come. */
  gboolean parked;
  KqWaiter *waiter;
  KqQueue *wait_queue;
  KqRemoveFlags wait_flags;

  /* Replies are built here and written straight to the socket once a batch of requests is
   * done: one write, no write event, in the common case. What the socket does not take at
   * once goes to `unsent` and the write event finishes the job. */
  struct evbuffer *out;
  /* Replies held until writes are durable. */
  struct evbuffer *held;
  /* FALSE: `out`, `unsent` and `held` are empty, and the replies of a turn are all staged, so
   * their lengths need not be asked (see conn_output_length). Set by whatever may add to
   * them, cleared when a turn ends with all three empty. */
  gboolean buffered;
  guint durable_pending;

  GArray *open_reads;        /* OpenRead, oldest first; NULL until the first open */

  /* Completions (hub lock). */
  KqConnection *ready_next;
  gboolean in_ready;
  gboolean wait_done;
  KqItem *wait_item;
  guint durable_done;
  /* Taken out of the above by the loop (loop thread only). */
  KqConnection *run_next;
  gboolean run_wait;
  KqItem *run_item;
  guint run_durable;

  guint64 bytes_in, bytes_out;
  gchar peer[64];
  guint8 *data;              /* front-end state, right after this struct */
};

/* connection.c */
void conn_hub_add(KqConnectionHub *hub, KqConnection *conn);
void conn_hub_remove(KqConnection *conn);
KqConnection *conn_ref(KqConnection *conn);
void conn_unref(KqConnection *conn);
void conn_close_now(KqConnection *conn);

/* connection-io.c */
void conn_spill_replies(KqConnection *conn);
/* Bytes of `conn`'s replies in its hub's stage. */
static inline gsize
conn_staged_length(KqConnection *conn)
{
  return conn->hub->reply_owner == conn ? conn->hub->reply_len : 0;
}
gsize conn_enter(KqConnection *conn);
void conn_leave(KqConnection *conn, gsize output_mark);
void conn_want_write(KqConnection *conn);
void conn_maybe_finish_close(KqConnection *conn);
void conn_process_input(KqConnection *conn);
void conn_watch_reads(KqConnection *conn);
void conn_read_event_cb(evutil_socket_t fd, short what, void *arg);
void conn_write_event_cb(evutil_socket_t fd, short what, void *arg);

/* connection-move.c */
void conn_becomes_bulk(KqConnection *conn);
/* A request of `bytes` was taken, or replies of `bytes` were written in one go (one turn's, or
 * a parked request's): a connection's first large message makes it bulk. Inline: every
 * request passes here. */
static inline void
conn_note_message(KqConnection *conn, gsize bytes)
{
  if (G_UNLIKELY(!conn->bulk && bytes >= KQ_BULK_MESSAGE_BYTES))
    conn_becomes_bulk(conn);
}
gboolean conn_move_if_placed(KqConnection *conn);
void conn_forget_bulk(KqConnection *conn);
gboolean conn_loop_has_priorities(struct event_base *base);
void conn_match_priority(KqConnection *conn);
void conn_bulk_joins_hub(KqConnection *conn);
void conn_bulk_leaves_hub(KqConnection *conn);
void conn_bulk_turn(KqConnection *conn);
void conn_small_turn(KqConnection *conn);
/* One of `conn`'s socket or resume events runs: for a bulk connection, that is its turn. */
static inline void
conn_event_runs(KqConnection *conn)
{
  if (G_UNLIKELY(conn->bulk))
    conn_bulk_turn(conn);
}

/* connection-wait.c */
gboolean conn_cancel_waiter(KqConnection *conn);
void conn_abandon_wait(KqConnection *conn);
void hub_run_completions(KqConnectionHub *hub);
void hub_wake_cb(evutil_socket_t fd, short what, void *arg);

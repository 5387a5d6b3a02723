/* kestrel-load engine: threads, connections, requests in flight (see load-engine.h). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "load-engine.h"
#include "load-item.h"
#include "load-socket.h"

#define TICK_MS 10
#define STEPS_PER_READ 4096 /* replies parsed per callback before yielding to other sockets */

gint64 load_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (gint64)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

LoadRun *load_run_new(const LoadWire *wire, const gchar *host, guint port, guint threads,
                      guint64 slots, gsize item_size, GError **error)
{
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((guint16)port) };
  const gchar *ip = g_strcmp0(host, "localhost") == 0 ? "127.0.0.1" : host;
  if (inet_pton(AF_INET, ip, &addr.sin_addr) != 1) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                "host '%s' is not an IPv4 address", host);
    return NULL;
  }
  LoadRun *run = g_new0(LoadRun, 1);
  run->wire = wire;
  run->addr = addr;
  run->threads = threads ? threads : 1;
  run->slots = slots;
  run->item_size = item_size;
  run->seen = g_new0(_Atomic guint8, slots ? slots : 1);
  run->stored = g_new0(guint8, slots ? slots : 1);
  run->owner = g_new0(guint32, slots ? slots : 1);
  run->pending = g_ptr_array_new();
  run->idle_ns = (gint64)2 * 1000000000;
  load_progress(run, NULL);
  return run;
}

LoadConn *load_run_add(LoadRun *run, const LoadRole *role)
{
  LoadConn *c = g_new0(LoadConn, 1);
  c->run = run;
  c->role = role;
  c->id = run->next_id++;
  c->depth = 1;
  c->block_ms = -1;
  c->fd = -1;
  c->server = -1;
  c->target = -1;
  c->in = evbuffer_new();
  c->out = evbuffer_new();
  /* the same seed gives every connection the same choices: a run can be repeated */
  guint32 key[2] = { run->seed, c->id };
  c->rand = g_rand_new_with_seed_array(key, G_N_ELEMENTS(key));
  g_ptr_array_add(run->pending, c);
  return c;
}

/* Drops the socket and everything buffered or in flight on it. */
static void close_socket(LoadConn *c)
{
  if (c->read_ev) {
    event_free(c->read_ev);
    c->read_ev = NULL;
  }
  if (c->write_ev) {
    event_free(c->write_ev);
    c->write_ev = NULL;
  }
  if (c->fd >= 0) {
    close(c->fd);
    c->fd = -1;
  }
  evbuffer_drain(c->in, evbuffer_get_length(c->in));
  evbuffer_drain(c->out, evbuffer_get_length(c->out));
  c->socket_gen++;
  c->connecting = FALSE;
  c->write_pending = FALSE;
  c->reparse = FALSE;
  c->kill_after_write = FALSE;
  c->count = 0;
  c->head = 0;
  memset(&c->parser, 0, sizeof c->parser);
}

static void dial(LoadConn *c);

static void redial_cb(evutil_socket_t fd, short what, void *arg)
{
  LoadConn *c = arg;
  if (!c->finished)
    dial(c);
}

static void conn_lost(LoadConn *c)
{
  close_socket(c);
  if (c->finished)
    return;
  if (c->run->discovery && !c->stopping && !atomic_load(&c->run->abort)) {
    /* a cluster member went away or is not there yet: dial again shortly, to the server the
     * membership gives then; what the old socket held, the server gives back */
    struct timeval tv = { 0, 50 * 1000 };
    c->reconnects++;
    c->have_open = FALSE;
    c->moving = FALSE;
    c->target = -1;
    if (!c->redial)
      c->redial = evtimer_new(c->w->base, redial_cb, c);
    evtimer_add(c->redial, &tv);
    return;
  }
  if (c->role->closed)
    c->role->closed(c);
  else {
    atomic_fetch_add(&c->run->errors, 1);
    load_conn_finish(c);
  }
}

/* The socket failed or the server closed it (err 0). */
static void socket_failed(LoadConn *c, const gchar *what, int err)
{
  if (c->run->verbose)
    g_printerr("kestrel-load: connection %u %s (%s)\n", c->id, what,
               err ? g_strerror(err) : "by the server");
  conn_lost(c);
}

/* The time a request leaves or a reply arrives: the read callback's clock while one runs. */
static gint64 worker_now_ns(const LoadWorker *w)
{
  return w->read_ns ? w->read_ns : load_now_ns();
}

void load_progress(LoadRun *run, const LoadConn *c)
{
  atomic_store(&run->last_progress_ns, c ? worker_now_ns(c->w) : load_now_ns());
}

static LoadReq *push_req(LoadConn *c, LoadReqKind kind, guint64 seq, guint flags)
{
  g_assert(c->count < LOAD_RING); /* roles keep depth <= LOAD_RING */
  LoadReq *r = &c->ring[(c->head + c->count) % LOAD_RING];
  r->kind = kind;
  r->seq = seq;
  r->count = 1;
  r->stride = 1;
  r->flags = flags;
  r->sent_ns = worker_now_ns(c->w);
  c->count++;
  return r;
}

static LoadReq pop_req(LoadConn *c)
{
  LoadReq r = c->ring[c->head];
  c->head = (c->head + 1) % LOAD_RING;
  c->count--;
  return r;
}

void load_conn_put(LoadConn *c, const gchar *queue, guint64 seq, guint count, guint stride)
{
  gsize size = c->run->item_size;
  if (c->scratch_size < size * count) {
    c->scratch_size = size * count;
    c->scratch = g_realloc(c->scratch, c->scratch_size);
  }
  for (guint i = 0; i < count; i++)
    load_item_fill(c->scratch + i * size, size, seq + (guint64)i * stride, c->producer_id);
  c->run->wire->put(c->out, queue, c->scratch, size, count);
  LoadReq *r = push_req(c, LOAD_REQ_PUT, seq, 0);
  r->count = count;
  r->stride = stride;
}

void load_conn_get(LoadConn *c, const gchar *queue, const LoadGetSpec *spec, guint flags,
                   guint64 seq)
{
  c->run->wire->get(c->out, queue, spec);
  push_req(c, LOAD_REQ_GET, seq, flags);
}

void load_conn_confirm(LoadConn *c, const gchar *queue, const gint64 *ids, guint n, guint flags,
                       guint64 seq)
{
  c->run->wire->confirm(c->out, queue, ids, n);
  push_req(c, LOAD_REQ_CONFIRM, seq, flags);
}

/* An unexpected reply: the connection cannot be trusted any more; its role decides what the
 * loss means (a producer still has to count itself done, so consumers can stop). */
static void protocol_error(LoadConn *c, const gchar *what)
{
  if (c->run->verbose)
    g_printerr("kestrel-load: connection %u: unexpected reply: %s\n", c->id, what);
  conn_lost(c);
}

/* Parses one step of the reply at the head of the ring (an item, or the end of the reply).
 * FALSE when more bytes are needed or the connection went away. */
static gboolean parse_one(LoadConn *c)
{
  LoadWorker *w = c->w;
  LoadWireEvent ev = { 0 };
  LoadReq *head = &c->ring[c->head];
  guint gen = c->socket_gen;

  switch (c->run->wire->parse(&c->parser, c->in, head->kind, &ev)) {
  case LOAD_WIRE_MORE:
    return FALSE;
  case LOAD_WIRE_ERROR:
    protocol_error(c, ev.message);
    return FALSE;
  case LOAD_WIRE_ITEM:
    c->role->value(c, head, ev.data, ev.len, ev.id); /* value() never closes */
    return TRUE;
  case LOAD_WIRE_DONE:
    break;
  }
  LoadReq r = pop_req(c);
  gint64 took = worker_now_ns(w) - r.sent_ns;
  switch (r.kind) {
  case LOAD_REQ_PUT:
    if (ev.count > r.count) {
      protocol_error(c, "put stored more items than it sent");
      return FALSE;
    }
    if (ev.count > 0)
      load_hist_record(&w->put_hist, (guint64)took);
    c->role->stored(c, &r, ev.count);
    break;
  case LOAD_REQ_GET:
    if (ev.count > 0)
      load_hist_record(&w->get_hist, (guint64)took);
    c->role->got(c, &r, ev.count);
    break;
  case LOAD_REQ_CONFIRM:
    c->role->confirmed(c, &r, ev.count);
    break;
  default:
    protocol_error(c, "reply to a request the engine never sends");
    return FALSE;
  }
  return c->socket_gen == gen;
}

/* Hands the buffered replies to the role, at most `limit` steps; FALSE when the socket went
 * away meanwhile. */
static gboolean parse_replies(LoadConn *c, guint limit)
{
  guint gen = c->socket_gen;
  for (guint steps = 0; steps < limit; steps++) {
    if (c->count == 0) {
      if (evbuffer_get_length(c->in) > 0) {
        protocol_error(c, "reply without a request");
        return FALSE;
      }
      return TRUE;
    }
    if (!parse_one(c))
      return c->socket_gen == gen;
  }
  /* more replies buffered: come back after other sockets had their turn */
  c->reparse = TRUE;
  event_active(c->read_ev, EV_READ, 1);
  return TRUE;
}

/* Writes what is queued. A write event is pending only while the socket is full. FALSE when
 * the socket went away (a write error, or the kill of many-clients -k). */
static gboolean conn_write(LoadConn *c)
{
  int err = 0;
  switch (load_socket_write(c->fd, c->out, &err)) {
  case LOAD_SOCKET_BLOCKED:
    if (!c->write_pending) {
      event_add(c->write_ev, NULL);
      c->write_pending = TRUE;
    }
    return TRUE;
  case LOAD_SOCKET_ERROR:
    socket_failed(c, "closed", err);
    return FALSE;
  default:
    break;
  }
  if (c->write_pending) {
    event_del(c->write_ev);
    c->write_pending = FALSE;
  }
  if (c->kill_after_write) {
    c->kill_after_write = FALSE;
    atomic_fetch_add(&c->run->kills, 1);
    load_conn_reconnect(c);
    return FALSE;
  }
  return TRUE;
}

/* Writes what the role queued, unless the socket cannot take it yet: then it goes once
 * connected, or when the pending write event says there is room (asking a full socket again
 * would only fail with EAGAIN). */
static gboolean conn_flush(LoadConn *c)
{
  if (c->connecting || c->fd < 0 || c->write_pending)
    return TRUE;
  return conn_write(c);
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
  LoadConn *c = arg;
  LoadWorker *w = c->w;
  LoadSocketStatus st = LOAD_SOCKET_DONE;
  int err = 0;
  if (c->reparse)
    c->reparse = FALSE; /* woken by parse_replies: the socket is read on its own wake-up */
  else
    st = load_socket_read(c->fd, c->in, &err);
  w->read_ns = load_now_ns();
  gboolean ended = st == LOAD_SOCKET_EOF || st == LOAD_SOCKET_ERROR;
  /* replies that came before the end count: parse them all first */
  if (parse_replies(c, ended ? G_MAXUINT : STEPS_PER_READ)) {
    if (ended)
      socket_failed(c, "closed", err);
    else
      conn_flush(c);
  }
  w->read_ns = 0;
}

static void connected(LoadConn *c)
{
  int err = c->fd < 0 ? c->dial_errno : load_socket_connected(c->fd);
  if (err) {
    socket_failed(c, "could not connect", err);
    return;
  }
  c->connecting = FALSE;
  event_del(c->write_ev);
  c->read_ev = event_new(c->w->base, c->fd, EV_READ | EV_PERSIST, read_cb, c);
  event_add(c->read_ev, NULL);
  guint gen = c->socket_gen;
  c->role->start(c);
  if (c->socket_gen == gen)
    conn_flush(c);
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
  LoadConn *c = arg;
  if (c->connecting)
    connected(c);
  else
    conn_write(c);
}

static void dial(LoadConn *c)
{
  LoadRun *run = c->run;
  const struct sockaddr_in *addr = &run->addr;
  c->connecting = TRUE;
  if (run->discovery) {
    c->seen_generation = load_discovery_generation(run->discovery);
    if (c->target >= 0) {
      c->server = c->target;
      c->addr = c->target_addr;
    } else if (!load_discovery_pick(run->discovery, c->writes ? LOAD_SET_WRITE : LOAD_SET_READ,
                                    c->id, &c->server, &c->addr)) {
      c->server = -1;
    }
    c->target = -1;
    c->moving = FALSE;
    addr = &c->addr;
  }
  if (run->discovery && c->server < 0) {
    c->fd = -1;
    c->dial_errno = EHOSTUNREACH; /* the set is empty: fails from the loop, dials again */
  } else {
    c->fd = load_socket_dial(addr, &c->dial_errno);
  }
  c->write_ev = event_new(c->w->base, c->fd, EV_WRITE | EV_PERSIST, write_cb, c);
  if (c->fd < 0)
    event_active(c->write_ev, EV_WRITE, 1); /* fail from the loop, like a connect refused later */
  else
    event_add(c->write_ev, NULL);
}

void load_conn_reconnect(LoadConn *c)
{
  close_socket(c);
  c->reconnects++;
  c->have_open = FALSE; /* the server aborts what this socket held */
  dial(c);
}

void load_conn_move(LoadConn *c)
{
  close_socket(c);
  c->have_open = FALSE;
  dial(c);
}

/* --zookeeper: after a membership change, does this connection belong elsewhere now? */
static void check_membership(LoadConn *c)
{
  LoadDiscovery *d = c->run->discovery;
  guint gen = load_discovery_generation(d);
  gint server;
  struct sockaddr_in addr;
  if (gen == c->seen_generation || c->fd < 0 || c->connecting)
    return;
  c->seen_generation = gen;
  if (load_discovery_pick(d, c->writes ? LOAD_SET_WRITE : LOAD_SET_READ, c->id,
                          &server, &addr) && server != c->server) {
    c->moving = TRUE; /* the role moves it once nothing is in flight */
    c->target = server;
    c->target_addr = addr;
  }
  if (c->moving && c->count == 0 && !c->have_open)
    load_conn_move(c);
}

void load_conn_finish(LoadConn *c)
{
  if (c->finished)
    return;
  c->finished = TRUE;
  close_socket(c);
  if (c->timer)
    event_del(c->timer);
  if (--c->w->active == 0)
    event_base_loopexit(c->w->base, NULL);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
  LoadConn *c = arg;
  if (c->finished || c->fd < 0 || !c->timer_fn)
    return;
  guint gen = c->socket_gen;
  c->timer_fn(c);
  if (c->socket_gen == gen)
    conn_flush(c);
}

void load_conn_after(LoadConn *c, guint ms, void (*cb)(LoadConn *c))
{
  if (!c->timer)
    c->timer = evtimer_new(c->w->base, timer_cb, c);
  c->timer_fn = cb;
  struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
  evtimer_add(c->timer, &tv);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
  LoadWorker *w = arg;
  LoadRun *run = w->run;
  if (run->deadline_ns && load_now_ns() > run->deadline_ns)
    atomic_store(&run->abort, TRUE);
  gboolean abort = atomic_load(&run->abort);
  for (guint i = 0; i < w->conns->len; i++) {
    LoadConn *c = g_ptr_array_index(w->conns, i);
    if (c->finished)
      continue;
    if (abort) {
      load_conn_finish(c);
      continue;
    }
    if (run->discovery) {
      guint gen = c->socket_gen;
      check_membership(c);
      if (c->socket_gen != gen)
        continue;
    }
    if (c->role->tick) {
      guint gen = c->socket_gen;
      c->role->tick(c);
      if (c->socket_gen == gen)
        conn_flush(c);
    }
  }
}

static void *worker_main(void *arg)
{
  LoadWorker *w = arg;
  if (w->active > 0)
    event_base_dispatch(w->base);
  if (atomic_fetch_sub(&w->run->workers_left, 1) == 1)
    atomic_store(&w->run->phase_end_ns, load_now_ns());
  return NULL;
}

void load_run_start(LoadRun *run, gint64 deadline_ns)
{
  guint n = MIN(run->threads, run->pending->len);
  run->deadline_ns = deadline_ns;
  run->n_workers = n;
  run->workers = g_new0(LoadWorker, n ? n : 1);
  atomic_store(&run->workers_left, (int)n);
  atomic_store(&run->phase_end_ns, load_now_ns()); /* a phase without connections ends at once */
  load_progress(run, NULL);
  for (guint i = 0; i < n; i++) {
    LoadWorker *w = &run->workers[i];
    w->run = run;
    w->base = event_base_new();
    w->conns = g_ptr_array_new();
    w->tick = event_new(w->base, -1, EV_PERSIST, tick_cb, w);
    struct timeval tv = { 0, TICK_MS * 1000 };
    event_add(w->tick, &tv);
  }
  for (guint i = 0; i < run->pending->len; i++) {
    LoadConn *c = g_ptr_array_index(run->pending, i);
    c->w = &run->workers[i % n];
    g_ptr_array_add(c->w->conns, c);
    c->w->active++;
  }
  for (guint i = 0; i < run->pending->len; i++)
    dial(g_ptr_array_index(run->pending, i));
  g_ptr_array_set_size(run->pending, 0);
  for (guint i = 0; i < n; i++)
    pthread_create(&run->workers[i].thread, NULL, worker_main, &run->workers[i]);
}

gboolean load_run_finished(LoadRun *run)
{
  return atomic_load(&run->workers_left) <= 0;
}

static void conn_free(LoadConn *c)
{
  close_socket(c);
  evbuffer_free(c->in);
  evbuffer_free(c->out);
  if (c->timer)
    event_free(c->timer);
  if (c->redial)
    event_free(c->redial);
  g_rand_free(c->rand);
  g_free(c->scratch);
  g_free(c->queue);
  g_free(c);
}

void load_run_join(LoadRun *run)
{
  for (guint i = 0; i < run->n_workers; i++) {
    LoadWorker *w = &run->workers[i];
    pthread_join(w->thread, NULL);
    load_hist_merge(&run->put_hist, &w->put_hist);
    load_hist_merge(&run->get_hist, &w->get_hist);
    for (guint j = 0; j < w->conns->len; j++)
      conn_free(g_ptr_array_index(w->conns, j));
    g_ptr_array_free(w->conns, TRUE);
    event_free(w->tick);
    event_base_free(w->base);
  }
  g_free(run->workers);
  run->workers = NULL;
  run->n_workers = 0;
}

void load_run_free(LoadRun *run)
{
  if (!run)
    return;
  for (guint i = 0; i < run->pending->len; i++)
    conn_free(g_ptr_array_index(run->pending, i));
  g_ptr_array_free(run->pending, TRUE);
  g_strfreev(run->queues);
  g_free((gpointer)run->seen);
  g_free(run->stored);
  g_free(run->owner);
  g_free(run);
}

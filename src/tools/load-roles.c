/* Connection roles of kestrel-load (see load-roles.h). */
#include "config.h"

#include <stdio.h>

#include "load-item.h"
#include "load-roles.h"

enum {
  REQ_CONFIRMS = 1, /* this get closes an open read whose item was intact (seq in the request) */
  REQ_CLOSES = 2,   /* consumer: this get closes the open read */
};

/* --zookeeper reliable reads count an item when its read is confirmed: one open when its
 * server stops comes again from that server after its restart, and counts then. */
static gboolean counts_on_confirm(const LoadConn *c)
{
  return c->run->discovery != NULL && c->xact;
}

/* ---- shared bookkeeping */

static gboolean verify(LoadRun *run, const guint8 *data, gsize len, guint64 *seq)
{
  guint32 producer = 0;
  if (!load_item_check(data, len, run->item_size, seq, &producer) || *seq >= run->slots ||
      run->owner[*seq] != producer) {
    atomic_fetch_add(&run->corrupted, 1);
    if (run->verbose)
      g_printerr("kestrel-load: corrupted item (%" G_GSIZE_FORMAT " bytes)\n", len);
    return FALSE;
  }
  return TRUE;
}

static void count_delivery(LoadRun *run, const LoadConn *c, guint64 seq)
{
  /* saturate at 255 instead of wrapping to "unseen"; a compare-exchange, since a wrap undone
   * afterwards lets a concurrent delivery see 0 and count the item as new again */
  guint8 prev = atomic_load(&run->seen[seq]);
  while (prev < 255 && !atomic_compare_exchange_weak(&run->seen[seq], &prev, (guint8)(prev + 1)))
    ;
  if (prev == 0) {
    atomic_fetch_add(&run->distinct, 1);
    load_progress(run, c);
  } else {
    /* not progress: a server that hands out the same item forever (memcached keeps returning a
     * key's value) must not keep the consumers reading until --timeout */
    atomic_fetch_add(&run->duplicated, 1);
  }
}

/* A consumer may stop once producers are done and it saw everything stored, or the queue was
 * found empty by a get sent after the last put was acknowledged, or nothing happened for idle_ns. */
static gboolean should_stop(LoadRun *run, const LoadReq *r, gboolean hit)
{
  if (atomic_load(&run->abort))
    return TRUE;
  if (atomic_load(&run->producers_left) > 0)
    return FALSE;
  if (atomic_load(&run->distinct) >= atomic_load(&run->stored_total))
    return TRUE;
  gint64 done = atomic_load(&run->producers_done_ns);
  if (!run->wait_for_all && r && !hit && r->sent_ns > done)
    return TRUE;
  gint64 last = MAX(atomic_load(&run->last_progress_ns), done);
  return load_now_ns() - last > run->idle_ns;
}

void load_phase_producers(LoadRun *run, guint producers)
{
  atomic_store(&run->producers_left, (int)producers);
  atomic_store(&run->producers_done_ns, producers ? G_MAXINT64 : load_now_ns());
}

/* ---- producer */

static void producer_done(LoadConn *c)
{
  if (atomic_fetch_sub(&c->run->producers_left, 1) == 1)
    atomic_store(&c->run->producers_done_ns, load_now_ns());
  load_conn_finish(c);
}

/* A wire that batches takes the next `batch` items in one put per queue (items go round-robin
 * over the queues, so a queue's share is every n_queues-th, unless the producer has a queue of
 * its own); the others get one item per put. */
static void producer_put_batch(LoadConn *c)
{
  LoadRun *run = c->run;
  guint64 first = c->next, n = MIN((guint64)c->batch, c->end - c->next);
  c->next += n;
  if (c->queue) {
    load_conn_put(c, c->queue, first, (guint)n, 1);
    return;
  }
  for (guint q = 0; q < run->n_queues && q < n; q++) {
    guint64 seq = first + q;
    guint count = (guint)((n - q + run->n_queues - 1) / run->n_queues);
    load_conn_put(c, run->queues[seq % run->n_queues], seq, count, run->n_queues);
  }
}

static void producer_fill(LoadConn *c)
{
  LoadRun *run = c->run;
  if (run->wire->batches) {
    if (c->count == 0 && c->next < c->end)
      producer_put_batch(c);
    return;
  }
  while (c->count < c->depth && c->next < c->end) {
    guint64 seq = c->next++;
    load_conn_put(c, c->queue ? c->queue : run->queues[seq % run->n_queues], seq, 1, 1);
    if (c->sleep_ms)
      break; /* paced: one put per pause */
  }
}

static void producer_start(LoadConn *c)
{
  if (c->next >= c->end)
    producer_done(c);
  else
    producer_fill(c);
}

static void producer_stored(LoadConn *c, const LoadReq *r, guint stored)
{
  LoadRun *run = c->run;
  for (guint i = 0; i < stored; i++)
    run->stored[r->seq + (guint64)i * r->stride] = 1;
  atomic_fetch_add(&run->puts, stored);
  atomic_fetch_add(&run->stored_total, stored);
  atomic_fetch_add(&run->refused, r->count - stored);
  load_progress(run, c);
  if (run->discovery)
    load_discovery_count(run->discovery, c->server, TRUE, stored);
  if (c->moving) {
    if (c->count == 0)
      load_conn_move(c); /* its server left the write set: continue on another */
    return;
  }
  if (c->next < c->end) {
    if (!c->sleep_ms)
      producer_fill(c);
    else if (c->count == 0)
      load_conn_after(c, c->sleep_ms, producer_fill);
  } else if (c->count == 0) {
    producer_done(c);
  }
}

static void producer_value(LoadConn *c, const LoadReq *r, const guint8 *data, gsize len,
                           gint64 id) {}
static void producer_got(LoadConn *c, const LoadReq *r, guint items) {}
static void producer_confirmed(LoadConn *c, const LoadReq *r, guint n) {}

static void producer_closed(LoadConn *c)
{
  atomic_fetch_add(&c->run->errors, 1);
  producer_done(c);
}

static const LoadRole producer_role = {
  .start = producer_start, .stored = producer_stored, .value = producer_value,
  .got = producer_got, .confirmed = producer_confirmed, .closed = producer_closed,
};

LoadConn *load_add_producer(LoadRun *run, const gchar *queue, guint64 first, guint64 count,
                            guint32 producer_id, guint depth, guint sleep_ms)
{
  LoadConn *c = load_run_add(run, &producer_role);
  c->writes = TRUE;
  c->queue = g_strdup(queue);
  c->next = first;
  c->end = first + count;
  c->producer_id = producer_id;
  /* depth = rollup: requests in flight, or items per put where the wire batches */
  c->depth = CLAMP(depth, 1, LOAD_RING);
  c->batch = c->depth;
  c->sleep_ms = sleep_ms;
  for (guint64 s = first; s < first + count; s++)
    run->owner[s] = producer_id;
  return c;
}

/* ---- consumer */

static void consumer_send(LoadConn *c)
{
  LoadGetSpec spec = { .max_items = c->batch, .block_ms = c->block_ms };
  if (c->xact)
    spec.xact = c->have_open ? LOAD_GET_CLOSE | LOAD_GET_OPEN : LOAD_GET_OPEN;
  if (c->kill_pct > 0 && g_rand_double_range(c->rand, 0, 100) < c->kill_pct)
    c->kill_after_write = TRUE; /* write_cb drops the socket once this left */
  load_conn_get(c, c->queue, &spec, c->have_open ? REQ_CLOSES : 0, 0);
}

static void send_close(LoadConn *c, guint flags, guint64 seq)
{
  LoadGetSpec spec = { .max_items = 1, .block_ms = -1, .xact = LOAD_GET_CLOSE };
  load_conn_get(c, c->queue, &spec, flags, seq);
}

static void consumer_start(LoadConn *c)
{
  if (c->stopping || should_stop(c->run, NULL, FALSE)) {
    load_conn_finish(c);
    return;
  }
  while (c->count < c->depth && !c->kill_after_write)
    consumer_send(c);
}

static void consumer_value(LoadConn *c, const LoadReq *r, const guint8 *data, gsize len,
                           gint64 id)
{
  guint64 seq = 0;
  atomic_fetch_add(&c->run->gets, 1);
  gboolean valid = verify(c->run, data, len, &seq);
  if (counts_on_confirm(c)) {
    c->arrived_seq = seq;
    c->arrived_valid = valid;
    return;
  }
  if (valid) {
    count_delivery(c->run, c, seq);
    if (c->run->discovery)
      load_discovery_count(c->run->discovery, c->server, FALSE, 1);
  }
}

static void consumer_got(LoadConn *c, const LoadReq *r, guint items)
{
  gboolean hit = items > 0;
  if (!hit)
    atomic_fetch_add(&c->run->empty_gets, 1);
  if (counts_on_confirm(c)) {
    if ((r->flags & REQ_CLOSES) && c->have_open && c->open_valid) {
      count_delivery(c->run, c, c->open_seq);
      load_discovery_count(c->run->discovery, c->server, FALSE, 1);
    }
    c->open_seq = c->arrived_seq;
    c->open_valid = hit && c->arrived_valid;
    c->arrived_valid = FALSE;
  }
  if (c->xact)
    c->have_open = hit; /* close/open confirmed the old read and maybe opened a new one */
  if (c->moving && !c->stopping) {
    /* its server left the read set (or the spread changed): confirm, then move */
    if (c->count > 0)
      return;
    if (c->xact && c->have_open)
      send_close(c, REQ_CLOSES, 0);
    else
      load_conn_move(c);
    return;
  }
  if (!c->stopping && should_stop(c->run, r, hit))
    c->stopping = TRUE;
  if (c->stopping) {
    if (c->count > 0)
      return;
    if (c->xact && c->have_open)
      send_close(c, REQ_CLOSES, 0);
    else
      load_conn_finish(c);
    return;
  }
  if (!c->kill_after_write)
    consumer_send(c);
}

static void consumer_closed(LoadConn *c)
{
  atomic_fetch_add(&c->run->errors, 1);
  load_conn_finish(c);
}

static const LoadRole consumer_role = {
  .start = consumer_start, .stored = NULL, .value = consumer_value,
  .got = consumer_got, .confirmed = NULL, .closed = consumer_closed,
};

LoadConn *load_add_consumer(LoadRun *run, const gchar *queue, guint depth, gint block_ms,
                            gboolean xact, gdouble kill_pct)
{
  LoadConn *c = load_run_add(run, &consumer_role);
  c->queue = g_strdup(queue);
  /* depth = rollup: gets in flight, or items per get where the wire batches */
  c->depth = xact || kill_pct > 0 ? 1 : CLAMP(depth, 1, LOAD_RING);
  c->batch = 1;
  if (run->wire->batches) {
    c->batch = c->depth;
    c->depth = 1;
  }
  c->block_ms = block_ms;
  c->xact = xact;
  c->kill_pct = kill_pct;
  return c;
}

/* ---- leaky reader */

static void leaky_send(LoadConn *c)
{
  LoadGetSpec spec = { .max_items = 1, .block_ms = MAX(c->block_ms, 0),
                       .xact = c->have_open ? LOAD_GET_CLOSE | LOAD_GET_OPEN : LOAD_GET_OPEN };
  gboolean confirms = c->have_open && c->open_valid;
  load_conn_get(c, c->queue, &spec, confirms ? REQ_CONFIRMS : 0, c->open_seq);
}

static void leaky_value(LoadConn *c, const LoadReq *r, const guint8 *data, gsize len, gint64 id)
{
  atomic_fetch_add(&c->run->gets, 1);
  c->open_valid = verify(c->run, data, len, &c->open_seq);
}

static void leaky_got(LoadConn *c, const LoadReq *r, guint items)
{
  LoadRun *run = c->run;
  gboolean hit = items > 0;
  if (r->flags & REQ_CONFIRMS)
    count_delivery(run, c, r->seq); /* delivered = confirmed */
  if (!hit)
    atomic_fetch_add(&run->empty_gets, 1);
  c->have_open = hit;
  if (!c->stopping && should_stop(run, r, hit))
    c->stopping = TRUE;
  if (c->stopping) {
    if (c->have_open) {
      send_close(c, c->open_valid ? REQ_CONFIRMS : 0, c->open_seq);
      c->have_open = FALSE;
    } else if (c->count == 0) {
      load_conn_finish(c);
    }
    return;
  }
  if (hit && g_rand_double_range(c->rand, 0, 100) < c->drop_pct) {
    atomic_fetch_add(&run->drops, 1);
    gboolean by_abort = g_rand_boolean(c->rand);
    if (run->verbose)
      g_printerr("leaky-reader: reader %u drops item %" G_GUINT64_FORMAT " (%s)\n", c->id,
                 c->open_seq, by_abort ? "abort" : "disconnect");
    c->have_open = FALSE;
    LoadGetSpec abort = { .max_items = 1, .block_ms = -1, .xact = LOAD_GET_ABORT };
    if (by_abort)
      load_conn_get(c, c->queue, &abort, 0, 0);
    else
      load_conn_reconnect(c);
    return;
  }
  leaky_send(c);
}

static void leaky_id_send(LoadConn *c);

static void leaky_start(LoadConn *c)
{
  if (should_stop(c->run, NULL, FALSE))
    load_conn_finish(c);
  else if (c->run->wire->confirm)
    leaky_id_send(c);
  else
    leaky_send(c);
}


static const LoadRole leaky_role = {
  .start = leaky_start, .stored = NULL, .value = leaky_value,
  .got = leaky_got, .confirmed = NULL, .closed = consumer_closed,
};

/* ---- leaky reader with reliable reads by id (Thrift): each get opens its item with
 * auto_abort_msec; the item is confirmed by id unless the read is dropped. A dropped read is left
 * open for the auto-abort to hand back, and the reader reconnects, so that the read no longer
 * counts against maxOpenTransactions on this connection. */

static void leaky_id_send(LoadConn *c)
{
  LoadGetSpec spec = { .max_items = 1, .block_ms = MAX(c->block_ms, 0),
                       .auto_abort_ms = c->auto_abort_ms };
  c->have_open = FALSE;
  load_conn_get(c, c->queue, &spec, 0, 0);
}

static void leaky_id_value(LoadConn *c, const LoadReq *r, const guint8 *data, gsize len,
                           gint64 id)
{
  atomic_fetch_add(&c->run->gets, 1);
  c->open_valid = verify(c->run, data, len, &c->open_seq);
  c->have_open = TRUE;
  c->open_id = id;
}

static void leaky_id_next(LoadConn *c, const LoadReq *r, gboolean hit)
{
  if (!c->stopping && should_stop(c->run, r, hit))
    c->stopping = TRUE;
  if (c->stopping)
    load_conn_finish(c);
  else
    leaky_id_send(c);
}

static void leaky_id_got(LoadConn *c, const LoadReq *r, guint items)
{
  LoadRun *run = c->run;
  if (items == 0) {
    atomic_fetch_add(&run->empty_gets, 1);
    leaky_id_next(c, r, FALSE);
    return;
  }
  if (items > 1 || c->open_id == 0) { /* asked for one open read: anything else is wrong */
    if (run->verbose)
      g_printerr("leaky-reader: reader %u: get returned %u items, id %" G_GINT64_FORMAT "\n",
                 c->id, items, c->open_id);
    atomic_fetch_add(&run->errors, 1);
    load_conn_finish(c);
    return;
  }
  if (!c->stopping && g_rand_double_range(c->rand, 0, 100) < c->drop_pct) {
    atomic_fetch_add(&run->drops, 1);
    if (run->verbose)
      g_printerr("leaky-reader: reader %u drops item %" G_GUINT64_FORMAT " (left to auto-abort)\n",
                 c->id, c->open_seq);
    c->have_open = FALSE;
    load_conn_reconnect(c);
    return;
  }
  gint64 id = c->open_id;
  load_conn_confirm(c, c->queue, &id, 1, c->open_valid ? REQ_CONFIRMS : 0, c->open_seq);
}

static void leaky_id_confirmed(LoadConn *c, const LoadReq *r, guint n)
{
  if (n == 1 && (r->flags & REQ_CONFIRMS))
    count_delivery(c->run, c, r->seq); /* delivered = confirmed */
  else if (n == 0 && c->run->verbose)
    g_printerr("leaky-reader: reader %u confirmed item %" G_GUINT64_FORMAT " after its auto-abort\n",
               c->id, r->seq);
  c->have_open = FALSE;
  leaky_id_next(c, r, TRUE);
}

static const LoadRole leaky_id_role = {
  .start = leaky_start, .stored = NULL, .value = leaky_id_value,
  .got = leaky_id_got, .confirmed = leaky_id_confirmed, .closed = consumer_closed,
};

LoadConn *load_add_leaky(LoadRun *run, const gchar *queue, gint block_ms, gdouble drop_pct,
                         gint auto_abort_ms)
{
  gboolean by_id = run->wire->confirm != NULL;
  LoadConn *c = load_run_add(run, by_id ? &leaky_id_role : &leaky_role);
  c->queue = g_strdup(queue);
  c->block_ms = block_ms;
  c->xact = TRUE;
  c->drop_pct = drop_pct;
  c->auto_abort_ms = auto_abort_ms;
  return c;
}

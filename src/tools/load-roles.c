/* Connection roles of kestrel-load (see load-roles.h). */
#include "config.h"

#include <stdio.h>

#include "load-item.h"
#include "load-roles.h"

enum {
  REQ_CONFIRMS = 1, /* this get closes an open read whose item was intact (seq in the request) */
};

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

static void count_delivery(LoadRun *run, guint64 seq)
{
  /* saturate at 255 instead of wrapping to "unseen"; a compare-exchange, since a wrap undone
   * afterwards lets a concurrent delivery see 0 and count the item as new again */
  guint8 prev = atomic_load(&run->seen[seq]);
  while (prev < 255 && !atomic_compare_exchange_weak(&run->seen[seq], &prev, (guint8)(prev + 1)))
    ;
  if (prev == 0) {
    atomic_fetch_add(&run->distinct, 1);
    load_progress(run);
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

static void producer_fill(LoadConn *c)
{
  LoadRun *run = c->run;
  while (c->count < c->depth && c->next < c->end) {
    guint64 seq = c->next++;
    load_item_fill(c->scratch, run->item_size, seq, c->producer_id);
    load_conn_set(c, run->queues[seq % run->n_queues], c->scratch, run->item_size, seq);
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

static void producer_stored(LoadConn *c, const LoadReq *r, gboolean ok)
{
  LoadRun *run = c->run;
  if (ok) {
    run->stored[r->seq] = 1;
    atomic_fetch_add(&run->puts, 1);
    atomic_fetch_add(&run->stored_total, 1);
  } else {
    atomic_fetch_add(&run->refused, 1);
  }
  load_progress(run);
  if (c->next < c->end) {
    if (!c->sleep_ms)
      producer_fill(c);
    else if (c->count == 0)
      load_conn_after(c, c->sleep_ms, producer_fill);
  } else if (c->count == 0) {
    producer_done(c);
  }
}

static void producer_value(LoadConn *c, const LoadReq *r, const guint8 *data, gsize len) {}
static void producer_got(LoadConn *c, const LoadReq *r, gboolean hit, gboolean error) {}

static void producer_closed(LoadConn *c)
{
  atomic_fetch_add(&c->run->errors, 1);
  producer_done(c);
}

static const LoadRole producer_role = {
  .start = producer_start, .stored = producer_stored, .value = producer_value,
  .got = producer_got, .closed = producer_closed,
};

LoadConn *load_add_producer(LoadRun *run, guint64 first, guint64 count, guint32 producer_id,
                            guint depth, guint sleep_ms)
{
  LoadConn *c = load_run_add(run, &producer_role);
  c->next = first;
  c->end = first + count;
  c->producer_id = producer_id;
  c->depth = CLAMP(depth, 1, LOAD_RING);
  c->sleep_ms = sleep_ms;
  c->scratch = g_malloc(run->item_size);
  for (guint64 s = first; s < first + count; s++)
    run->owner[s] = producer_id;
  return c;
}

/* ---- consumer */

static void consumer_send(LoadConn *c)
{
  gchar opts[64] = "";
  gsize n = 0;
  if (c->block_ms >= 0)
    n += (gsize)g_snprintf(opts + n, sizeof opts - n, "/t=%d", c->block_ms);
  if (c->xact)
    g_snprintf(opts + n, sizeof opts - n, "%s", c->have_open ? "/close/open" : "/open");
  if (c->kill_pct > 0 && g_rand_double_range(c->rand, 0, 100) < c->kill_pct)
    c->kill_after_write = TRUE; /* write_cb drops the socket once this left */
  load_conn_get(c, c->queue, opts, 0, 0);
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

static void consumer_value(LoadConn *c, const LoadReq *r, const guint8 *data, gsize len)
{
  guint64 seq = 0;
  atomic_fetch_add(&c->run->gets, 1);
  if (verify(c->run, data, len, &seq))
    count_delivery(c->run, seq);
}

static void consumer_got(LoadConn *c, const LoadReq *r, gboolean hit, gboolean error)
{
  if (!hit)
    atomic_fetch_add(&c->run->empty_gets, 1);
  if (c->xact)
    c->have_open = hit; /* close/open confirmed the old read and maybe opened a new one */
  if (!c->stopping && should_stop(c->run, r, hit))
    c->stopping = TRUE;
  if (c->stopping) {
    if (c->count > 0)
      return;
    if (c->xact && c->have_open)
      load_conn_get(c, c->queue, "/close", 0, 0);
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
  .got = consumer_got, .closed = consumer_closed,
};

LoadConn *load_add_consumer(LoadRun *run, const gchar *queue, guint depth, gint block_ms,
                            gboolean xact, gdouble kill_pct)
{
  LoadConn *c = load_run_add(run, &consumer_role);
  c->queue = g_strdup(queue);
  c->depth = xact || kill_pct > 0 ? 1 : CLAMP(depth, 1, LOAD_RING);
  c->block_ms = block_ms;
  c->xact = xact;
  c->kill_pct = kill_pct;
  return c;
}

/* ---- leaky reader */

static void leaky_send(LoadConn *c)
{
  gchar opts[64];
  g_snprintf(opts, sizeof opts, "/t=%d%s", MAX(c->block_ms, 0),
             c->have_open ? "/close/open" : "/open");
  gboolean confirms = c->have_open && c->open_valid;
  load_conn_get(c, c->queue, opts, confirms ? REQ_CONFIRMS : 0, c->open_seq);
}

static void leaky_value(LoadConn *c, const LoadReq *r, const guint8 *data, gsize len)
{
  atomic_fetch_add(&c->run->gets, 1);
  c->open_valid = verify(c->run, data, len, &c->open_seq);
}

static void leaky_got(LoadConn *c, const LoadReq *r, gboolean hit, gboolean error)
{
  LoadRun *run = c->run;
  if (r->flags & REQ_CONFIRMS)
    count_delivery(run, r->seq); /* delivered = confirmed */
  if (!hit)
    atomic_fetch_add(&run->empty_gets, 1);
  c->have_open = hit;
  if (!c->stopping && should_stop(run, r, hit))
    c->stopping = TRUE;
  if (c->stopping) {
    if (c->have_open) {
      load_conn_get(c, c->queue, "/close", c->open_valid ? REQ_CONFIRMS : 0, c->open_seq);
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
    if (by_abort)
      load_conn_get(c, c->queue, "/abort", 0, 0);
    else
      load_conn_reconnect(c);
    return;
  }
  leaky_send(c);
}

static void leaky_start(LoadConn *c)
{
  if (should_stop(c->run, NULL, FALSE))
    load_conn_finish(c);
  else
    leaky_send(c);
}

static const LoadRole leaky_role = {
  .start = leaky_start, .stored = NULL, .value = leaky_value,
  .got = leaky_got, .closed = consumer_closed,
};

LoadConn *load_add_leaky(LoadRun *run, const gchar *queue, gint block_ms, gdouble drop_pct)
{
  LoadConn *c = load_run_add(run, &leaky_role);
  c->queue = g_strdup(queue);
  c->block_ms = block_ms;
  c->xact = TRUE;
  c->drop_pct = drop_pct;
  return c;
}

/* Blocking reads (SPEC 1.4): waiters served in arrival order, timeouts, cancel, wake-ups by
 * add, abort and close, callbacks free to call back into the engine, and many threads adding
 * and removing at once. Every wait for a callback has a deadline; nothing sleeps to
 * synchronise. */
#include "engine-test.h"
#include <stdio.h>

#define DEADLINE_S 10

/* What a waiter callback saw. */
typedef struct {
  GMutex lock;
  GCond cond;
  gint calls;
  KqItem *item;        /* last item delivered (owned) */
  gboolean got_null;
  GThread *thread;     /* thread the callback ran on */
  gint64 when_us;      /* monotonic time of the last call */
  /* optional re-entry into the engine from inside the callback */
  KqCollection *collection;
  gboolean reenter;
  KqWaiter *self;
  gboolean cancel_result;
} Catch;

static void catch_init(Catch *c)
{
  memset(c, 0, sizeof(*c));
  g_mutex_init(&c->lock);
  g_cond_init(&c->cond);
}

static void catch_clear(Catch *c)
{
  g_clear_pointer(&c->item, kq_item_unref);
  g_mutex_clear(&c->lock);
  g_cond_clear(&c->cond);
}

static void on_item(KqQueue *q, KqItem *item, gpointer user_data)
{
  Catch *c = user_data;
  if (c->reenter) {
    /* every public call on the same queue and collection must work from here */
    GError *error = NULL;
    KqQueueStats s;
    kq_queue_get_stats(q, &s);
    if (kq_queue_add(q, "inner", 5, 0, &error)) {
      KqItem *inner = kq_queue_remove(q, KQ_REMOVE_PEEK, NULL);
      g_assert_nonnull(inner);
      kq_item_unref(inner);
      inner = kq_queue_remove(q, KQ_REMOVE_OPEN, NULL);
      g_assert_nonnull(inner);
      g_assert_true(kq_queue_abort(q, inner->xid, NULL));
      kq_item_unref(inner);
      inner = kq_queue_remove(q, KQ_REMOVE_PLAIN, NULL);
      g_assert_nonnull(inner);
      kq_item_unref(inner);
    } else {
      g_assert_error(error, KQ_ERROR, KQ_ERROR_CLOSED);
      g_clear_error(&error);
    }
    if (c->collection != NULL) {
      KqQueue *other = kq_collection_get(c->collection, "other", TRUE, &error);
      if (other != NULL) {
        kq_collection_add(c->collection, "other", "o", 1, 0, NULL);
        kq_queue_unref(other);
      }
      g_clear_error(&error);
    }
    if (c->self != NULL)
      c->cancel_result = kq_waiter_cancel(c->self);  /* running: FALSE */
  }
  g_mutex_lock(&c->lock);
  c->calls++;
  g_clear_pointer(&c->item, kq_item_unref);
  c->item = item;
  c->got_null = item == NULL;
  c->thread = g_thread_self();
  c->when_us = g_get_monotonic_time();
  g_cond_broadcast(&c->cond);
  g_mutex_unlock(&c->lock);
}

/* Wait until the callback ran `calls` times; fails the test after DEADLINE_S. */
static void catch_wait(Catch *c, gint calls)
{
  gint64 deadline = g_get_monotonic_time() + DEADLINE_S * G_USEC_PER_SEC;
  g_mutex_lock(&c->lock);
  while (c->calls < calls)
    if (!g_cond_wait_until(&c->cond, &c->lock, deadline)) {
      g_mutex_unlock(&c->lock);
      g_error("waiter callback did not run within %d s", DEADLINE_S);
    }
  g_mutex_unlock(&c->lock);
}

static gint catch_calls(Catch *c)
{
  g_mutex_lock(&c->lock);
  gint n = c->calls;
  g_mutex_unlock(&c->lock);
  return n;
}

static void assert_item(Catch *c, const gchar *data)
{
  g_mutex_lock(&c->lock);
  g_assert_nonnull(c->item);
  g_assert_cmpmem(c->item->data, c->item->len, data, strlen(data));
  g_mutex_unlock(&c->lock);
}

static KqWaiter *wait_on(KqQueue *q, KqRemoveFlags flags, gint64 timeout_ms, Catch *c)
{
  KqItem *now = NULL;
  GError *error = NULL;
  KqWaiter *w = kq_queue_remove_wait(q, flags, timeout_ms, on_item, c, &now, &error);
  g_assert_no_error(error);
  g_assert_null(now);
  g_assert_nonnull(w);
  return w;
}

typedef struct {
  gchar *dir;
  KqCollection *c;
  KqQueue *q;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer unused)
{
  (void)unused;
  f->dir = et_tmpdir();
  f->c = et_open(f->dir, NULL);
  f->q = et_queue(f->c, "q");
}

static void fixture_teardown(Fixture *f, gconstpointer unused)
{
  (void)unused;
  g_clear_pointer(&f->q, kq_queue_unref);
  if (f->c != NULL)
    kq_collection_close(f->c);
  et_rmtree(f->dir);
  g_free(f->dir);
}

static gint64 waiters_of(KqQueue *q)
{
  KqQueueStats s;
  kq_queue_get_stats(q, &s);
  return s.waiters;
}

static void test_item_available(Fixture *f, gconstpointer unused)
{
  (void)unused;
  Catch c;
  catch_init(&c);
  et_add(f->q, "ready");
  KqItem *now = NULL;
  KqWaiter *w = kq_queue_remove_wait(f->q, KQ_REMOVE_PLAIN, 1000, on_item, &c, &now, NULL);
  g_assert_null(w);
  g_assert_nonnull(now);
  g_assert_cmpmem(now->data, now->len, "ready", 5);
  kq_item_unref(now);
  /* timeout 0: no waiter is parked */
  w = kq_queue_remove_wait(f->q, KQ_REMOVE_PLAIN, 0, on_item, &c, &now, NULL);
  g_assert_null(w);
  g_assert_null(now);
  g_assert_cmpint(waiters_of(f->q), ==, 0);
  g_assert_cmpint(catch_calls(&c), ==, 0);
  catch_clear(&c);
}

static void test_arrival_order(Fixture *f, gconstpointer unused)
{
  (void)unused;
  Catch c[4];
  for (int i = 0; i < 4; i++)
    catch_init(&c[i]);
  wait_on(f->q, KQ_REMOVE_PLAIN, -1, &c[0]);
  wait_on(f->q, KQ_REMOVE_PLAIN, 60000, &c[1]);
  wait_on(f->q, KQ_REMOVE_OPEN, -1, &c[2]);
  wait_on(f->q, KQ_REMOVE_PLAIN, -1, &c[3]);
  g_assert_cmpint(waiters_of(f->q), ==, 4);
  et_add(f->q, "a");
  /* served on the adding thread, before kq_queue_add returns */
  g_assert_cmpint(catch_calls(&c[0]), ==, 1);
  g_assert_true(c[0].thread == g_thread_self());
  assert_item(&c[0], "a");
  et_add(f->q, "b");
  et_add(f->q, "c");
  assert_item(&c[1], "b");
  assert_item(&c[2], "c");
  g_assert_cmpuint(c[2].item->xid, !=, 0);  /* an open read */
  KqQueueStats s;
  kq_queue_get_stats(f->q, &s);
  g_assert_cmpint(s.open_transactions, ==, 1);
  g_assert_cmpint(s.waiters, ==, 1);
  g_assert_cmpint(s.items, ==, 0);
  /* a new reader does not jump the queue of waiters */
  KqItem *now = NULL;
  Catch late;
  catch_init(&late);
  KqWaiter *lw = kq_queue_remove_wait(f->q, KQ_REMOVE_PLAIN, -1, on_item, &late, &now, NULL);
  et_add(f->q, "d");
  assert_item(&c[3], "d");
  g_assert_cmpint(catch_calls(&late), ==, 0);
  g_assert_true(kq_waiter_cancel(lw));
  for (int i = 0; i < 4; i++) {
    g_assert_cmpint(catch_calls(&c[i]), ==, 1);
    catch_clear(&c[i]);
  }
  catch_clear(&late);
}

static void test_timeout(Fixture *f, gconstpointer unused)
{
  (void)unused;
  Catch c;
  catch_init(&c);
  gint64 start = g_get_monotonic_time();
  wait_on(f->q, KQ_REMOVE_PLAIN, 50, &c);
  catch_wait(&c, 1);
  g_assert_true(c.got_null);
  g_assert_cmpint(c.when_us - start, >=, 50 * 1000);
  g_assert_false(c.thread == g_thread_self());  /* the engine's timer thread */
  g_assert_cmpint(waiters_of(f->q), ==, 0);
  /* the item added afterwards stays in the queue */
  et_add(f->q, "kept");
  g_assert_cmpint(catch_calls(&c), ==, 1);
  et_expect(f->q, "kept");
  catch_clear(&c);
}

static void test_cancel(Fixture *f, gconstpointer unused)
{
  (void)unused;
  Catch c, timed, witness;
  catch_init(&c);
  catch_init(&timed);
  catch_init(&witness);
  KqWaiter *w = wait_on(f->q, KQ_REMOVE_PLAIN, -1, &c);
  g_assert_true(kq_waiter_cancel(w));
  g_assert_cmpint(waiters_of(f->q), ==, 0);
  et_add(f->q, "x");
  g_assert_cmpint(catch_calls(&c), ==, 0);
  et_expect(f->q, "x");

  /* a cancelled timed waiter never fires: a witness with the same deadline, registered
   * after it, fires after it would have */
  KqWaiter *tw = wait_on(f->q, KQ_REMOVE_PLAIN, 30, &timed);
  wait_on(f->q, KQ_REMOVE_PLAIN, 30, &witness);
  g_assert_true(kq_waiter_cancel(tw));
  catch_wait(&witness, 1);
  g_assert_true(witness.got_null);
  g_assert_cmpint(catch_calls(&timed), ==, 0);
  catch_clear(&c);
  catch_clear(&timed);
  catch_clear(&witness);
}

static void test_cancel_while_running(Fixture *f, gconstpointer unused)
{
  (void)unused;
  Catch c;
  catch_init(&c);
  c.reenter = TRUE;
  c.self = wait_on(f->q, KQ_REMOVE_PLAIN, -1, &c);
  et_add(f->q, "a");
  catch_wait(&c, 1);
  g_assert_false(c.cancel_result);
  assert_item(&c, "a");
  catch_clear(&c);
}

static gpointer adder_main(gpointer data)
{
  et_add(data, "from-thread");
  return NULL;
}

static void test_woken_by_add_from_thread(Fixture *f, gconstpointer unused)
{
  (void)unused;
  Catch c;
  catch_init(&c);
  wait_on(f->q, KQ_REMOVE_PLAIN, 60000, &c);
  GThread *t = g_thread_new("adder", adder_main, f->q);
  catch_wait(&c, 1);
  g_thread_join(t);
  assert_item(&c, "from-thread");
  g_assert_true(c.thread == t);
  g_assert_cmpint(waiters_of(f->q), ==, 0);
  catch_clear(&c);
}

static void test_woken_by_abort(Fixture *f, gconstpointer unused)
{
  (void)unused;
  Catch c;
  catch_init(&c);
  et_add(f->q, "a");
  KqItem *open = kq_queue_remove(f->q, KQ_REMOVE_OPEN, NULL);
  wait_on(f->q, KQ_REMOVE_PLAIN, -1, &c);
  g_assert_true(kq_queue_abort(f->q, open->xid, NULL));
  catch_wait(&c, 1);
  assert_item(&c, "a");
  kq_item_unref(open);
  KqQueueStats s;
  kq_queue_get_stats(f->q, &s);
  g_assert_cmpint(s.items, ==, 0);
  g_assert_cmpint(s.open_transactions, ==, 0);
  catch_clear(&c);
}

static void test_woken_by_close(Fixture *f, gconstpointer unused)
{
  (void)unused;
  Catch c, timed, reenter;
  catch_init(&c);
  catch_init(&timed);
  catch_init(&reenter);
  reenter.reenter = TRUE;
  wait_on(f->q, KQ_REMOVE_PLAIN, -1, &c);
  wait_on(f->q, KQ_REMOVE_OPEN, 60000, &timed);
  wait_on(f->q, KQ_REMOVE_PLAIN, -1, &reenter);
  kq_collection_close(f->c);
  f->c = NULL;
  /* close returns after every waiter was told "no item" */
  g_assert_cmpint(catch_calls(&c), ==, 1);
  g_assert_cmpint(catch_calls(&timed), ==, 1);
  g_assert_cmpint(catch_calls(&reenter), ==, 1);
  g_assert_true(c.got_null);
  g_assert_true(timed.got_null);
  g_assert_true(reenter.got_null);
  /* a closed queue refuses new waiters */
  KqItem *now = NULL;
  GError *error = NULL;
  g_assert_null(kq_queue_remove_wait(f->q, KQ_REMOVE_PLAIN, -1, on_item, &c, &now, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_CLOSED);
  g_clear_error(&error);
  catch_clear(&c);
  catch_clear(&timed);
  catch_clear(&reenter);
}

static void test_delete_wakes(Fixture *f, gconstpointer unused)
{
  (void)unused;
  Catch c;
  catch_init(&c);
  wait_on(f->q, KQ_REMOVE_PLAIN, -1, &c);
  g_assert_true(kq_collection_delete(f->c, "q", NULL));
  g_assert_cmpint(catch_calls(&c), ==, 1);
  g_assert_true(c.got_null);
  catch_clear(&c);
}

/* Callbacks run with no engine lock held: each path calls back into the same queue. */
static void test_reentrant_callbacks(Fixture *f, gconstpointer unused)
{
  (void)unused;
  Catch by_add, by_timer, by_abort;
  catch_init(&by_add);
  catch_init(&by_timer);
  catch_init(&by_abort);
  by_add.reenter = by_timer.reenter = by_abort.reenter = TRUE;
  by_add.collection = by_timer.collection = by_abort.collection = f->c;

  wait_on(f->q, KQ_REMOVE_PLAIN, -1, &by_add);
  et_add(f->q, "a");
  catch_wait(&by_add, 1);
  assert_item(&by_add, "a");

  wait_on(f->q, KQ_REMOVE_PLAIN, 20, &by_timer);
  catch_wait(&by_timer, 1);
  g_assert_true(by_timer.got_null);

  et_add(f->q, "b");
  KqItem *open = kq_queue_remove(f->q, KQ_REMOVE_OPEN, NULL);
  wait_on(f->q, KQ_REMOVE_OPEN, -1, &by_abort);
  g_assert_true(kq_queue_abort(f->q, open->xid, NULL));
  catch_wait(&by_abort, 1);
  assert_item(&by_abort, "b");
  kq_item_unref(open);
  g_assert_true(kq_queue_confirm(f->q, by_abort.item->xid, NULL));

  g_assert_cmpint(et_items(f->q), ==, 0);
  g_autoptr(KqQueue) other = et_queue(f->c, "other");
  g_assert_cmpint(et_items(other), ==, 3);
  catch_clear(&by_add);
  catch_clear(&by_timer);
  catch_clear(&by_abort);
}

/* ---------- many threads ---------- */

#define PRODUCERS 8
#define CONSUMERS 8
#define PER_PRODUCER 10000
#define TOTAL (PRODUCERS * PER_PRODUCER)

typedef struct {
  KqQueue *q;
  gint *seen;          /* TOTAL counters */
  gint removed;        /* atomic */
  gint producer;
  GMutex lock;
  GCond cond;
} Shared;

typedef struct {
  Shared *shared;
  gint id;
} Worker;

static gpointer producer_main(gpointer data)
{
  Worker *w = data;
  for (gint i = 0; i < PER_PRODUCER; i++) {
    gchar buf[32];
    gint n = g_snprintf(buf, sizeof(buf), "%d:%d", w->id, i);
    GError *error = NULL;
    if (!kq_queue_add(w->shared->q, buf, (gsize)n, 0, &error))
      g_error("add failed: %s", error->message);
  }
  return NULL;
}

typedef struct {
  GMutex lock;
  GCond cond;
  gboolean done;
  KqItem *item;
} Slot;

static void slot_cb(KqQueue *q, KqItem *item, gpointer user_data)
{
  (void)q;
  Slot *s = user_data;
  g_mutex_lock(&s->lock);
  s->item = item;
  s->done = TRUE;
  g_cond_signal(&s->cond);
  g_mutex_unlock(&s->lock);
}

/* Record one item; checks that each consumer sees each producer's items in order. */
static void take(Shared *sh, KqItem *item, gint *last)
{
  g_autofree gchar *text = g_strndup((const gchar *)item->data, item->len);
  gint p = 0, i = 0;
  if (sscanf(text, "%d:%d", &p, &i) != 2 || p < 0 || p >= PRODUCERS || i < 0 ||
      i >= PER_PRODUCER)
    g_error("unexpected item \"%s\"", text);
  if (i <= last[p])
    g_error("producer %d: item %d after %d", p, i, last[p]);
  last[p] = i;
  if (g_atomic_int_add(&sh->seen[p * PER_PRODUCER + i], 1) != 0)
    g_error("item \"%s\" removed twice", text);
  g_atomic_int_inc(&sh->removed);
  kq_item_unref(item);
}

static gpointer consumer_main(gpointer data)
{
  Worker *w = data;
  Shared *sh = w->shared;
  gint last[PRODUCERS];
  for (gint i = 0; i < PRODUCERS; i++)
    last[i] = -1;
  gint64 deadline = g_get_monotonic_time() + 120 * G_USEC_PER_SEC;
  Slot slot;
  g_mutex_init(&slot.lock);
  g_cond_init(&slot.cond);
  while (g_atomic_int_get(&sh->removed) < TOTAL) {
    if (g_get_monotonic_time() > deadline)
      g_error("consumers stalled at %d of %d items", g_atomic_int_get(&sh->removed), TOTAL);
    KqItem *item = NULL;
    if (w->id % 2 == 0) {
      item = kq_queue_remove(sh->q, KQ_REMOVE_PLAIN, NULL);
      if (item == NULL) {
        g_thread_yield();
        continue;
      }
    } else {
      /* blocking reads with a short timeout, so the end of the run is noticed */
      slot.done = FALSE;
      slot.item = NULL;
      KqWaiter *waiter = kq_queue_remove_wait(sh->q, KQ_REMOVE_PLAIN, 20, slot_cb, &slot,
                                              &item, NULL);
      if (waiter != NULL) {
        g_mutex_lock(&slot.lock);
        while (!slot.done)
          if (!g_cond_wait_until(&slot.cond, &slot.lock, deadline))
            g_error("a waiter was never completed");
        item = slot.item;
        g_mutex_unlock(&slot.lock);
      }
      if (item == NULL)
        continue;
    }
    take(sh, item, last);
  }
  g_mutex_clear(&slot.lock);
  g_cond_clear(&slot.cond);
  return NULL;
}

static void test_threads(Fixture *f, gconstpointer unused)
{
  (void)unused;
  Shared sh = { .q = f->q, .seen = g_new0(gint, TOTAL) };
  Worker workers[PRODUCERS + CONSUMERS];
  GThread *threads[PRODUCERS + CONSUMERS];
  for (gint i = 0; i < CONSUMERS; i++) {
    workers[i] = (Worker){ &sh, i };
    threads[i] = g_thread_new("consumer", consumer_main, &workers[i]);
  }
  for (gint i = 0; i < PRODUCERS; i++) {
    workers[CONSUMERS + i] = (Worker){ &sh, i };
    threads[CONSUMERS + i] = g_thread_new("producer", producer_main, &workers[CONSUMERS + i]);
  }
  for (gint i = 0; i < PRODUCERS + CONSUMERS; i++)
    g_thread_join(threads[i]);
  g_assert_cmpint(sh.removed, ==, TOTAL);
  for (gint i = 0; i < TOTAL; i++)
    if (sh.seen[i] != 1)
      g_error("item %d:%d removed %d times", i / PER_PRODUCER, i % PER_PRODUCER, sh.seen[i]);
  g_free(sh.seen);
  KqQueueStats s;
  kq_queue_get_stats(f->q, &s);
  g_assert_cmpint(s.items, ==, 0);
  g_assert_cmpint(s.total_items, ==, TOTAL);
  g_assert_cmpint(s.waiters, ==, 0);
  /* the journal agrees: nothing is left after a restart */
  g_clear_pointer(&f->q, kq_queue_unref);
  kq_collection_close(f->c);
  f->c = NULL;
  g_autofree gchar *rest = et_replay_drain(f->dir, "q");
  g_assert_cmpstr(rest, ==, "");
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add("/waiters/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD("item-available", test_item_available);
  ADD("arrival-order", test_arrival_order);
  ADD("timeout", test_timeout);
  ADD("cancel", test_cancel);
  ADD("cancel-while-running", test_cancel_while_running);
  ADD("woken-by-add-from-thread", test_woken_by_add_from_thread);
  ADD("woken-by-abort", test_woken_by_abort);
  ADD("woken-by-close", test_woken_by_close);
  ADD("woken-by-delete", test_delete_wakes);
  ADD("reentrant-callbacks", test_reentrant_callbacks);
  ADD("threads", test_threads);
#undef ADD
  return g_test_run();
}

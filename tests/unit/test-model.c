/* Model-based randomized test of the queue engine: seeded random operation sequences run
 * against a collection with tiny memory and journal limits, and against a plain in-memory
 * model of what SPEC 1 and 7 promise. Every step's result and every queue's stats are checked
 * against the model; after each restart and simulated crash the whole content is checked.
 *
 * A failing sequence is shrunk (chunks of operations dropped while it still fails) and printed
 * one operation per line, with the seed that regenerates it.
 *   KQ_MODEL_SECONDS=N   time budget of the seed loop (default 60; 20 under valgrind and the
 *                        sanitizers, where a seed costs ten times as much)
 *   KQ_MODEL_SEED=N      run only seed N (shrinks and prints it when it fails)
 *   KQ_MODEL_FIRST_SEED=N  first seed of the loop (default 1; seeds then count up)
 *   KQ_MODEL_VERBOSE=1   print the trace of every sequence run
 *   KQ_MODEL_SURVEY=1    go on after a failing seed, print each failure unshrunk */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine-test.h"

#define T_START G_GINT64_CONSTANT(1700000000000)
#define MAX_CHILDREN 3

/* ---------- operations ---------- */

typedef enum {
  OP_ADD,          /* add to a queue (to the parent: fanout to its children too) */
  OP_REMOVE,
  OP_OPEN,
  OP_PEEK,
  OP_CONFIRM,      /* an open read of the queue, picked by arg; none open: a bad xid */
  OP_ABORT,
  OP_CONFIRM_BAD,  /* an xid that is not open: must fail */
  OP_ABORT_BAD,
  OP_FLUSH,
  OP_FLUSH_EXPIRED,
  OP_SWEEP,
  OP_TICK,         /* move the clock arg ms */
  OP_COMPACT,
  OP_NEW_CHILD,
  OP_DELETE_CHILD,
  OP_RESTART,      /* close the collection and open the folder again */
  OP_CRASH,        /* reopen from a copy of the files as a killed process leaves them */
  OP_VERIFY,       /* replay a copy of the files now and compare every item */
  OP_COUNT
} OpKind;

static const gchar *const op_names[OP_COUNT] = {
  "add", "remove", "open", "peek", "confirm", "abort", "confirm-bad", "abort-bad", "flush",
  "flush-expired", "sweep", "tick", "compact", "new-child", "delete-child", "restart", "crash",
  "verify",
};

/* Relative frequencies. */
static const guint op_weights[OP_COUNT] = {
  30, 12, 10, 4, 7, 5, 1, 1, 1, 2, 1, 5, 3, 1, 1, 3, 3, 2,
};

typedef struct {
  OpKind kind;
  guint id;      /* position in the generated sequence; names the item an add writes */
  guint queue;   /* which queue (index modulo the queues that exist then) */
  gint64 arg;    /* add: size in bytes; tick: ms; confirm/abort: which open read */
  gint64 ttl;    /* add: expiry this many ms from now, 0 = none */
} Op;

typedef struct {
  gint64 max_memory, max_journal, default_journal, compact_delay_ms;
  gboolean fanout_only;
  gint64 allocate_ahead;  /* journal space reserved ahead (KqIoOps): the zeros a crash leaves */
} CaseSettings;

static gchar *case_config(const CaseSettings *s)
{
  return g_strdup_printf("[default]\nmaxMemorySize = %" G_GINT64_FORMAT "\n"
                         "maxJournalSize = %" G_GINT64_FORMAT "\n"
                         "defaultJournalSize = %" G_GINT64_FORMAT "\n"
                         "minJournalCompactDelay = %" G_GINT64_FORMAT "ms\n"
                         "fanoutOnly = %s\n"
                         "# journal space reserved ahead: %" G_GINT64_FORMAT " bytes\n",
                         s->max_memory, s->max_journal, s->default_journal, s->compact_delay_ms,
                         s->fanout_only ? "true" : "false", s->allocate_ahead);
}

static gint64 pick(GRand *r, const gint64 *values, guint n)
{
  return values[g_rand_int_range(r, 0, (gint32)n)];
}

static void case_settings(GRand *r, CaseSettings *s)
{
  static const gint64 mem[] = { 256, 512, 1024, 2048, 4096, 8192 };
  static const gint64 journal[] = { 1024, 2048, 4096, 16384, 65536 };
  static const gint64 def[] = { 256, 1024, 4096 };
  static const gint64 delay[] = { 0, 0, 0, 1000, 10000 };
  s->max_memory = pick(r, mem, G_N_ELEMENTS(mem));
  s->max_journal = pick(r, journal, G_N_ELEMENTS(journal));
  s->default_journal = pick(r, def, G_N_ELEMENTS(def));
  s->compact_delay_ms = pick(r, delay, G_N_ELEMENTS(delay));
  s->fanout_only = g_rand_int_range(r, 0, 10) == 0;
  /* the engine reserves 1 MB by default; smaller steps keep the copies of crashed folders small */
  static const gint64 ahead[] = { 0, 100, 4096, 4096, 65536 };
  s->allocate_ahead = pick(r, ahead, G_N_ELEMENTS(ahead));
}

/* Item sizes from 0 bytes to several times maxMemorySize, with the boundaries where the
 * engine changes behaviour (an ADDX record is 21 bytes plus the data; records of 16 KB or more
 * are written by pwritev instead of through the mapping; an item whose 20-byte store record
 * does not fit a 256 KB store segment is held as an item of its own). */
static gint64 item_size(GRand *r, gint64 mem)
{
  switch (g_rand_int_range(r, 0, 21)) {
  case 0:
    return 0;
  case 20: {
    const gint64 edges[] = { 16384 - 22, 16384 - 21, 16384 - 20, 20000,
                             262144 - 20, 262144 - 19 };
    return pick(r, edges, G_N_ELEMENTS(edges));
  }
  case 1 ... 6:
    return g_rand_int_range(r, 1, 33);
  case 7 ... 11:
    return g_rand_int_range(r, 1, (gint32)(mem / 4) + 1);
  case 12 ... 14:
    return g_rand_int_range(r, (gint32)(mem / 4), (gint32)mem + 1);
  case 15 ... 16: {
    const gint64 edges[] = { mem - 22, mem - 21, mem - 20, mem - 1, mem, mem + 1 };
    return MAX(0, pick(r, edges, G_N_ELEMENTS(edges)));
  }
  default:
    return g_rand_int_range(r, (gint32)mem, (gint32)(3 * mem) + 1);
  }
}

static GArray *case_ops(GRand *r, const CaseSettings *s)
{
  guint total = 0;
  for (guint k = 0; k < OP_COUNT; k++)
    total += op_weights[k];
  guint n = (guint)g_rand_int_range(r, 10, 301);
  GArray *ops = g_array_sized_new(FALSE, TRUE, sizeof(Op), n);
  for (guint i = 0; i < n; i++) {
    Op op = { .id = i + 1, .queue = (guint)g_rand_int_range(r, 0, 8) };
    guint w = (guint)g_rand_int_range(r, 0, (gint32)total);
    op.kind = 0;
    while (w >= op_weights[op.kind])
      w -= op_weights[op.kind++];
    /* the parent more often than any child */
    if (g_rand_boolean(r))
      op.queue = 0;
    switch (op.kind) {
    case OP_ADD:
      op.arg = item_size(r, s->max_memory);
      if (g_rand_int_range(r, 0, 5) == 0)
        op.ttl = g_rand_int_range(r, 1, 5001);
      break;
    case OP_TICK:
      op.arg = g_rand_int_range(r, 0, 4) == 0 ? g_rand_int_range(r, 5000, 20001)
                                              : g_rand_int_range(r, 1, 3001);
      break;
    case OP_CONFIRM:
    case OP_ABORT:
    case OP_CONFIRM_BAD:
    case OP_ABORT_BAD:
      op.arg = g_rand_int_range(r, 0, 1000);
      break;
    default:
      break;
    }
    g_array_append_val(ops, op);
  }
  return ops;
}

/* ---------- the model ---------- */

typedef struct {
  KqItem *item;
  gboolean returned;  /* put back at the head (abort, restart): may sit in memory beyond the limit */
} MItem;

typedef struct {
  gchar *name;
  GQueue items;        /* MItem*, head first */
  GPtrArray *opens;    /* KqItem* with their xid, in the order they were opened */
} MQueue;

static MItem *mitem_new(KqItem *item, gboolean returned)
{
  MItem *m = g_new(MItem, 1);
  m->item = kq_item_ref(item);
  m->returned = returned;
  return m;
}

static void mitem_free(gpointer p)
{
  MItem *m = p;
  kq_item_unref(m->item);
  g_free(m);
}

static MQueue *mqueue_new(const gchar *name)
{
  MQueue *mq = g_new0(MQueue, 1);
  mq->name = g_strdup(name);
  g_queue_init(&mq->items);
  mq->opens = g_ptr_array_new_with_free_func((GDestroyNotify)kq_item_unref);
  return mq;
}

static void mqueue_free(gpointer p)
{
  MQueue *mq = p;
  g_queue_clear_full(&mq->items, mitem_free);
  g_ptr_array_unref(mq->opens);
  g_free(mq->name);
  g_free(mq);
}

static gint64 mqueue_discard_expired(MQueue *mq, gint64 now)
{
  gint64 n = 0;
  MItem *m;
  while ((m = g_queue_peek_head(&mq->items)) != NULL && m->item->expiry != 0 &&
         m->item->expiry <= now) {
    mitem_free(g_queue_pop_head(&mq->items));
    n++;
  }
  return n;
}

static gint xid_order(gconstpointer a, gconstpointer b)
{
  guint32 x = (*(KqItem *const *)a)->xid, y = (*(KqItem *const *)b)->xid;
  return x < y ? -1 : x > y ? 1 : 0;
}

/* SPEC 7: after replay, reads still open go back to the head in xid order. */
static void mqueue_reopen(MQueue *mq)
{
  g_ptr_array_sort(mq->opens, xid_order);
  for (guint i = mq->opens->len; i-- > 0;) {
    KqItem *open = mq->opens->pdata[i];
    KqItem *back = kq_item_new(open->data, open->len, open->add_time, open->expiry);
    g_queue_push_head(&mq->items, mitem_new(back, TRUE));
    kq_item_unref(back);
  }
  g_ptr_array_set_size(mq->opens, 0);
}

/* ---------- one run of a sequence ---------- */

static GString *engine_log;  /* warnings and criticals the engine logged since the last check */
static gboolean verbose, survey;

static void model_log_handler(const gchar *domain, GLogLevelFlags level, const gchar *message,
                              gpointer unused)
{
  (void)unused;
  if (level & (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL)) {
    if (engine_log->len > 0)
      g_string_append(engine_log, "; ");
    g_string_append(engine_log, message);
  }
  if (verbose)
    g_log_default_handler(domain, level, message, NULL);
}

typedef struct {
  const CaseSettings *settings;
  gchar *config;
  gchar *dir;
  KqCollection *c;
  GPtrArray *queues;  /* MQueue*; [0] is the parent "q" */
  gint64 now;
  guint step;
  GString *failure;   /* the first disagreement; NULL while engine and model agree */
  GString *trace;     /* one line per operation, when wanted */
} Run;

static void fail(Run *run, const gchar *format, ...) G_GNUC_PRINTF(2, 3);

static void fail(Run *run, const gchar *format, ...)
{
  if (run->failure != NULL)
    return;
  va_list ap;
  va_start(ap, format);
  g_autofree gchar *text = g_strdup_vprintf(format, ap);
  va_end(ap);
  run->failure = g_string_new(NULL);
  g_string_printf(run->failure, "step %u: %s", run->step, text);
}

static void trace(Run *run, const gchar *format, ...) G_GNUC_PRINTF(2, 3);

static void trace(Run *run, const gchar *format, ...)
{
  if (run->trace == NULL)
    return;
  va_list ap;
  va_start(ap, format);
  g_string_append_vprintf(run->trace, format, ap);
  va_end(ap);
  g_string_append_c(run->trace, '\n');
}

/* Item data: its op id in the first bytes, then a pattern that depends on id and offset, so
 * any mix-up of items or bytes shows. */
static KqItem *make_item(guint id, gsize len, gint64 now, gint64 ttl)
{
  g_autofree guint8 *data = g_malloc(len + 1);
  for (gsize i = 0; i < len; i++)
    data[i] = (guint8)(id * 131u + i * 7u + (i >> 8));
  for (gsize i = 0; i < len && i < 4; i++)
    data[i] = (guint8)(id >> (8 * i));
  return kq_item_new(data, len, now, ttl ? now + ttl : 0);
}

/* The op id an item was written by (exact when it has at least 4 bytes). */
static guint item_id(const KqItem *item)
{
  guint id = 0;
  for (gsize i = 0; i < item->len && i < 4; i++)
    id |= (guint)item->data[i] << (8 * i);
  return id;
}

static gchar *describe(const KqItem *item)
{
  if (item == NULL)
    return g_strdup("nothing");
  GString *s = g_string_new(NULL);
  if (item->len >= 4)
    g_string_append_printf(s, "#%u ", item_id(item));
  g_string_append_printf(s, "%" G_GSIZE_FORMAT " B", item->len);
  if (item->expiry != 0)
    g_string_append_printf(s, " expiry +%" G_GINT64_FORMAT "ms", item->expiry - T_START);
  if (item->xid != 0)
    g_string_append_printf(s, " xid %u", item->xid);
  return g_string_free(s, FALSE);
}

static gboolean same_item(const KqItem *a, const KqItem *b)
{
  return a->len == b->len && a->add_time == b->add_time && a->expiry == b->expiry &&
         memcmp(a->data, b->data, a->len) == 0;
}

static void expect_item(Run *run, const gchar *what, const KqItem *expected, const KqItem *got)
{
  if (expected == NULL && got == NULL)
    return;
  if (expected != NULL && got != NULL && same_item(expected, got))
    return;
  g_autofree gchar *e = describe(expected);
  g_autofree gchar *g = describe(got);
  fail(run, "%s: expected %s, got %s", what, e, g);
}

static MQueue *model_queue(Run *run, guint index)
{
  return run->queues->pdata[index % run->queues->len];
}

static KqQueue *engine_queue(Run *run, MQueue *mq)
{
  GError *error = NULL;
  KqQueue *q = kq_collection_get(run->c, mq->name, FALSE, &error);
  if (q == NULL)
    fail(run, "queue %s is missing (%s)", mq->name, error ? error->message : "not found");
  g_clear_error(&error);
  return q;
}

static gboolean open_collection(Run *run)
{
  GError *error = NULL;
  run->c = kq_collection_open(run->dir, et_config(run->config), &error);
  if (run->c == NULL) {
    fail(run, "cannot open %s: %s", run->dir, error->message);
    g_error_free(error);
    return FALSE;
  }
  return TRUE;
}

/* Stats of every queue against the model, and the queue names against the model's. */
static void check_stats(Run *run)
{
  for (guint i = 0; i < run->queues->len && run->failure == NULL; i++) {
    MQueue *mq = run->queues->pdata[i];
    g_autoptr(KqQueue) q = engine_queue(run, mq);
    if (q == NULL)
      return;
    KqQueueStats s;
    kq_queue_get_stats(q, &s);
    gint64 items = mq->items.length, bytes = 0, largest = 0, returned = 0;
    for (GList *l = mq->items.head; l != NULL; l = l->next) {
      MItem *m = l->data;
      bytes += (gint64)m->item->len;
      largest = MAX(largest, (gint64)m->item->len);
      if (m->returned)
        returned += (gint64)m->item->len;
    }
    if (s.items != items || s.bytes != bytes || s.open_transactions != mq->opens->len)
      fail(run,
           "queue %s: stats items %" G_GINT64_FORMAT " bytes %" G_GINT64_FORMAT
           " open %" G_GINT64_FORMAT ", model items %" G_GINT64_FORMAT " bytes %" G_GINT64_FORMAT
           " open %u",
           mq->name, s.items, s.bytes, s.open_transactions, items, bytes, mq->opens->len);
    else if (s.mem_items > s.items || s.mem_bytes > s.bytes)
      fail(run, "queue %s: %" G_GINT64_FORMAT " items (%" G_GINT64_FORMAT " B) in memory of %"
           G_GINT64_FORMAT " (%" G_GINT64_FORMAT " B) queued",
           mq->name, s.mem_items, s.mem_bytes, s.items, s.bytes);
    /* memory holds up to maxMemorySize, overshot by at most one item, plus items put back */
    else if (s.mem_bytes > run->settings->max_memory + largest + returned)
      fail(run, "queue %s: %" G_GINT64_FORMAT " B in memory, maxMemorySize %" G_GINT64_FORMAT,
           mq->name, s.mem_bytes, run->settings->max_memory);
  }
  if (run->failure != NULL)
    return;
  g_autoptr(GPtrArray) names = kq_collection_queue_names(run->c);
  GString *want = g_string_new(NULL), *got = g_string_new(NULL);
  g_autoptr(GPtrArray) sorted = g_ptr_array_new();
  for (guint i = 0; i < run->queues->len; i++)
    g_ptr_array_add(sorted, ((MQueue *)run->queues->pdata[i])->name);
  g_ptr_array_sort(sorted, et_strptr_cmp);
  for (guint i = 0; i < sorted->len; i++)
    g_string_append_printf(want, " %s", (gchar *)sorted->pdata[i]);
  for (guint i = 0; i < names->len; i++)
    g_string_append_printf(got, " %s", (gchar *)names->pdata[i]);
  if (strcmp(want->str, got->str) != 0)
    fail(run, "queues:%s, model:%s", got->str, want->str);
  g_string_free(want, TRUE);
  g_string_free(got, TRUE);
}

static void copy_folder(Run *run, const gchar *from, const gchar *to)
{
  GDir *d = g_dir_open(from, 0, NULL);
  const gchar *name;
  while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
    g_autofree gchar *src = g_build_filename(from, name, NULL);
    g_autofree gchar *contents = NULL;
    gsize len = 0;
    GError *error = NULL;
    if (!g_file_get_contents(src, &contents, &len, &error)) {
      fail(run, "cannot copy %s: %s", src, error->message);
      g_error_free(error);
      break;
    }
    et_write(to, name, contents, len);
  }
  if (d != NULL)
    g_dir_close(d);
}

/* What a replay of the files would deliver now: open reads at the head in xid order, then
 * the queue, expired items skipped. Checked by replaying a copy of the folder and draining
 * every queue of it, so the collection under test is left as it is. */
static void verify_files(Run *run)
{
  g_autofree gchar *copy = et_tmpdir();
  copy_folder(run, run->dir, copy);
  GError *error = NULL;
  KqCollection *c = run->failure ? NULL : kq_collection_open(copy, et_config(run->config), &error);
  if (c == NULL && run->failure == NULL) {
    fail(run, "replaying a copy of the files: %s", error->message);
    g_error_free(error);
  }
  for (guint i = 0; c != NULL && i < run->queues->len && run->failure == NULL; i++) {
    MQueue *mq = run->queues->pdata[i];
    g_autoptr(GPtrArray) expected = g_ptr_array_new();
    g_ptr_array_extend(expected, mq->opens, NULL, NULL);
    g_ptr_array_sort(expected, xid_order);
    for (GList *l = mq->items.head; l != NULL; l = l->next)
      g_ptr_array_add(expected, ((MItem *)l->data)->item);
    KqQueue *q = kq_collection_get(c, mq->name, FALSE, NULL);
    if (q == NULL) {
      fail(run, "replayed files: queue %s is missing", mq->name);
      break;
    }
    guint next = 0, taken = 0;
    for (;;) {
      g_autoptr(KqItem) got = kq_queue_remove(q, KQ_REMOVE_PLAIN, NULL);
      while (next < expected->len) {
        KqItem *e = expected->pdata[next];
        if (e->expiry == 0 || e->expiry > run->now)
          break;
        next++;
      }
      KqItem *want = next < expected->len ? expected->pdata[next++] : NULL;
      g_autofree gchar *what = g_strdup_printf("replayed files: queue %s item %u", mq->name, taken);
      expect_item(run, what, want, got);
      if (got == NULL || want == NULL || run->failure != NULL)
        break;
      taken++;
    }
    kq_queue_unref(q);
  }
  if (c != NULL)
    kq_collection_close(c);
  et_rmtree(copy);
}

static void reopen_model(Run *run)
{
  for (guint i = 0; i < run->queues->len; i++)
    mqueue_reopen(run->queues->pdata[i]);
}

static void do_restart(Run *run)
{
  kq_collection_close(run->c);
  run->c = NULL;
  reopen_model(run);
  if (open_collection(run)) {
    check_stats(run);
    verify_files(run);
  }
}

/* A killed process leaves its journal files as the page cache holds them (records are copied
 * into a shared mapping): a copy of the folder taken between two operations is that state. */
static void do_crash(Run *run)
{
  gchar *dir = et_tmpdir();
  copy_folder(run, run->dir, dir);
  kq_collection_close(run->c);
  run->c = NULL;
  et_rmtree(run->dir);
  g_free(run->dir);
  run->dir = dir;
  reopen_model(run);
  if (run->failure == NULL && open_collection(run)) {
    check_stats(run);
    verify_files(run);
  }
}

static void do_add(Run *run, const Op *op)
{
  MQueue *target = model_queue(run, op->queue);
  g_autoptr(KqItem) item = make_item(op->id, (gsize)op->arg, run->now, op->ttl);
  g_autofree gchar *d = describe(item);
  trace(run, "add %s %s", target->name, d);
  GError *error = NULL;
  /* Every other add passes an item in a block of its own, as a large memcache set does: the
   * engine may hold that item instead of a copy, and must then never change its bytes. */
  gboolean added;
  if (op->id % 2 == 1) {
    guint8 *block = g_malloc(item->len + 2);
    if (item->len > 0)
      memcpy(block + 1, item->data, item->len);
    g_autoptr(KqItem) passed = kq_item_new_in_block(block, block + 1, item->len);
    added = kq_collection_add_item(run->c, target->name, passed, item->expiry, &error);
  } else {
    added = kq_collection_add(run->c, target->name, item->data, item->len, item->expiry, &error);
  }
  if (!added) {
    fail(run, "add to %s failed: %s", target->name, error->message);
    g_error_free(error);
    return;
  }
  /* the parent fans out to every child; with fanoutOnly it keeps nothing itself */
  for (guint i = 0; i < run->queues->len; i++) {
    MQueue *mq = run->queues->pdata[i];
    gboolean gets = mq == target ? (i != 0 || !run->settings->fanout_only) : target == run->queues->pdata[0];
    if (!gets)
      continue;
    mqueue_discard_expired(mq, run->now);
    g_queue_push_tail(&mq->items, mitem_new(item, FALSE));
  }
}

static void do_remove(Run *run, const Op *op, KqRemoveFlags flags)
{
  MQueue *mq = model_queue(run, op->queue);
  g_autoptr(KqQueue) q = engine_queue(run, mq);
  if (q == NULL)
    return;
  GError *error = NULL;
  g_autoptr(KqItem) got = kq_queue_remove(q, flags, &error);
  g_autofree gchar *d = describe(got);
  trace(run, "%s %s -> %s", op_names[op->kind], mq->name, d);
  if (error != NULL) {
    fail(run, "%s on %s failed: %s", op_names[op->kind], mq->name, error->message);
    g_error_free(error);
    return;
  }
  mqueue_discard_expired(mq, run->now);
  MItem *head = g_queue_peek_head(&mq->items);
  g_autofree gchar *what = g_strdup_printf("%s %s", op_names[op->kind], mq->name);
  expect_item(run, what, head ? head->item : NULL, got);
  if (run->failure != NULL || head == NULL || (flags & KQ_REMOVE_PEEK))
    return;
  if (flags & KQ_REMOVE_OPEN) {
    if (got->xid == 0)
      fail(run, "open on %s gave xid 0", mq->name);
    for (guint i = 0; i < mq->opens->len; i++)
      if (((KqItem *)mq->opens->pdata[i])->xid == got->xid)
        fail(run, "open on %s gave xid %u, which is already open", mq->name, got->xid);
    KqItem *open = kq_item_new(head->item->data, head->item->len, head->item->add_time,
                               head->item->expiry);
    open->xid = got->xid;
    g_ptr_array_add(mq->opens, open);
  } else if (got->xid != 0) {
    fail(run, "remove on %s gave an item with xid %u", mq->name, got->xid);
  }
  mitem_free(g_queue_pop_head(&mq->items));
}

static guint32 not_open_xid(MQueue *mq, gint64 arg)
{
  if (arg % 4 == 0)
    return 0;
  guint32 xid = (guint32)arg;
  for (guint i = 0; i < mq->opens->len; i++)
    xid = MAX(xid, ((KqItem *)mq->opens->pdata[i])->xid + 1);
  return xid;
}

static void do_finish(Run *run, const Op *op, gboolean confirm, gboolean bad)
{
  MQueue *mq = model_queue(run, op->queue);
  g_autoptr(KqQueue) q = engine_queue(run, mq);
  if (q == NULL)
    return;
  const gchar *what = confirm ? "confirm" : "abort";
  GError *error = NULL;
  if (bad || mq->opens->len == 0) {
    guint32 xid = not_open_xid(mq, op->arg);
    trace(run, "%s %s xid %u (not open)", what, mq->name, xid);
    gboolean ok = confirm ? kq_queue_confirm(q, xid, &error) : kq_queue_abort(q, xid, &error);
    if (ok || !g_error_matches(error, KQ_ERROR, KQ_ERROR_NO_SUCH_XID))
      fail(run, "%s of xid %u, which is not open, on %s: %s", what, xid, mq->name,
           ok ? "succeeded" : error->message);
    g_clear_error(&error);
    return;
  }
  guint index = (guint)(op->arg % mq->opens->len);
  KqItem *open = mq->opens->pdata[index];
  g_autofree gchar *d = describe(open);
  trace(run, "%s %s %s", what, mq->name, d);
  gboolean ok = confirm ? kq_queue_confirm(q, open->xid, &error)
                        : kq_queue_abort(q, open->xid, &error);
  if (!ok) {
    fail(run, "%s of open xid %u on %s failed: %s", what, open->xid, mq->name, error->message);
    g_error_free(error);
    return;
  }
  if (!confirm) {
    KqItem *back = kq_item_new(open->data, open->len, open->add_time, open->expiry);
    g_queue_push_head(&mq->items, mitem_new(back, TRUE));
    kq_item_unref(back);
  }
  g_ptr_array_remove_index(mq->opens, index);
}

static void do_op(Run *run, const Op *op)
{
  MQueue *mq = model_queue(run, op->queue);
  switch (op->kind) {
  case OP_ADD:
    do_add(run, op);
    break;
  case OP_REMOVE:
    do_remove(run, op, KQ_REMOVE_PLAIN);
    break;
  case OP_OPEN:
    do_remove(run, op, KQ_REMOVE_OPEN);
    break;
  case OP_PEEK:
    do_remove(run, op, KQ_REMOVE_PEEK);
    break;
  case OP_CONFIRM:
  case OP_CONFIRM_BAD:
    do_finish(run, op, TRUE, op->kind == OP_CONFIRM_BAD);
    break;
  case OP_ABORT:
  case OP_ABORT_BAD:
    do_finish(run, op, FALSE, op->kind == OP_ABORT_BAD);
    break;
  case OP_FLUSH: {
    trace(run, "flush %s", mq->name);
    g_autoptr(KqQueue) q = engine_queue(run, mq);
    if (q != NULL)
      kq_queue_flush(q);
    g_queue_clear_full(&mq->items, mitem_free);
    break;
  }
  case OP_FLUSH_EXPIRED: {
    g_autoptr(KqQueue) q = engine_queue(run, mq);
    gint64 n = q != NULL ? kq_queue_flush_expired(q, FALSE) : 0;
    gint64 want = mqueue_discard_expired(mq, run->now);
    trace(run, "flush-expired %s -> %" G_GINT64_FORMAT, mq->name, n);
    if (n != want)
      fail(run, "flush-expired on %s: %" G_GINT64_FORMAT " items, model %" G_GINT64_FORMAT,
           mq->name, n, want);
    break;
  }
  case OP_SWEEP: {
    gint64 n = kq_collection_sweep(run->c), want = 0;
    for (guint i = 0; i < run->queues->len; i++)
      want += mqueue_discard_expired(run->queues->pdata[i], run->now);
    trace(run, "sweep -> %" G_GINT64_FORMAT, n);
    if (n != want)
      fail(run, "sweep expired %" G_GINT64_FORMAT " items, model %" G_GINT64_FORMAT, n, want);
    break;
  }
  case OP_TICK:
    run->now += op->arg;
    et_now_ms = run->now;
    trace(run, "tick %" G_GINT64_FORMAT "ms (now +%" G_GINT64_FORMAT "ms)", op->arg,
          run->now - T_START);
    break;
  case OP_COMPACT: {
    trace(run, "compact %s", mq->name);
    g_autoptr(KqQueue) q = engine_queue(run, mq);
    GError *error = NULL;
    if (q != NULL && !kq_queue_compact(q, &error)) {
      fail(run, "compact %s: %s", mq->name, error->message);
      g_error_free(error);
    }
    break;
  }
  case OP_NEW_CHILD: {
    if (run->queues->len > MAX_CHILDREN)
      break;
    g_autofree gchar *name = g_strdup_printf("q+c%u", op->id);
    trace(run, "new-child %s", name);
    GError *error = NULL;
    KqQueue *q = kq_collection_get(run->c, name, TRUE, &error);
    if (q == NULL) {
      fail(run, "creating %s: %s", name, error->message);
      g_error_free(error);
      break;
    }
    kq_queue_unref(q);
    g_ptr_array_add(run->queues, mqueue_new(name));
    break;
  }
  case OP_DELETE_CHILD: {
    if (run->queues->len < 2)
      break;
    guint index = 1 + op->queue % (run->queues->len - 1);
    MQueue *child = run->queues->pdata[index];
    trace(run, "delete-child %s", child->name);
    GError *error = NULL;
    if (!kq_collection_delete(run->c, child->name, &error)) {
      fail(run, "deleting %s: %s", child->name, error->message);
      g_error_free(error);
    }
    g_ptr_array_remove_index(run->queues, index);
    break;
  }
  case OP_RESTART:
    trace(run, "restart");
    do_restart(run);
    break;
  case OP_CRASH:
    trace(run, "crash");
    do_crash(run);
    break;
  case OP_VERIFY:
    trace(run, "verify");
    verify_files(run);
    break;
  case OP_COUNT:
    g_assert_not_reached();
  }
}

/* Drain every queue of the live collection and compare it with the model. */
static void drain_all(Run *run)
{
  for (guint i = 0; i < run->queues->len && run->failure == NULL; i++) {
    MQueue *mq = run->queues->pdata[i];
    g_autoptr(KqQueue) q = engine_queue(run, mq);
    for (guint n = 0; q != NULL && run->failure == NULL; n++) {
      g_autoptr(KqItem) got = kq_queue_remove(q, KQ_REMOVE_PLAIN, NULL);
      mqueue_discard_expired(mq, run->now);
      MItem *head = g_queue_pop_head(&mq->items);
      g_autofree gchar *what = g_strdup_printf("final drain of %s, item %u", mq->name, n);
      expect_item(run, what, head ? head->item : NULL, got);
      if (head != NULL)
        mitem_free(head);
      if (got == NULL || head == NULL)
        break;
    }
  }
}

/* Run `ops` from scratch in a fresh folder. Returns the first disagreement (caller frees) or
 * NULL; with `trace_out`, also the trace of the operations run. */
static gchar *run_ops(const CaseSettings *settings, const Op *ops, guint n, GString *trace_out)
{
  Run run = { .settings = settings, .trace = trace_out };
  run.config = case_config(settings);
  run.dir = et_tmpdir();
  run.queues = g_ptr_array_new_with_free_func(mqueue_free);
  g_ptr_array_add(run.queues, mqueue_new("q"));
  run.now = T_START;
  et_clock_install(run.now);
  KqIoOps io = { .allocate_ahead = (size_t)settings->allocate_ahead };
  kq_io_set(&io);
  g_string_truncate(engine_log, 0);
  if (open_collection(&run)) {
    KqQueue *q = kq_collection_get(run.c, "q", TRUE, NULL);
    if (q != NULL)
      kq_queue_unref(q);
  }
  for (guint i = 0; i < n && run.failure == NULL; i++) {
    run.step = i + 1;
    do_op(&run, &ops[i]);
    if (engine_log->len > 0)
      fail(&run, "the engine logged: %s", engine_log->str);
    if (run.failure == NULL)
      check_stats(&run);
  }
  if (run.failure == NULL) {
    run.step = n + 1;
    trace(&run, "restart (end of sequence)");
    do_restart(&run);
    drain_all(&run);
    if (run.failure == NULL && engine_log->len > 0)
      fail(&run, "the engine logged: %s", engine_log->str);
  }
  if (run.failure != NULL)
    trace(&run, "FAILED at %s", run.failure->str);
  if (run.c != NULL)
    kq_collection_close(run.c);
  et_clock_restore();
  kq_io_set(NULL);
  et_rmtree(run.dir);
  g_free(run.dir);
  g_free(run.config);
  g_ptr_array_unref(run.queues);
  return run.failure ? g_string_free(run.failure, FALSE) : NULL;
}

/* ---------- shrinking and reporting ---------- */

/* What kind of disagreement a failure is ("remove q", "replayed files", "the engine logged"
 * ...), without numbers: shrinking keeps to the same kind so it does not drift to another bug. */
static gchar *failure_kind(const gchar *failure)
{
  const gchar *text = strstr(failure, ": ");
  text = text != NULL ? text + 2 : failure;
  const gchar *end = strchr(text, ':');
  GString *kind = g_string_new(NULL);
  for (const gchar *p = text; p != (end ? end : text + strlen(text)); p++)
    if (!g_ascii_isdigit(*p))
      g_string_append_c(kind, *p);
  return g_string_free(kind, FALSE);
}

static gboolean still_fails(const CaseSettings *settings, GArray *ops, const gchar *kind)
{
  g_autofree gchar *failure = run_ops(settings, (Op *)ops->data, ops->len, NULL);
  g_autofree gchar *k = failure ? failure_kind(failure) : NULL;
  return k != NULL && strcmp(k, kind) == 0;
}

typedef struct {
  const CaseSettings *settings;
  gchar *kind;
  guint attempts;
} Shrinker;

#define SHRINK_ATTEMPTS 4000

static gboolean shrinker_fails(Shrinker *sh, GArray *ops)
{
  sh->attempts++;
  return still_fails(sh->settings, ops, sh->kind);
}

/* Delta debugging: drop chunks of operations, halving the chunk down to single operations,
 * while the sequence still fails the same way. TRUE when something was dropped. */
static gboolean drop_ops(Shrinker *sh, GArray **best)
{
  gboolean dropped = FALSE;
  for (guint chunk = MAX(1, (*best)->len / 2); sh->attempts < SHRINK_ATTEMPTS;) {
    gboolean progress = FALSE;
    for (guint start = 0; start < (*best)->len && sh->attempts < SHRINK_ATTEMPTS;) {
      GArray *candidate = g_array_copy(*best);
      g_array_remove_range(candidate, start, MIN(chunk, candidate->len - start));
      if (shrinker_fails(sh, candidate)) {
        g_array_unref(*best);
        *best = candidate;
        progress = dropped = TRUE;
      } else {
        g_array_unref(candidate);
        start += chunk;
      }
    }
    if (!progress) {
      if (chunk == 1)
        break;
      chunk /= 2;
    }
  }
  return dropped;
}

/* Smaller items and clock steps, no expiry, where the failure stays. TRUE when one changed. */
static gboolean simplify_ops(Shrinker *sh, GArray *best)
{
  gboolean changed = FALSE;
  for (guint i = 0; i < best->len && sh->attempts < SHRINK_ATTEMPTS; i++) {
    Op *op = &g_array_index(best, Op, i);
    if (op->kind == OP_ADD && op->ttl != 0) {
      gint64 ttl = op->ttl;
      op->ttl = 0;
      if (shrinker_fails(sh, best))
        changed = TRUE;
      else
        op->ttl = ttl;
    }
    while ((op->kind == OP_ADD || op->kind == OP_TICK) && op->arg > 0 &&
           sh->attempts < SHRINK_ATTEMPTS) {
      gint64 arg = op->arg;
      op->arg = arg / 2;
      if (!shrinker_fails(sh, best)) {
        op->arg = arg;
        break;
      }
      changed = TRUE;
    }
  }
  return changed;
}

static GArray *shrink(const CaseSettings *settings, GArray *ops, const gchar *failure)
{
  Shrinker sh = { settings, failure_kind(failure), 0 };
  GArray *best = g_array_copy(ops);
  gboolean changed = TRUE;
  while (changed && sh.attempts < SHRINK_ATTEMPTS) {
    changed = drop_ops(&sh, &best);
    changed = simplify_ops(&sh, best) || changed;
  }
  g_free(sh.kind);
  return best;
}

static void report(guint32 seed, const CaseSettings *settings, GArray *ops, const gchar *failure)
{
  g_printerr("\nmodel test: seed %u failed after %u operations: %s\nshrinking...\n", seed,
             ops->len, failure);
  g_autoptr(GArray) small = shrink(settings, ops, failure);
  GString *t = g_string_new(NULL);
  g_autofree gchar *small_failure = run_ops(settings, (Op *)small->data, small->len, t);
  g_autofree gchar *config = case_config(settings);
  g_printerr("minimal reproduction (%u operations):\n%s--\n%s--\n%s\n"
             "rerun: KQ_MODEL_SEED=%u %s (add KQ_MODEL_VERBOSE=1 for every step)\n",
             small->len, config, t->str,
             small_failure ? small_failure : "(the shrunk sequence passed: flaky?)", seed,
             "tests/unit/test-model");
  g_string_free(t, TRUE);
}

/* Generate and run one seed. TRUE when it passed. */
static gboolean run_seed(guint32 seed)
{
  GRand *r = g_rand_new_with_seed(seed);
  CaseSettings settings;
  case_settings(r, &settings);
  g_autoptr(GArray) ops = case_ops(r, &settings);
  g_rand_free(r);
  GString *t = verbose ? g_string_new(NULL) : NULL;
  g_autofree gchar *failure = run_ops(&settings, (Op *)ops->data, ops->len, t);
  if (t != NULL) {
    g_autofree gchar *config = case_config(&settings);
    g_printerr("seed %u:\n%s%s\n", seed, config, t->str);
    g_string_free(t, TRUE);
  }
  if (failure == NULL)
    return TRUE;
  if (survey)
    g_printerr("seed %u: %s\n", seed, failure);
  else
    report(seed, &settings, ops, failure);
  return FALSE;
}

static guint32 env_number(const gchar *name, guint32 fallback)
{
  const gchar *text = g_getenv(name);
  return text != NULL && *text ? (guint32)g_ascii_strtoull(text, NULL, 10) : fallback;
}

static void test_random_sequences(void)
{
  if (g_getenv("KQ_MODEL_SEED") != NULL) {
    guint32 seed = env_number("KQ_MODEL_SEED", 1);
    if (!run_seed(seed))
      g_test_fail();
    return;
  }
  gint64 budget_us =
    (gint64)env_number("KQ_MODEL_SECONDS", et_slow_build() ? 20 : 60) * G_USEC_PER_SEC;
  gint64 start = g_get_monotonic_time();
  guint32 seed = env_number("KQ_MODEL_FIRST_SEED", 1);
  guint runs = 0, failed = 0;
  do {
    runs++;
    if (!run_seed(seed++)) {
      g_test_fail();
      failed++;
      if (!survey)
        break;
    }
  } while (g_get_monotonic_time() - start < budget_us);
  g_test_message("%u sequences run (seeds %u..%u), %u failed", runs, seed - runs, seed - 1,
                 failed);
}

int main(int argc, char **argv)
{
  /* Closing and rewriting journals fsyncs them, which on a disk costs more than everything
   * else here: the folders go to memory when the system has it and nobody chose otherwise. */
  if (g_getenv("TMPDIR") == NULL && g_file_test("/dev/shm", G_FILE_TEST_IS_DIR) &&
      access("/dev/shm", W_OK) == 0)
    g_setenv("TMPDIR", "/dev/shm", TRUE);
  g_test_init(&argc, &argv, NULL);
  engine_log = g_string_new(NULL);
  verbose = g_getenv("KQ_MODEL_VERBOSE") != NULL;
  survey = g_getenv("KQ_MODEL_SURVEY") != NULL;
  /* Warnings from the engine are findings of the model test, reported with their step:
   * counted here instead of aborting the program. */
  g_log_set_always_fatal(G_LOG_FATAL_MASK);
  g_log_set_handler("kestrel", G_LOG_LEVEL_MASK & ~G_LOG_LEVEL_ERROR, model_log_handler, NULL);
  g_test_add_func("/model/random-sequences", test_random_sequences);
  int status = g_test_run();
  g_string_free(engine_log, TRUE);
  return status;
}

/* Crash at every I/O call, power loss, and I/O errors on every kind of call (SPEC 7).
 *
 * A workload of adds, reads, open reads, confirms, aborts, compactions and a flush runs on a
 * queue with a tiny maxMemorySize and maxJournalSize, so that it rotates, rewrites, reads
 * behind and packs. It runs in a forked child that writes a line to a log file before and after
 * every operation, and the fault seam (fault-seam.h) ends the child at the Nth I/O call. The
 * parent replays the log into a plain model, opens the folder as a restart would, and compares:
 * acknowledged items present, confirmed and read items absent, open reads back at the head, in
 * order. The operation in flight at the crash may have happened or not, nothing else. Walking N
 * over every call of the workload covers every step of a rotation, a rewrite, a read-behind pack
 * and, in a second walk, of a replay. */
#include "engine-test.h"
#include "fault-seam.h"

#include <sys/wait.h>

#define T0 G_GINT64_CONSTANT(1700000000000)

#define QUEUE "q"

/* ---------- the workload (child side) ---------- */

typedef enum { OP_ADD, OP_GET, OP_OPEN, OP_CONFIRM, OP_ABORT, OP_COMPACT, OP_FLUSH } OpKind;

typedef struct {
  const gchar *config;
  guint32 seed;
  int ops;             /* random operations after the fill */
  gboolean with_flush;
  gboolean wait_durable; /* acknowledge an add only once it is durable (syncJournal set) */
  gboolean replay_only;  /* only open the folder (replay) and close it */
  gboolean abrupt_end;   /* end as a kill -9 would, without closing */
} Workload;

typedef struct {
  int log_fd;
  KqCollection *c;
  KqQueue *q;
  GArray *open_xids;   /* xids this child holds open */
  int next_id;
  GMutex lock;
  GCond cond;
  gboolean durable;
  int ops_behind;      /* operations that ended with items not in memory */
  int rewrites_behind; /* rewrites done while reading behind: read-behind packs */
  int empty_restarts;  /* rewrites with no fsync: an empty journal deleted and started again */
  gboolean begun_after_fault;
} Child;

static void logf_line(Child *ch, const gchar *format, ...) G_GNUC_PRINTF(2, 3);
static void logf_line(Child *ch, const gchar *format, ...)
{
  va_list args;
  va_start(args, format);
  g_autofree gchar *line = g_strdup_vprintf(format, args);
  va_end(args);
  /* an operation begun once the injected fault had passed must not fail: the engine recovers
   * by itself */
  if (g_str_has_prefix(line, "do "))
    ch->begun_after_fault = fs_fault_over();
  gboolean late = g_str_has_prefix(line, "err") && ch->begun_after_fault;
  g_autofree gchar *full = g_strconcat(line, late ? " after-fault" : "", "\n", NULL);
  gsize len = strlen(full);
  g_assert_cmpint(write(ch->log_fd, full, len), ==, (gssize)len);
}

/* Item `id`: "id:<id>:" then filler up to len bytes. */
static gchar *item_data(int id, gsize len)
{
  g_autofree gchar *head = g_strdup_printf("id:%d:", id);
  gsize head_len = strlen(head);
  len = MAX(len, head_len);
  gchar *s = g_malloc(len + 1);
  memcpy(s, head, head_len);
  for (gsize k = head_len; k < len; k++)
    s[k] = (gchar)('a' + (id + (int)k) % 26);
  s[len] = '\0';
  return s;
}

static int item_id(const KqItem *item)
{
  g_assert_cmpuint(item->len, >=, 4);
  g_assert_true(memcmp(item->data, "id:", 3) == 0);
  return atoi((const char *)item->data + 3);
}

static void durable_cb(gpointer data)
{
  Child *ch = data;
  g_mutex_lock(&ch->lock);
  ch->durable = TRUE;
  g_cond_signal(&ch->cond);
  g_mutex_unlock(&ch->lock);
}

static void child_add(Child *ch, const Workload *w, gsize len)
{
  int id = ch->next_id++;
  g_autofree gchar *data = item_data(id, len);
  logf_line(ch, "do add %d", id);
  g_autoptr(GError) error = NULL;
  if (!kq_collection_add(ch->c, QUEUE, data, strlen(data), 0, &error)) {
    logf_line(ch, "err add %d", id);
    return;
  }
  if (w->wait_durable) {
    ch->durable = FALSE;
    if (!kq_collection_when_durable(ch->c, QUEUE, durable_cb, ch)) {
      g_mutex_lock(&ch->lock);
      while (!ch->durable)
        g_cond_wait(&ch->cond, &ch->lock);
      g_mutex_unlock(&ch->lock);
    }
  }
  logf_line(ch, "ok add %d", id);
}

static void child_get(Child *ch, gboolean open)
{
  const gchar *name = open ? "open" : "get";
  logf_line(ch, "do %s", name);
  g_autoptr(GError) error = NULL;
  g_autoptr(KqItem) item = kq_queue_remove(ch->q, open ? KQ_REMOVE_OPEN : KQ_REMOVE_PLAIN, &error);
  if (error != NULL)
    logf_line(ch, "err %s", name);
  else if (item == NULL)
    logf_line(ch, "ok %s -", name);
  else if (!open)
    logf_line(ch, "ok get %d", item_id(item));
  else {
    g_array_append_val(ch->open_xids, item->xid);
    logf_line(ch, "ok open %d %u", item_id(item), item->xid);
  }
}

static void child_finish(Child *ch, GRand *rand, gboolean confirm)
{
  if (ch->open_xids->len == 0)
    return;
  guint k = (guint)g_rand_int_range(rand, 0, (gint32)ch->open_xids->len);
  guint32 xid = g_array_index(ch->open_xids, guint32, k);
  const gchar *name = confirm ? "confirm" : "abort";
  logf_line(ch, "do %s %u", name, xid);
  g_autoptr(GError) error = NULL;
  gboolean ok = confirm ? kq_queue_confirm(ch->q, xid, &error) : kq_queue_abort(ch->q, xid, &error);
  if (ok)
    g_array_remove_index(ch->open_xids, k);
  logf_line(ch, "%s %s %u", ok ? "ok" : "err", name, xid);
}

static gsize random_len(GRand *rand)
{
  /* mostly small, some around and beyond maxMemorySize (256 bytes in these configs) */
  switch (g_rand_int_range(rand, 0, 24)) {
  case 23: /* big enough to be written by pwritev rather than through the mapping */
    return (gsize)g_rand_int_range(rand, 16 * 1024, 20 * 1024);
  case 0:
  case 1:
  case 2:
    return (gsize)g_rand_int_range(rand, 200, 700);
  case 3:
  case 4:
  case 5:
    return 256;
  default:
    return (gsize)g_rand_int_range(rand, 8, 80);
  }
}

static guint64 fsync_calls(void)
{
  return fs.per_kind[g_bit_nth_lsf(FS_FSYNC, -1)];
}

/* What child_track compares an operation's effect against. */
typedef struct {
  KqQueueStats stats;
  guint64 fsyncs;
} Before;

static void child_before(Child *ch, Before *before)
{
  kq_queue_get_stats(ch->q, &before->stats);
  before->fsyncs = fsync_calls();
}

/* Count what the journal did during the last operation (the workload must exercise it all). */
static void child_track(Child *ch, const Before *before)
{
  KqQueueStats now;
  kq_queue_get_stats(ch->q, &now);
  gboolean rewrote = now.journal_rewrites > before->stats.journal_rewrites;
  if (rewrote && before->stats.mem_items < before->stats.items)
    ch->rewrites_behind++;
  if (rewrote && fsync_calls() == before->fsyncs)
    ch->empty_restarts++;
  if (now.mem_items < now.items)
    ch->ops_behind++;
}

static void child_random_op(Child *ch, const Workload *w, GRand *rand)
{
  int r = g_rand_int_range(rand, 0, 100);
  if (r < 38)
    child_add(ch, w, random_len(rand));
  else if (r < 60)
    child_get(ch, FALSE);
  else if (r < 75)
    child_get(ch, TRUE);
  else if (r < 85)
    child_finish(ch, rand, TRUE);
  else if (r < 93)
    child_finish(ch, rand, FALSE);
  else if (r < 97 || !w->with_flush) {
    logf_line(ch, "do compact");
    g_autoptr(GError) error = NULL;
    logf_line(ch, kq_queue_compact(ch->q, &error) ? "ok compact" : "err compact");
  } else {
    logf_line(ch, "do flush");
    g_autoptr(GError) error = NULL;
    logf_line(ch, kq_collection_flush(ch->c, QUEUE, &error) ? "ok flush" : "err flush");
  }
  et_now_ms += 7;
}

/* Runs in the child: never returns. */
static void G_GNUC_NORETURN run_workload(const Workload *w, const gchar *dir, int log_fd)
{
  Child ch = { .log_fd = log_fd, .next_id = 1 };
  g_mutex_init(&ch.lock);
  g_cond_init(&ch.cond);
  ch.open_xids = g_array_new(FALSE, FALSE, sizeof(guint32));
  logf_line(&ch, "do start");
  GError *error = NULL;
  ch.c = kq_collection_open(dir, et_config(w->config), &error);
  g_assert_no_error(error);
  ch.q = kq_collection_get(ch.c, QUEUE, TRUE, &error);
  g_assert_no_error(error);
  logf_line(&ch, "ok start");
  if (w->replay_only) {
    logf_line(&ch, "do close");
    kq_queue_unref(ch.q);
    kq_collection_close(ch.c);
    logf_line(&ch, "ok close");
    logf_line(&ch, "end %" G_GUINT64_FORMAT, fs.calls);
    _exit(0);
  }
  GRand *rand = g_rand_new_with_seed(w->seed);
  /* a backlog far beyond maxMemorySize: read-behind and rotations */
  for (int i = 0; i < 30; i++)
    child_add(&ch, w, random_len(rand));
  for (int i = 0; i < w->ops; i++) {
    Before before;
    child_before(&ch, &before);
    child_random_op(&ch, w, rand);
    child_track(&ch, &before);
  }
  /* drain to empty: the reader crosses files, then the empty queue's journal is rewritten */
  /* bounded: under a lasting fault confirms keep failing */
  for (int i = 0; i < 100 && ch.open_xids->len > 0; i++)
    child_finish(&ch, rand, TRUE);
  for (int i = 0; i < 200 && et_items(ch.q) > 0; i++)
    child_get(&ch, FALSE);
  /* a queue its consumer keeps empty: once the live file passes defaultJournalSize it is
   * started again empty (syncJournal = never) or rewritten (the other settings) */
  for (int i = 0; i < 40; i++) {
    child_add(&ch, w, (gsize)g_rand_int_range(rand, 12, 60));
    Before before;
    child_before(&ch, &before);
    child_get(&ch, FALSE);
    child_track(&ch, &before);
  }
  /* a backlog that grows slowly from empty, so the reader works inside the live file while it
   * rotates, with records appended since the reader last looked */
  for (int i = 0; i < 60; i++) {
    child_add(&ch, w, (gsize)g_rand_int_range(rand, 12, 60));
    if (i % 2 == 1)
      child_get(&ch, FALSE);
  }
  child_get(&ch, TRUE);
  KqQueueStats end;
  kq_queue_get_stats(ch.q, &end);
  logf_line(&ch, "stats %" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %d %d %d",
            end.journal_rotations, end.journal_rewrites, ch.ops_behind, ch.rewrites_behind,
            ch.empty_restarts);
  g_rand_free(rand);
  g_array_unref(ch.open_xids);
  if (!w->abrupt_end) {
    logf_line(&ch, "do close");
    kq_queue_unref(ch.q);
    kq_collection_close(ch.c);
    logf_line(&ch, "ok close");
  }
  logf_line(&ch, "failed %" G_GUINT64_FORMAT, fs.failed);
  GString *counts = g_string_new(NULL);
  g_string_printf(counts, "end %" G_GUINT64_FORMAT, fs.calls);
  for (int k = 0; k < FS_KINDS; k++)
    g_string_append_printf(counts, " %" G_GUINT64_FORMAT, fs.per_kind[k]);
  logf_line(&ch, "%s", counts->str);
  g_string_free(counts, TRUE); /* _exit runs no cleanup */
  _exit(0);
}

/* ---------- the model (parent side) ---------- */

typedef struct {
  GQueue queue;        /* ids, head first */
  GHashTable *open;    /* xid -> id */
  int max_id;
  gchar *inflight;     /* the "do" line whose "ok" never came, NULL none */
  GString *errors;     /* what the log itself shows wrong (a read out of order) */
  gboolean ended;
  guint64 calls;       /* I/O calls of a run that ended */
  gint64 stats[5];     /* rotations, rewrites, operations behind, rewrites behind, empty
                        * restarts */
  guint64 per_kind[FS_KINDS]; /* I/O calls of each kind (fault-seam.h FsKind order) */
  guint64 failed;      /* I/O calls the seam made to fail */
} Model;

static void model_init(Model *m)
{
  g_queue_init(&m->queue);
  m->open = g_hash_table_new(NULL, NULL);
  m->max_id = 0;
  m->inflight = NULL;
  m->errors = g_string_new(NULL);
  m->ended = FALSE;
}

static void model_clear(Model *m)
{
  g_queue_clear(&m->queue);
  g_hash_table_unref(m->open);
  g_free(m->inflight);
  g_string_free(m->errors, TRUE);
}

static void model_take_head(Model *m, int id, const gchar *what)
{
  int head = m->queue.length > 0 ? GPOINTER_TO_INT(g_queue_peek_head(&m->queue)) : 0;
  if (head != id)
    g_string_append_printf(m->errors, "%s returned item %d, model head is %d; ", what, id, head);
  g_queue_remove(&m->queue, GINT_TO_POINTER(id));
}

/* Apply one "ok" line. */
static void model_apply(Model *m, gchar **f)
{
  if (g_strcmp0(f[1], "add") == 0) {
    int id = atoi(f[2]);
    g_queue_push_tail(&m->queue, GINT_TO_POINTER(id));
    m->max_id = MAX(m->max_id, id);
  } else if (g_strcmp0(f[1], "get") == 0 && g_strcmp0(f[2], "-") != 0) {
    model_take_head(m, atoi(f[2]), "get");
  } else if (g_strcmp0(f[1], "get") == 0 || g_strcmp0(f[1], "open") == 0) {
    if (g_strcmp0(f[2], "-") == 0) {
      if (m->queue.length > 0)
        g_string_append_printf(m->errors, "%s found the queue empty, model holds %u; ", f[1],
                               m->queue.length);
      return;
    }
    int id = atoi(f[2]);
    model_take_head(m, id, "open");
    g_hash_table_insert(m->open, GUINT_TO_POINTER((guint)atol(f[3])), GINT_TO_POINTER(id));
  } else if (g_strcmp0(f[1], "confirm") == 0) {
    g_hash_table_remove(m->open, GUINT_TO_POINTER((guint)atol(f[2])));
  } else if (g_strcmp0(f[1], "abort") == 0) {
    gpointer key = GUINT_TO_POINTER((guint)atol(f[2]));
    g_queue_push_head(&m->queue, g_hash_table_lookup(m->open, key));
    g_hash_table_remove(m->open, key);
  } else if (g_strcmp0(f[1], "flush") == 0) {
    g_queue_clear(&m->queue);
  }
}

static void model_load(Model *m, const gchar *log_path)
{
  gchar *text = NULL;
  g_assert_true(g_file_get_contents(log_path, &text, NULL, NULL));
  gchar **lines = g_strsplit(text, "\n", -1);
  for (gchar **l = lines; *l != NULL && **l != '\0'; l++) {
    gchar **f = g_strsplit(*l, " ", -1);
    if (g_strcmp0(f[0], "do") == 0) {
      g_free(m->inflight);
      m->inflight = g_strdup(*l);
    } else if (g_strcmp0(f[0], "failed") == 0) {
      m->failed = g_ascii_strtoull(f[1], NULL, 10);
    } else if (g_strcmp0(f[0], "stats") == 0) {
      for (int k = 0; k < 5; k++)
        m->stats[k] = g_ascii_strtoll(f[k + 1], NULL, 10);
    } else if (g_strcmp0(f[0], "end") == 0) {
      m->ended = TRUE;
      m->calls = g_ascii_strtoull(f[1], NULL, 10);
      for (int k = 0; k < FS_KINDS && f[1] != NULL && f[k + 2] != NULL; k++)
        m->per_kind[k] = g_ascii_strtoull(f[k + 2], NULL, 10);
    } else {
      g_clear_pointer(&m->inflight, g_free);
      if (g_strcmp0(f[0], "ok") == 0)
        model_apply(m, f);
      else if (g_str_has_suffix(*l, " after-fault"))
        g_string_append_printf(m->errors, "'%s' failed after the fault stopped; ", *l);
    }
    g_strfreev(f);
  }
  g_strfreev(lines);
  g_free(text);
}

static gint uint_compare(gconstpointer a, gconstpointer b)
{
  guint x = *(const guint *)a, y = *(const guint *)b;
  return x < y ? -1 : x > y;
}

/* What a restart must deliver: open reads in xid order, then the queue. */
static GArray *model_expected(Model *m)
{
  GArray *xids = g_array_new(FALSE, FALSE, sizeof(guint));
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init(&it, m->open);
  while (g_hash_table_iter_next(&it, &key, NULL)) {
    guint xid = GPOINTER_TO_UINT(key);
    g_array_append_val(xids, xid);
  }
  g_array_sort(xids, uint_compare);
  GArray *ids = g_array_new(FALSE, FALSE, sizeof(int));
  for (guint i = 0; i < xids->len; i++) {
    int id = GPOINTER_TO_INT(
      g_hash_table_lookup(m->open, GUINT_TO_POINTER(g_array_index(xids, guint, i))));
    g_array_append_val(ids, id);
  }
  for (GList *l = m->queue.head; l != NULL; l = l->next) {
    int id = GPOINTER_TO_INT(l->data);
    g_array_append_val(ids, id);
  }
  g_array_unref(xids);
  return ids;
}

/* The model as if the operation in flight had completed (its result guessed the only way it
 * can go: a read takes the head). */
static GArray *model_expected_if_done(Model *m)
{
  if (m->inflight == NULL)
    return model_expected(m);
  gchar **f = g_strsplit(m->inflight, " ", -1);
  /* a plain read takes the head; an add, confirm, abort or flush line carries what
   * model_apply needs */
  if (g_strcmp0(f[1], "get") == 0)
    g_queue_pop_head(&m->queue);
  else if (g_strcmp0(f[1], "open") != 0)
    model_apply(m, f);
  /* open, compact, close, start: a restart delivers the same either way */
  g_strfreev(f);
  return model_expected(m);
}

static gchar *ids_text(GArray *ids)
{
  GString *s = g_string_new("[");
  for (guint i = 0; i < ids->len; i++)
    g_string_append_printf(s, "%s%d", i ? " " : "", g_array_index(ids, int, i));
  g_string_append_c(s, ']');
  return g_string_free(s, FALSE);
}

static gboolean ids_equal(GArray *a, GArray *b)
{
  return a->len == b->len &&
         (a->len == 0 || memcmp(a->data, b->data, a->len * sizeof(int)) == 0);
}

/* ---------- recovery ---------- */

/* Which crash point the parent is judging, for the messages of the engine during a restart:
 * after a crash a restart may inform (temporaries deleted, packs settled) but never warn. */
static const gchar *judging;

static void parent_log(const gchar *domain, GLogLevelFlags level, const gchar *message,
                       gpointer unused)
{
  (void)unused;
  if (level & (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL))
    g_error("%s: restart logged: %s", judging != NULL ? judging : "?", message);
  if (g_test_verbose())
    g_log_default_handler(domain, level, message, NULL);
}

static void copy_dir(const gchar *from, const gchar *to)
{
  g_assert_cmpint(g_mkdir_with_parents(to, 0755), ==, 0);
  GDir *d = g_dir_open(from, 0, NULL);
  g_assert_nonnull(d);
  const gchar *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    if (strcmp(name, ".kestrel.lock") == 0)
      continue;
    g_autofree gchar *src = g_build_filename(from, name, NULL);
    g_autofree gchar *dst = g_build_filename(to, name, NULL);
    fs_copy_file(src, dst);
  }
  g_dir_close(d);
}

/* Open the folder as a restart does and take every item (plain reads). The folder as the
 * crash left it stays beside it (DIR.crashed) for a failing test to show. */
static GArray *recover(const gchar *dir, const gchar *config)
{
  g_autofree gchar *kept = g_strconcat(dir, ".crashed", NULL);
  copy_dir(dir, kept);
  GError *error = NULL;
  KqCollection *c = kq_collection_open(dir, et_config(config), &error);
  if (c == NULL)
    g_error("restart failed: %s", error->message);
  KqQueue *q = kq_collection_get(c, QUEUE, TRUE, &error);
  g_assert_no_error(error);
  GArray *ids = g_array_new(FALSE, FALSE, sizeof(int));
  KqItem *item;
  while ((item = kq_queue_remove(q, KQ_REMOVE_PLAIN, &error)) != NULL) {
    int id = item_id(item);
    g_array_append_val(ids, id);
    kq_item_unref(item);
  }
  g_assert_no_error(error);
  kq_queue_unref(q);
  kq_collection_close(c);
  return ids;
}

static gchar *make_tmpdir(void)
{
  /* tmpfs when there is one: fsync is free there, and crashes are simulated anyway */
  const gchar *base = g_file_test("/dev/shm", G_FILE_TEST_IS_DIR) ? "/dev/shm" : g_get_tmp_dir();
  g_autofree gchar *tmpl = g_build_filename(base, "kestrel-crash-XXXXXX", NULL);
  gchar *dir = g_mkdtemp(tmpl);
  g_assert_nonnull(dir);
  return g_strdup(dir);
}

/* Fork a child that runs `w` in `dir` under the seam in `mode` (crashing at `target`). */
typedef struct {
  guint kinds;
  int err;
  guint64 first, count;
} Fault;

static void run_child_full(const Workload *w, const gchar *dir, const gchar *log_path,
                           FsMode mode, guint64 target, const gchar *shadow, const Fault *fault)
{
  int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  g_assert_cmpint(log_fd, >=, 0);
  pid_t pid = fork();
  g_assert_cmpint(pid, >=, 0);
  if (pid == 0) {
    et_allow_warnings(TRUE);  /* replays of crashed folders warn; the parent judges */
    if (fault != NULL)
      fs_fail_kinds(fault->kinds, fault->err, fault->first, fault->count);
    else
      fs_install(mode, target, shadow);
    run_workload(w, dir, log_fd);
  }
  close(log_fd);
  int status = 0;
  g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
  gboolean crashed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  if (!crashed && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
    g_error("workload child failed (status 0x%x) at crash point %" G_GUINT64_FORMAT, status,
            target);
}

static void run_child(const Workload *w, const gchar *dir, const gchar *log_path, FsMode mode,
                      guint64 target, const gchar *shadow)
{
  run_child_full(w, dir, log_path, mode, target, shadow, NULL);
}

/* Walk every crash point, or a sample in a slow build. */
static guint64 walk_stride(guint64 calls, guint64 sample_points)
{
  if (!et_slow_build())
    return 1;
  return MAX(1, calls / sample_points);
}

typedef enum { CHECK_EXACT, CHECK_DURABLE_ADDS, CHECK_CONSISTENT } CheckLevel;

/* Compare what a restart delivered with the model. EXACT: a process crash, where everything
 * acknowledged is in the page cache. DURABLE_ADDS: a power loss with syncJournal set, where
 * acknowledged adds survive but reads and confirms (not synced before their reply) may come
 * back. CONSISTENT: a power loss with syncJournal = never: no duplicates, nothing never added. */
static void check_recovery(Model *m, GArray *got, CheckLevel level, const gchar *where)
{
  g_autoptr(GArray) before = model_expected(m);
  g_autoptr(GArray) after = model_expected_if_done(m);
  g_autofree gchar *got_text = ids_text(got), *want_text = ids_text(before),
                   *after_text = ids_text(after);
  if (m->errors->len > 0)
    g_error("%s: the workload saw a wrong answer: %s", where, m->errors->str);
  if (level == CHECK_EXACT) {
    if (!ids_equal(got, before) && !ids_equal(got, after))
      g_error("%s (in flight: %s):\n  restart gave %s\n  model      %s\n  or         %s", where,
              m->inflight ? m->inflight : "nothing", got_text, want_text, after_text);
    return;
  }
  g_autoptr(GHashTable) seen = g_hash_table_new(NULL, NULL);
  int inflight_add = 0;
  if (m->inflight != NULL && g_str_has_prefix(m->inflight, "do add "))
    inflight_add = atoi(m->inflight + 7);
  for (guint i = 0; i < got->len; i++) {
    int id = g_array_index(got, int, i);
    if (g_hash_table_contains(seen, GINT_TO_POINTER(id)))
      g_error("%s: item %d delivered twice after restart: %s", where, id, got_text);
    if (id > m->max_id && id != inflight_add)
      g_error("%s: item %d was never added: %s", where, id, got_text);
    g_hash_table_add(seen, GINT_TO_POINTER(id));
  }
  if (level == CHECK_CONSISTENT)
    return;
  /* what may be gone: an item the operation in flight would remove */
  g_autoptr(GHashTable) kept = g_hash_table_new(NULL, NULL);
  for (guint k = 0; k < after->len; k++)
    g_hash_table_add(kept, GINT_TO_POINTER(g_array_index(after, int, k)));
  for (guint i = 0; i < before->len; i++) {
    int id = g_array_index(before, int, i);
    if (g_hash_table_contains(kept, GINT_TO_POINTER(id)) &&
        !g_hash_table_contains(seen, GINT_TO_POINTER(id)))
      g_error("%s: acknowledged item %d lost by the power loss (in flight: %s):\n  restart gave "
              "%s\n  model      %s", where, id, m->inflight ? m->inflight : "nothing", got_text,
              want_text);
  }
}

/* One crash point: fresh folder, child crashes at `target`, restart, compare. */
static void crash_once(const Workload *w, guint64 target, FsMode mode, CheckLevel level,
                       const gchar *seed_dir)
{
  g_autofree gchar *base = make_tmpdir();
  g_autofree gchar *dir = g_build_filename(base, "spool", NULL);
  g_autofree gchar *shadow = g_build_filename(base, "synced", NULL);
  g_autofree gchar *log_path = g_build_filename(base, "log", NULL);
  g_assert_cmpint(g_mkdir(shadow, 0755), ==, 0);
  if (seed_dir != NULL) {
    copy_dir(seed_dir, dir);
    copy_dir(seed_dir, shadow);  /* what the folder held before is durable */
  }
  gboolean power = level != CHECK_EXACT;
  run_child(w, dir, log_path, mode, target, power ? shadow : NULL);
  if (power)
    fs_power_loss(dir, shadow);
  Model m;
  model_init(&m);
  model_load(&m, log_path);
  g_autofree gchar *where = g_strdup_printf(
    "seed %u, crash %s I/O call %" G_GUINT64_FORMAT "%s", w->seed,
    mode == FS_CRASH_BEFORE ? "before" : "after", target, power ? " with power loss" : "");
  judging = where;
  g_autoptr(GArray) got = recover(dir, w->config);
  check_recovery(&m, got, level, where);
  judging = NULL;
  model_clear(&m);
  et_rmtree(base);
}

#define CONFIG_TINY                                                                            \
  "[queue q]\nmaxMemorySize=256\nmaxJournalSize=1KB\ndefaultJournalSize=512\n"              \
  "minJournalCompactDelay=0\n"
#define CONFIG_SYNC_EVERY CONFIG_TINY "syncJournal=0\n"
#define CONFIG_SYNC_NEVER CONFIG_TINY "syncJournal=never\n"

static void workload_counts(const Workload *w, Model *m)
{
  g_autofree gchar *base = make_tmpdir();
  g_autofree gchar *dir = g_build_filename(base, "spool", NULL);
  g_autofree gchar *log_path = g_build_filename(base, "log", NULL);
  run_child(w, dir, log_path, FS_COUNT, 0, NULL);
  model_init(m);
  model_load(m, log_path);
  g_assert_true(m->ended);
  g_autoptr(GArray) got = recover(dir, w->config);
  check_recovery(m, got, CHECK_EXACT, "the workload without a crash");
  et_rmtree(base);
}

/* The workload rotates, rewrites, reads behind and packs, or walking it proves little. */
static void test_workload_covers_the_journal_lifecycle(void)
{
  for (guint32 seed = 1; seed <= 3; seed++) {
    Workload w = { CONFIG_TINY, seed, 120, TRUE, FALSE, FALSE, FALSE };
    Model m;
    workload_counts(&w, &m);
    g_test_message("seed %u: %" G_GUINT64_FORMAT " I/O calls, %" G_GINT64_FORMAT
                   " rotations, %" G_GINT64_FORMAT " rewrites, %" G_GINT64_FORMAT
                   " operations reading behind, %" G_GINT64_FORMAT " read-behind packs",
                   seed, m.calls, m.stats[0], m.stats[1], m.stats[2], m.stats[3]);
    g_assert_cmpint(m.stats[0], >, 0);
    g_assert_cmpint(m.stats[1], >, 0);
    g_assert_cmpint(m.stats[2], >, 0);
    g_assert_cmpint(m.stats[3], >, 0);
    model_clear(&m);
  }
}

/* Run the workload once to count its I/O calls, then crash it before and after each. */
static void crash_walk(const Workload *w, CheckLevel level, guint64 sample_points)
{
  Model m;
  workload_counts(w, &m);
  guint64 calls = m.calls;
  model_clear(&m);
  guint64 stride = walk_stride(calls, sample_points);
  for (guint64 n = 1; n <= calls; n += stride) {
    crash_once(w, n, FS_CRASH_BEFORE, level, NULL);
    crash_once(w, n, FS_CRASH_AFTER, level, NULL);
  }
  g_test_message("seed %u: crashed at %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                 " I/O calls, before and after each", w->seed, (calls + stride - 1) / stride,
                 calls);
}

static void test_crash_at_every_call(gconstpointer data)
{
  guint32 seed = GPOINTER_TO_UINT(data);
  Workload w = { CONFIG_TINY, seed, 100, TRUE, FALSE, FALSE, FALSE };
  crash_walk(&w, CHECK_EXACT, 10);
}

/* A journal that reaches defaultJournalSize while the queue is empty, below maxMemorySize so
 * that it is the live file alone: with syncJournal = never it is deleted and started again
 * (no fsync), and a crash at any call around that must still recover the model exactly. */
#define CONFIG_DRAINED                                                                         \
  "[queue q]\nmaxMemorySize=1KB\nmaxJournalSize=4KB\ndefaultJournalSize=300\n"             \
  "minJournalCompactDelay=0\n"

static void test_crash_around_empty_restart(void)
{
  Workload w = { CONFIG_DRAINED, 3, 60, FALSE, FALSE, FALSE, FALSE };
  Model m;
  workload_counts(&w, &m);
  g_test_message("%" G_GINT64_FORMAT " empty restarts", m.stats[4]);
  g_assert_cmpint(m.stats[4], >, 0);
  model_clear(&m);
  crash_walk(&w, CHECK_EXACT, 10);
}

/* syncJournal = 0: an add is acknowledged once fsynced, so a power loss at any call loses no
 * acknowledged item. */
static void test_power_loss_sync_every_write(void)
{
  Workload w = { CONFIG_SYNC_EVERY, 4, 60, FALSE, TRUE, FALSE, FALSE };
  crash_walk(&w, CHECK_DURABLE_ADDS, 8);
}

/* syncJournal = never: a power loss may lose recent writes, but what replays is consistent. */
static void test_power_loss_sync_never(void)
{
  Workload w = { CONFIG_SYNC_NEVER, 5, 60, FALSE, FALSE, FALSE, FALSE };
  crash_walk(&w, CHECK_CONSISTENT, 8);
}

/* The same with the empty journal started again without an fsync (CONFIG_DRAINED). */
static void test_power_loss_empty_restart(void)
{
  Workload w = { CONFIG_DRAINED, 6, 60, FALSE, FALSE, FALSE, FALSE };
  crash_walk(&w, CHECK_CONSISTENT, 8);
}

/* Folders a crash left at points spread over the workload (rotated files, packs, temporaries,
 * reserved space, open reads) are replayed, and the replay is crashed at each of its I/O calls:
 * the next restart must deliver what an uninterrupted replay delivers. */
static void test_crash_during_replay(void)
{
  Workload w = { CONFIG_TINY, 1, 100, TRUE, FALSE, FALSE, FALSE };
  Workload replay = { CONFIG_TINY, 0, 0, FALSE, FALSE, TRUE, FALSE };
  Model m;
  workload_counts(&w, &m);
  guint64 calls = m.calls;
  model_clear(&m);
  guint64 seed_stride = et_slow_build() ? calls / 2 : 13;
  guint64 walked = 0;
  for (guint64 seed_point = seed_stride; seed_point < calls; seed_point += seed_stride) {
    g_autofree gchar *base = make_tmpdir();
    g_autofree gchar *seed_dir = g_build_filename(base, "seed", NULL);
    g_autofree gchar *log_path = g_build_filename(base, "log", NULL);
    run_child(&w, seed_dir, log_path, FS_CRASH_AFTER, seed_point, NULL);
    g_autofree gchar *ref_dir = g_build_filename(base, "ref", NULL);
    copy_dir(seed_dir, ref_dir);
    g_autofree gchar *where = g_strdup_printf("replay of the folder crashed at call %"
                                              G_GUINT64_FORMAT, seed_point);
    judging = where;
    g_autoptr(GArray) want = recover(ref_dir, w.config);
    /* count the replay's own calls */
    g_autofree gchar *count_dir = g_build_filename(base, "count", NULL);
    copy_dir(seed_dir, count_dir);
    run_child(&replay, count_dir, log_path, FS_COUNT, 0, NULL);
    model_init(&m);
    model_load(&m, log_path);
    g_assert_true(m.ended);
    guint64 replay_calls = m.calls;
    model_clear(&m);
    for (guint64 n = 1; n <= replay_calls; n++) {
      for (int after = 0; after < 2; after++) {
        g_autofree gchar *dir = g_strdup_printf("%s/crash-%" G_GUINT64_FORMAT "-%d", base, n,
                                                after);
        copy_dir(seed_dir, dir);
        run_child(&replay, dir, log_path, after ? FS_CRASH_AFTER : FS_CRASH_BEFORE, n, NULL);
        g_autofree gchar *point = g_strdup_printf(
          "%s, replay crashed %s its I/O call %" G_GUINT64_FORMAT, where,
          after ? "after" : "before", n);
        judging = point;
        g_autoptr(GArray) got = recover(dir, w.config);
        if (!ids_equal(got, want)) {
          g_autofree gchar *got_text = ids_text(got), *want_text = ids_text(want);
          g_error("%s:\n  restart gave %s\n  want         %s", point, got_text, want_text);
        }
        walked++;
      }
    }
    judging = NULL;
    et_rmtree(base);
  }
  g_test_message("%" G_GUINT64_FORMAT " replays crashed", walked);
  g_assert_cmpuint(walked, >, 0);
}

/* ENOSPC and EIO on every kind of call, early, midway and late in the workload, for one call
 * and for a longer outage: operations fail with an error or succeed, what succeeded is right,
 * everything works again once the fault stops, and a restart delivers the model. */
static void io_error_windows(const Workload *w, int err);

static void test_io_errors(gconstpointer data)
{
  int err = GPOINTER_TO_INT(data);
  /* one variant in a slow build */
  int variants = et_slow_build() ? 1 : 4;
  for (int variant = 0; variant < variants; variant++) {
    /* space reserved per record or ahead (then rotations cut it: ftruncate calls); a clean
     * close at the end, or an abrupt one that leaves what the faults left */
    fs_allocate_ahead = variant % 2 ? 100 : 0;
    Workload w = { CONFIG_TINY, 6 + (guint32)variant, 100, TRUE, FALSE, FALSE, variant >= 2 };
    io_error_windows(&w, err);
  }
  fs_allocate_ahead = 0;
}

static void io_error_windows(const Workload *wp, int err)
{
  Workload w = *wp;
  Model m;
  workload_counts(&w, &m);
  guint64 per_kind[FS_KINDS];
  memcpy(per_kind, m.per_kind, sizeof(per_kind));
  model_clear(&m);
  guint cases = 0;
  guint64 failed_calls = 0;
  for (int k = 0; k < FS_KINDS; k++) {
    if (per_kind[k] == 0)
      continue;
    /* one call, an outage, and a fault that lasts to the end of the run */
    const guint64 lengths[] = { 1, 8, G_MAXUINT32 };
    for (guint li = 0; li < (et_slow_build() ? 1 : G_N_ELEMENTS(lengths)); li++) {
      for (int part = et_slow_build() ? 1 : 0; part < (et_slow_build() ? 2 : 3); part++) {
        Fault fault = { 1u << k, err, 1 + per_kind[k] * (guint64)part / 3, lengths[li] };
        g_autofree gchar *base = make_tmpdir();
        g_autofree gchar *dir = g_build_filename(base, "spool", NULL);
        g_autofree gchar *log_path = g_build_filename(base, "log", NULL);
        run_child_full(&w, dir, log_path, FS_FAIL, 0, NULL, &fault);
        g_autofree gchar *where = g_strdup_printf(
          "seed %u, %s: %s from %s calls %" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT " of %"
          G_GUINT64_FORMAT, w.seed, w.abrupt_end ? "abrupt end" : "clean close", g_strerror(err),
          fs_kind_name(1u << k), fault.first, fault.first + fault.count - 1, per_kind[k]);
        judging = where;
        model_init(&m);
        model_load(&m, log_path);
        if (!m.ended)
          g_error("%s: the workload did not finish", where);
        if (m.failed == 0)
          g_error("%s: no call failed", where);
        failed_calls += m.failed;
        g_autoptr(GArray) got = recover(dir, w.config);
        check_recovery(&m, got, CHECK_EXACT, where);
        model_clear(&m);
        judging = NULL;
        et_rmtree(base);
        cases++;
      }
    }
  }
  g_autoptr(GString) kinds = g_string_new(NULL);
  for (int k = 0; k < FS_KINDS; k++)
    g_string_append_printf(kinds, "%s %s %" G_GUINT64_FORMAT, k ? "," : "",
                           fs_kind_name(1u << k), per_kind[k]);
  g_test_message("%s: %u fault windows, %" G_GUINT64_FORMAT " calls failed; calls per kind:%s",
                 w.abrupt_end ? "abrupt end" : "clean close", cases, failed_calls, kinds->str);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  et_clock_install(T0);
  g_log_set_handler("kestrel", G_LOG_LEVEL_MASK & ~G_LOG_LEVEL_ERROR, parent_log, NULL);
  g_test_add_func("/crash-points/workload-covers-the-journal-lifecycle",
                  test_workload_covers_the_journal_lifecycle);
  for (guint seed = 1; seed <= 2; seed++) {
    g_autofree gchar *path = g_strdup_printf("/crash-points/crash-at-every-call/seed-%u", seed);
    g_test_add_data_func(path, GUINT_TO_POINTER(seed), test_crash_at_every_call);
  }
  g_test_add_func("/crash-points/crash-at-every-call/empty-restart",
                  test_crash_around_empty_restart);
  g_test_add_func("/crash-points/crash-during-replay", test_crash_during_replay);
  g_test_add_data_func("/crash-points/io-errors/ENOSPC", GINT_TO_POINTER(ENOSPC), test_io_errors);
  g_test_add_data_func("/crash-points/io-errors/EIO", GINT_TO_POINTER(EIO), test_io_errors);
  g_test_add_func("/crash-points/power-loss/sync-every-write", test_power_loss_sync_every_write);
  g_test_add_func("/crash-points/power-loss/sync-never", test_power_loss_sync_never);
  g_test_add_func("/crash-points/power-loss/sync-never-empty-restart",
                  test_power_loss_empty_restart);
  return g_test_run();
}

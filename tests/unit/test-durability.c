/* Durability (SPEC 5 syncJournal, DESIGN group commit) and journal I/O failures injected
 * through the KqIoOps seam: ENOSPC, short writes and partial reservations, EIO, failing fsync.
 * The seam reserves no space ahead, so every journal append asks it for room. */
#include "engine-test.h"

#include <unistd.h>

#define DEADLINE_S 10

typedef enum { WRITE_OK, WRITE_ENOSPC, WRITE_EIO, WRITE_SHORT } WriteMode;

/* The injected file-system: counts calls and fails on demand. */
static struct {
  const KqIoOps *real;
  GMutex lock;
  GCond cond;
  gint fsyncs, fsync_ok, writes_failed;
  gboolean fsync_fail;
  gboolean short_written;  /* WRITE_SHORT: the partial write or reservation happened, next call
                              fails */
  WriteMode write_mode;
  gboolean removals_enospc; /* reservations of removal-sized records (<= 5 bytes) fail */
  WriteMode pwritev_mode;  /* large records only: their space is reserved, their write fails */
  gboolean pwritev_short_done;
  gulong fsync_delay_us;   /* simulated device latency */
} io;

/* The mode in force for one call: WRITE_SHORT lets the first call do half its work. */
static WriteMode take_write_mode(gboolean *first_short)
{
  g_mutex_lock(&io.lock);
  WriteMode mode = io.write_mode;
  *first_short = mode == WRITE_SHORT && !io.short_written;
  if (*first_short)
    io.short_written = TRUE;
  if (mode != WRITE_OK && !*first_short)
    io.writes_failed++;
  g_mutex_unlock(&io.lock);
  return mode;
}

static ssize_t fake_write(int fd, const void *buf, size_t len)
{
  gboolean first_short;
  switch (take_write_mode(&first_short)) {
  case WRITE_OK:
    return io.real->write(fd, buf, len);
  case WRITE_SHORT:
    if (first_short && len > 1)
      return io.real->write(fd, buf, len / 2);
    errno = ENOSPC;
    return -1;
  case WRITE_ENOSPC:
    errno = ENOSPC;
    return -1;
  case WRITE_EIO:
    errno = EIO;
    return -1;
  }
  return -1;
}

/* Large journal records are written with pwritev; WRITE_SHORT writes part of the first call's
 * first buffer, then fails. */
static ssize_t fake_pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset)
{
  g_mutex_lock(&io.lock);
  WriteMode mode = io.pwritev_mode;
  gboolean first_short = mode == WRITE_SHORT && !io.pwritev_short_done;
  if (first_short)
    io.pwritev_short_done = TRUE;
  else if (mode != WRITE_OK)
    io.writes_failed++;
  g_mutex_unlock(&io.lock);
  if (mode == WRITE_OK)
    return io.real->pwritev(fd, iov, iovcnt, offset);
  if (first_short) {
    struct iovec part = { iov[0].iov_base, MAX(iov[0].iov_len / 2, 1) };
    return io.real->pwritev(fd, &part, 1, offset);
  }
  errno = mode == WRITE_EIO ? EIO : ENOSPC;
  return -1;
}

static int fake_allocate(int fd, off_t offset, off_t len)
{
  gboolean first_short;
  g_mutex_lock(&io.lock);
  /* REMOVE is 1 byte and REMOVE_TENTATIVE_XID 5; an add is at least 21: a disk with room
   * for neither lets the add that fills it through, and then no removal */
  gboolean removal_fails = io.removals_enospc && len <= 5;
  g_mutex_unlock(&io.lock);
  if (removal_fails) {
    errno = ENOSPC;
    return -1;
  }
  switch (take_write_mode(&first_short)) {
  case WRITE_OK:
    return io.real->allocate(fd, offset, len);
  case WRITE_SHORT:
    /* the file grows by part of the request, then the disk is full */
    if (first_short && len > 1 && io.real->allocate(fd, offset, len / 2) != 0)
      return -1;
    errno = ENOSPC;
    return -1;
  case WRITE_ENOSPC:
    errno = ENOSPC;
    return -1;
  case WRITE_EIO:
    errno = EIO;
    return -1;
  }
  return -1;
}

static int fake_fsync(int fd)
{
  if (io.fsync_delay_us)
    g_usleep(io.fsync_delay_us);  /* a slow disk, not synchronisation */
  g_mutex_lock(&io.lock);
  gboolean fail = io.fsync_fail;
  g_mutex_unlock(&io.lock);
  int rc = -1;
  if (fail)
    errno = EIO;
  else
    rc = io.real->fsync(fd);
  g_mutex_lock(&io.lock);
  io.fsyncs++;
  if (rc == 0)
    io.fsync_ok++;
  g_cond_broadcast(&io.cond);
  g_mutex_unlock(&io.lock);
  return rc;
}

static int fake_ftruncate(int fd, off_t len)
{
  return io.real->ftruncate(fd, len);
}

static int fake_rename(const char *from, const char *to)
{
  return io.real->rename(from, to);
}

static int fake_unlink(const char *path)
{
  return io.real->unlink(path);
}

static const KqIoOps fake_ops = {
  .write = fake_write,
  .pwritev = fake_pwritev,
  .fsync = fake_fsync,
  .ftruncate = fake_ftruncate,
  .rename = fake_rename,
  .unlink = fake_unlink,
  .allocate = fake_allocate,
  .allocate_ahead = 0,
};

static gint io_get(gint *counter)
{
  g_mutex_lock(&io.lock);
  gint v = *counter;
  g_mutex_unlock(&io.lock);
  return v;
}

static void io_set_write(WriteMode mode)
{
  g_mutex_lock(&io.lock);
  io.write_mode = mode;
  io.short_written = FALSE;
  g_mutex_unlock(&io.lock);
}

static void io_set_removals_enospc(gboolean fail)
{
  g_mutex_lock(&io.lock);
  io.removals_enospc = fail;
  g_mutex_unlock(&io.lock);
}

static void io_set_pwritev(WriteMode mode)
{
  g_mutex_lock(&io.lock);
  io.pwritev_mode = mode;
  io.pwritev_short_done = FALSE;
  g_mutex_unlock(&io.lock);
}

typedef struct {
  gchar *dir;
  KqCollection *c;
  KqQueue *q;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
  kq_io_set(NULL);
  io.real = kq_io_get();
  io.fsyncs = io.fsync_ok = io.writes_failed = 0;
  io.fsync_fail = FALSE;
  io.fsync_delay_us = 0;
  io_set_write(WRITE_OK);
  io_set_pwritev(WRITE_OK);
  kq_io_set(&fake_ops);
  f->dir = et_tmpdir();
  f->c = et_open(f->dir, data);
  f->q = et_queue(f->c, "q");
}

static void fixture_teardown(Fixture *f, gconstpointer unused)
{
  (void)unused;
  g_mutex_lock(&io.lock);
  io.fsync_fail = FALSE;
  io.fsync_delay_us = 0;
  g_mutex_unlock(&io.lock);
  io_set_write(WRITE_OK);
  io_set_removals_enospc(FALSE);
  io_set_pwritev(WRITE_OK);
  g_clear_pointer(&f->q, kq_queue_unref);
  if (f->c != NULL)
    kq_collection_close(f->c);
  kq_io_set(NULL);
  et_allow_warnings(FALSE);
  et_rmtree(f->dir);
  g_free(f->dir);
}

/* ---------- durability callbacks ---------- */

typedef struct {
  GMutex lock;
  GCond cond;
  gint calls;
  gint fsync_ok_seen;  /* successful fsyncs when the callback ran */
} Done;

static void done_init(Done *d)
{
  memset(d, 0, sizeof(*d));
  g_mutex_init(&d->lock);
  g_cond_init(&d->cond);
}

static void done_clear(Done *d)
{
  g_mutex_clear(&d->lock);
  g_cond_clear(&d->cond);
}

static void on_durable(gpointer data)
{
  Done *d = data;
  gint ok = io_get(&io.fsync_ok);
  g_mutex_lock(&d->lock);
  d->calls++;
  d->fsync_ok_seen = ok;
  g_cond_broadcast(&d->cond);
  g_mutex_unlock(&d->lock);
}

static void done_wait(Done *d)
{
  gint64 deadline = g_get_monotonic_time() + DEADLINE_S * G_USEC_PER_SEC;
  g_mutex_lock(&d->lock);
  while (d->calls == 0)
    if (!g_cond_wait_until(&d->cond, &d->lock, deadline))
      g_error("durability callback did not run within %d s", DEADLINE_S);
  g_mutex_unlock(&d->lock);
}

static gint done_calls(Done *d)
{
  g_mutex_lock(&d->lock);
  gint n = d->calls;
  g_mutex_unlock(&d->lock);
  return n;
}

/* Add `data` and wait until the write is as durable as the queue's syncJournal asks. */
static void add_durably(KqQueue *q, const gchar *data)
{
  Done d;
  done_init(&d);
  et_add(q, data);
  if (!kq_queue_when_durable(q, on_durable, &d))
    done_wait(&d);
  done_clear(&d);
}

static const gchar sync_every_write[] = "[queue q]\nsyncJournal=0\n";
static const gchar empty_restart[] = "[queue q]\ndefaultJournalSize=1KB\n";
static const gchar empty_rewrite_syncing[] = "[queue q]\ndefaultJournalSize=1KB\nsyncJournal=0\n";

static void test_sync_every_write(Fixture *f, gconstpointer unused)
{
  (void)unused;
  Done d;
  done_init(&d);
  gint before = io_get(&io.fsyncs);
  et_add(f->q, "a");
  g_assert_false(kq_queue_when_durable(f->q, on_durable, &d));
  done_wait(&d);
  g_assert_cmpint(d.calls, ==, 1);
  g_assert_cmpint(d.fsync_ok_seen, >, 0);
  g_assert_cmpint(io_get(&io.fsyncs), >, before);
  /* nothing new written: durable already */
  g_assert_true(kq_queue_when_durable(f->q, on_durable, &d));
  /* removes and opens are journal writes too */
  g_autoptr(KqItem) item = kq_queue_remove(f->q, KQ_REMOVE_PLAIN, NULL);
  Done d2;
  done_init(&d2);
  g_assert_false(kq_queue_when_durable(f->q, on_durable, &d2));
  done_wait(&d2);
  /* the collection form, with a fanout child: one callback once both are durable */
  g_autoptr(KqQueue) child = et_queue(f->c, "q+c");
  g_assert_true(kq_collection_add(f->c, "q", "b", 1, 0, NULL));
  Done d3;
  done_init(&d3);
  if (!kq_collection_when_durable(f->c, "q", on_durable, &d3))
    done_wait(&d3);
  else
    g_error("a write to a syncJournal=0 queue was durable at once");
  g_assert_cmpint(done_calls(&d3), ==, 1);
  g_assert_cmpint(done_calls(&d), ==, 1);
  done_clear(&d);
  done_clear(&d2);
  done_clear(&d3);
}

/* A queue that starts with syncJournal = never and is switched to 0 by a reload: its next add
 * waits for an fsync. Run first, so the engine has seen no syncJournal setting before (it
 * answers durability checks at once until then). */
static void test_sync_switched_on(Fixture *f, gconstpointer unused)
{
  (void)unused;
  Done d;
  done_init(&d);
  g_assert_true(kq_collection_add(f->c, "q", "a", 1, 0, NULL));
  g_assert_true(kq_collection_when_durable(f->c, "q", on_durable, &d));
  KqQueueSettings settings;
  kq_queue_get_settings(f->q, &settings);
  g_assert_cmpint(settings.sync_journal_ms, <, 0);
  kq_settings_clear(&settings);
  kq_collection_reload(f->c, et_config(sync_every_write));
  kq_queue_get_settings(f->q, &settings);
  g_assert_cmpint(settings.sync_journal_ms, ==, 0);
  kq_settings_clear(&settings);
  gint before = io_get(&io.fsync_ok);
  g_assert_true(kq_collection_add(f->c, "q", "b", 1, 0, NULL));
  if (kq_collection_when_durable(f->c, "q", on_durable, &d))
    g_error("an add after syncJournal was switched to 0 was durable at once");
  done_wait(&d);
  g_assert_cmpint(d.fsync_ok_seen, >, before);
  done_clear(&d);
}

static void test_sync_never(Fixture *f, gconstpointer unused)
{
  (void)unused;
  Done d;
  done_init(&d);
  gint before = io_get(&io.fsyncs);
  for (int i = 0; i < 100; i++) {
    et_add(f->q, "a");
    g_assert_true(kq_queue_when_durable(f->q, on_durable, &d));
  }
  g_assert_true(kq_collection_when_durable(f->c, "q", on_durable, &d));
  g_assert_cmpint(io_get(&io.fsyncs), ==, before);
  g_assert_cmpint(done_calls(&d), ==, 0);
  done_clear(&d);
}

/* An empty queue's journal past defaultJournalSize: with syncJournal = never it is deleted and
 * started again without one fsync, pack or rotated file; with a syncJournal it is rewritten,
 * which syncs the old file and the folder. Either way a restart finds the queue as it was. */
/* 20 of these make more than the configs' defaultJournalSize (1 KB) of journal. */
static const gchar item70[] =
  "0123456789012345678901234567890123456789012345678901234567890123456789";

static void drain_past_default_size(Fixture *f)
{
  for (int i = 0; i < 20; i++)
    et_add(f->q, item70);
  for (int i = 0; i < 20; i++)
    et_expect(f->q, item70);
}

static void test_empty_restart_never(Fixture *f, gconstpointer unused)
{
  (void)unused;
  gint fsyncs = io_get(&io.fsyncs);
  drain_past_default_size(f);
  KqQueueStats st;
  kq_queue_get_stats(f->q, &st);
  g_assert_cmpint(st.journal_rewrites, ==, 1);
  g_assert_cmpint(io_get(&io.fsyncs), ==, fsyncs);
  g_autofree gchar *files = et_listing(f->dir);
  g_assert_cmpstr(files, ==, "q");
  g_assert_cmpint(et_records_size(f->dir, "q"), ==, 0);
  /* the new live file takes writes, and a restart replays them alone */
  et_add(f->q, "after");
  g_clear_pointer(&f->q, kq_queue_unref);
  kq_collection_close(f->c);
  f->c = et_open(f->dir, empty_restart);
  f->q = et_queue(f->c, "q");
  et_expect(f->q, "after");
  et_expect(f->q, NULL);
}

static void test_empty_rewrite_syncing(Fixture *f, gconstpointer unused)
{
  (void)unused;
  gint fsyncs = io_get(&io.fsyncs);
  for (int i = 0; i < 20; i++)
    add_durably(f->q, item70);
  gint after_adds = io_get(&io.fsyncs);
  g_assert_cmpint(after_adds, >, fsyncs);
  for (int i = 0; i < 20; i++)
    et_expect(f->q, item70);
  KqQueueStats st;
  kq_queue_get_stats(f->q, &st);
  g_assert_cmpint(st.journal_rewrites, ==, 1);
  g_assert_cmpint(io_get(&io.fsyncs), >, after_adds); /* the rewrite synced */
  g_autofree gchar *files = et_listing(f->dir);
  g_assert_cmpstr(files, ==, "q");
}

#define SYNC_THREADS 64
#define SYNC_ADDS 10

static gpointer sync_writer(gpointer data)
{
  KqQueue *q = data;
  for (int i = 0; i < SYNC_ADDS; i++)
    add_durably(q, "item");
  return NULL;
}

static void test_group_commit(Fixture *f, gconstpointer unused)
{
  (void)unused;
  io.fsync_delay_us = 2000;
  gint before = io_get(&io.fsyncs);
  GThread *threads[SYNC_THREADS];
  for (int i = 0; i < SYNC_THREADS; i++)
    threads[i] = g_thread_new("writer", sync_writer, f->q);
  for (int i = 0; i < SYNC_THREADS; i++)
    g_thread_join(threads[i]);
  gint fsyncs = io_get(&io.fsyncs) - before;
  g_test_message("%d durable adds shared %d fsyncs", SYNC_THREADS * SYNC_ADDS, fsyncs);
  g_assert_cmpint(fsyncs, >, 0);
  g_assert_cmpint(fsyncs * 4, <, SYNC_THREADS * SYNC_ADDS);
  g_assert_cmpint(et_items(f->q), ==, SYNC_THREADS * SYNC_ADDS);
}

static void test_fsync_failure(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_allow_warnings(TRUE);
  g_mutex_lock(&io.lock);
  io.fsync_fail = TRUE;
  gint failed_before = io.fsyncs;
  g_mutex_unlock(&io.lock);
  Done d;
  done_init(&d);
  et_add(f->q, "a");
  g_assert_false(kq_queue_when_durable(f->q, on_durable, &d));
  /* wait for the failed attempt */
  gint64 deadline = g_get_monotonic_time() + DEADLINE_S * G_USEC_PER_SEC;
  g_mutex_lock(&io.lock);
  while (io.fsyncs == failed_before)
    if (!g_cond_wait_until(&io.cond, &io.lock, deadline))
      g_error("no fsync was attempted");
  io.fsync_fail = FALSE;  /* the disk recovers; the engine retries */
  g_mutex_unlock(&io.lock);
  g_assert_cmpint(d.fsync_ok_seen, ==, 0);
  done_wait(&d);
  g_assert_cmpint(d.calls, ==, 1);
  g_assert_cmpint(d.fsync_ok_seen, >, 0);  /* only after a successful fsync */
  g_assert_cmpint(g_atomic_int_get(&et_warnings_seen), >, 0);
  done_clear(&d);
}

/* ---------- write failures ---------- */

static KqQueueStats stats_of(KqQueue *q)
{
  KqQueueStats s;
  kq_queue_get_stats(q, &s);
  return s;
}

static void assert_same_counts(const KqQueueStats *a, const KqQueueStats *b)
{
  g_assert_cmpint(a->items, ==, b->items);
  g_assert_cmpint(a->bytes, ==, b->bytes);
  g_assert_cmpint(a->total_items, ==, b->total_items);
  g_assert_cmpint(a->mem_items, ==, b->mem_items);
  g_assert_cmpint(a->open_transactions, ==, b->open_transactions);
  g_assert_cmpint(a->logsize, ==, b->logsize);
}

static void close_fixture(Fixture *f)
{
  g_clear_pointer(&f->q, kq_queue_unref);
  kq_collection_close(f->c);
  f->c = NULL;
}

static void check_failed_add(Fixture *f, WriteMode mode)
{
  et_add(f->q, "a");
  et_add(f->q, "b");
  gint64 size = et_records_size(f->dir, "q");
  KqQueueStats before = stats_of(f->q);
  io_set_write(mode);
  GError *error = NULL;
  /* large, so a partial reservation leaves more room than the next record fills */
  g_autofree gchar *lost = g_strnfill(1000, 'c');
  g_assert_false(kq_queue_add(f->q, lost, 1000, 0, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_IO);
  g_clear_error(&error);
  g_assert_false(kq_collection_add(f->c, "q", lost, 1000, 0, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_IO);
  g_clear_error(&error);
  g_assert_cmpint(io_get(&io.writes_failed), >, 0);
  KqQueueStats after = stats_of(f->q);
  assert_same_counts(&before, &after);
  /* a partial record never stays in the file */
  g_assert_cmpint(et_records_size(f->dir, "q"), ==, size);
  io_set_write(WRITE_OK);
  et_add(f->q, "d");
  close_fixture(f);
  /* a clean close leaves no reserved space, even space a failed reservation added */
  g_assert_cmpint(et_file_size(f->dir, "q"), ==, et_records_size(f->dir, "q"));
  g_autofree gchar *items = et_replay_drain(f->dir, "q");
  g_assert_cmpstr(items, ==, "a,b,d");
}

static void test_add_enospc(Fixture *f, gconstpointer unused)
{
  (void)unused;
  check_failed_add(f, WRITE_ENOSPC);
}

static void test_add_short_write(Fixture *f, gconstpointer unused)
{
  (void)unused;
  check_failed_add(f, WRITE_SHORT);
}

/* Items of 64 KB: written by system call, not through the journal's mapping. */
#define LARGE_ITEM (64 * 1024)

/* A large record whose write fails part-way leaves nothing of itself in the journal: not when
 * smaller records are written over its start, not after a restart. */
static void check_failed_large_add(Fixture *f, WriteMode mode)
{
  g_autofree gchar *large = g_strnfill(LARGE_ITEM, 'L');
  /* the lost item's bytes would parse as records if they stayed behind a shorter one */
  g_autofree gchar *lost = g_strnfill(LARGE_ITEM, KQ_OP_REMOVE);
  GError *error = NULL;

  et_add(f->q, "a");
  g_assert_true(kq_queue_add(f->q, large, LARGE_ITEM, 0, NULL));
  gint64 size = et_records_size(f->dir, "q");
  KqQueueStats before = stats_of(f->q);
  io_set_pwritev(mode);
  g_assert_false(kq_queue_add(f->q, lost, LARGE_ITEM, 0, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_IO);
  g_clear_error(&error);
  g_assert_cmpint(io_get(&io.writes_failed), >, 0);
  KqQueueStats after = stats_of(f->q);
  assert_same_counts(&before, &after);
  g_assert_cmpint(et_records_size(f->dir, "q"), ==, size);
  /* nothing past the last record but zeros (reserved space) or the end of the file */
  g_autoptr(GBytes) bytes = et_read(f->dir, "q");
  gsize len;
  const guint8 *p = g_bytes_get_data(bytes, &len);
  for (gsize i = (gsize)size; i < len; i++)
    g_assert_cmpint(p[i], ==, 0);
  io_set_pwritev(WRITE_OK);
  et_add(f->q, "d");
  g_assert_cmpint(et_records_size(f->dir, "q"), ==, size + (gint64)KQ_JOURNAL_ADDX_SIZE(1));
  close_fixture(f);
  g_autofree gchar *items = et_replay_drain(f->dir, "q");
  g_autofree gchar *want = g_strconcat("a,", large, ",d", NULL);
  g_assert_cmpstr(items, ==, want);
}

static void test_large_add_eio(Fixture *f, gconstpointer unused)
{
  (void)unused;
  check_failed_large_add(f, WRITE_EIO);
}

static void test_large_add_short_write(Fixture *f, gconstpointer unused)
{
  (void)unused;
  check_failed_large_add(f, WRITE_SHORT);
}

static void test_remove_eio(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_allow_warnings(TRUE);
  et_add(f->q, "a");
  et_add(f->q, "b");
  KqQueueStats before = stats_of(f->q);
  io_set_write(WRITE_EIO);
  GError *error = NULL;
  g_assert_null(kq_queue_remove(f->q, KQ_REMOVE_PLAIN, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_IO);
  g_clear_error(&error);
  g_assert_null(kq_queue_remove(f->q, KQ_REMOVE_OPEN, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_IO);
  g_clear_error(&error);
  KqQueueStats after = stats_of(f->q);
  assert_same_counts(&before, &after);
  /* peeking needs no write */
  g_autoptr(KqItem) head = kq_queue_remove(f->q, KQ_REMOVE_PEEK, &error);
  g_assert_no_error(error);
  g_assert_cmpmem(head->data, head->len, "a", 1);
  io_set_write(WRITE_OK);

  /* confirm and abort that cannot be journalled leave the read open */
  g_autoptr(KqItem) open = kq_queue_remove(f->q, KQ_REMOVE_OPEN, NULL);
  g_assert_cmpmem(open->data, open->len, "a", 1);
  io_set_write(WRITE_EIO);
  g_assert_false(kq_queue_confirm(f->q, open->xid, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_IO);
  g_clear_error(&error);
  g_assert_false(kq_queue_abort(f->q, open->xid, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_IO);
  g_clear_error(&error);
  g_assert_cmpint(stats_of(f->q).open_transactions, ==, 1);
  g_assert_cmpint(stats_of(f->q).items, ==, 1);
  io_set_write(WRITE_OK);
  g_assert_true(kq_queue_confirm(f->q, open->xid, NULL));
  close_fixture(f);
  g_autofree gchar *items = et_replay_drain(f->dir, "q");
  g_assert_cmpstr(items, ==, "b");
}

static gint64 remove_failures_of(KqQueue *q)
{
  KqQueueOpStats s;
  kq_queue_get_op_stats(q, &s);
  return s.remove_failures;
}

static void assert_remove_fails(KqQueue *q, KqRemoveFlags flags)
{
  GError *error = NULL;
  g_assert_null(kq_queue_remove(q, flags, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_IO);
  g_assert_nonnull(strstr(error->message, "cannot take an item from queue 'q'"));
  g_assert_nonnull(strstr(error->message, g_strerror(ENOSPC)));
  g_clear_error(&error);
}

static void wait_keep(KqQueue *q, KqItem *item, gpointer user_data)
{
  (void)q;
  *(KqItem **)user_data = item;
}

/* A disk too full to record a removal: every read fails with an error (never "empty"), the
 * item stays, each failure is counted, the warning comes once per episode, and reads are
 * served again once a removal can be recorded. */
static void test_remove_enospc_episodes(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_allow_warnings(TRUE);
  et_add(f->q, "a");
  et_add(f->q, "b");
  io_set_removals_enospc(TRUE);
  assert_remove_fails(f->q, KQ_REMOVE_PLAIN);
  assert_remove_fails(f->q, KQ_REMOVE_OPEN);
  assert_remove_fails(f->q, KQ_REMOVE_PLAIN);
  /* a read that would wait fails at once too: there is an item, it cannot be taken */
  KqItem *handed = NULL;
  GError *error = NULL;
  g_assert_null(kq_queue_remove_wait(f->q, KQ_REMOVE_PLAIN, 60000, wait_keep, &handed, &handed,
                                     &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_IO);
  g_clear_error(&error);
  g_assert_null(handed);
  g_assert_cmpint(remove_failures_of(f->q), ==, 4);
  g_assert_cmpint(g_atomic_int_get(&et_warnings_seen), ==, 1);
  g_assert_cmpint(stats_of(f->q).items, ==, 2);
  g_assert_cmpint(stats_of(f->q).open_transactions, ==, 0);
  g_autoptr(KqItem) head = kq_queue_remove(f->q, KQ_REMOVE_PEEK, &error);
  g_assert_no_error(error);
  g_assert_cmpmem(head->data, head->len, "a", 1);

  /* the fault stops: the item is served, and the episode is over */
  io_set_removals_enospc(FALSE);
  et_expect(f->q, "a");
  io_set_removals_enospc(TRUE);
  assert_remove_fails(f->q, KQ_REMOVE_PLAIN);
  g_assert_cmpint(g_atomic_int_get(&et_warnings_seen), ==, 2);
  g_assert_cmpint(remove_failures_of(f->q), ==, 5);
  io_set_removals_enospc(FALSE);
  et_expect(f->q, "b");
  et_expect(f->q, NULL);

  /* an item that cannot be handed to a waiter stays queued; the waiter keeps waiting */
  KqWaiter *w = kq_queue_remove_wait(f->q, KQ_REMOVE_PLAIN, -1, wait_keep, &handed, &handed,
                                     &error);
  g_assert_no_error(error);
  g_assert_nonnull(w);
  io_set_removals_enospc(TRUE);
  et_add(f->q, "c");
  g_assert_null(handed);
  g_assert_cmpint(stats_of(f->q).items, ==, 1);
  g_assert_cmpint(remove_failures_of(f->q), ==, 6);
  g_assert_cmpint(g_atomic_int_get(&et_warnings_seen), ==, 3);
  /* another reader retries the hand-off, then fails itself: an error, not "empty" */
  assert_remove_fails(f->q, KQ_REMOVE_PLAIN);
  g_assert_null(handed);
  g_assert_cmpint(remove_failures_of(f->q), ==, 8);
  g_assert_cmpint(g_atomic_int_get(&et_warnings_seen), ==, 3);
  /* room again: the next read serves the waiter first, in arrival order */
  io_set_removals_enospc(FALSE);
  et_expect(f->q, NULL);
  g_assert_nonnull(handed);
  g_assert_cmpmem(handed->data, handed->len, "c", 1);
  kq_item_unref(handed);
  g_assert_cmpint(remove_failures_of(f->q), ==, 8);
  g_assert_cmpint(g_atomic_int_get(&et_warnings_seen), ==, 3);
  et_add(f->q, "d");

  /* nothing was lost or taken twice: the journal replays to what is left */
  close_fixture(f);
  g_autofree gchar *items = et_replay_drain(f->dir, "q");
  g_assert_cmpstr(items, ==, "d");
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_mutex_init(&io.lock);
  g_cond_init(&io.cond);
#define ADD(path, config, fn) \
  g_test_add("/durability/" path, Fixture, config, fixture_setup, fn, fixture_teardown)
  ADD("sync-switched-on", NULL, test_sync_switched_on);
  ADD("sync-every-write", sync_every_write, test_sync_every_write);
  ADD("sync-never", NULL, test_sync_never);
  ADD("group-commit", sync_every_write, test_group_commit);
  ADD("empty-restart-never", empty_restart, test_empty_restart_never);
  ADD("empty-rewrite-syncing", empty_rewrite_syncing, test_empty_rewrite_syncing);
  ADD("fsync-failure", sync_every_write, test_fsync_failure);
  ADD("add-enospc", NULL, test_add_enospc);
  ADD("add-short-write", NULL, test_add_short_write);
  ADD("remove-eio", NULL, test_remove_eio);
  ADD("remove-enospc-episodes", NULL, test_remove_enospc_episodes);
  ADD("large-add-eio", NULL, test_large_add_eio);
  ADD("large-add-short-write", NULL, test_large_add_short_write);
#undef ADD
  return g_test_run();
}

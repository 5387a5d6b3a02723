/* Read-behind (SPEC 7): a queue whose data outgrows maxMemorySize keeps only that much in memory
 * and reads the rest back from its journal. These tests walk grids of memory limits and item
 * sizes through restarts and rotations, where items used to be lost or reordered. */
#include "engine-test.h"

#define T0 G_GINT64_CONSTANT(1700000000000)

typedef struct {
  gchar *dir;
  KqCollection *c;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer unused)
{
  (void)unused;
  f->dir = et_tmpdir();
  et_clock_install(T0);
}

static void fixture_teardown(Fixture *f, gconstpointer unused)
{
  (void)unused;
  if (f->c != NULL)
    kq_collection_close(f->c);
  et_clock_restore();
  et_rmtree(f->dir);
  g_free(f->dir);
}

static void reopen(Fixture *f, const gchar *config)
{
  if (f->c != NULL)
    kq_collection_close(f->c);
  f->c = et_open(f->dir, config);
}

/* Item `i` of `len` (>= 8) bytes: its number, then a filler that also depends on it. */
static gchar *item_text(int i, gsize len)
{
  gchar *s = g_malloc(len + 1);
  for (gsize k = 0; k < len; k++)
    s[k] = (gchar)('a' + (i + (int)k) % 26);
  s[len] = '\0';
  gchar head[16];
  g_snprintf(head, sizeof(head), "%07d:", i);
  memcpy(s, head, 8);
  return s;
}

static void add_item(KqQueue *q, int i, gsize len)
{
  g_autofree gchar *text = item_text(i, len);
  GError *error = NULL;
  g_assert_true(kq_queue_add(q, text, len, 0, &error));
  g_assert_no_error(error);
}

/* Take the head (plainly or as an open read) and check it is item `i`; returns it. */
static KqItem *take_item(KqQueue *q, KqRemoveFlags flags, int i, gsize len, const gchar *where)
{
  GError *error = NULL;
  KqItem *item = kq_queue_remove(q, flags, &error);
  g_assert_no_error(error);
  g_autofree gchar *want = item_text(i, len);
  if (item == NULL)
    g_error("%s: item %d missing (queue empty)", where, i);
  if (item->len != len || memcmp(item->data, want, len) != 0)
    g_error("%s: expected item %d, got \"%.*s\" (%" G_GSIZE_FORMAT " bytes)", where, i,
            (int)MIN(item->len, 8), (const char *)item->data, item->len);
  return item;
}

static void expect_item(KqQueue *q, int i, gsize len, const gchar *where)
{
  kq_item_unref(take_item(q, KQ_REMOVE_PLAIN, i, len, where));
}

static KqQueueStats stats_of(KqQueue *q)
{
  KqQueueStats s;
  kq_queue_get_stats(q, &s);
  return s;
}

static gchar *config_for(gint64 max_memory)
{
  return g_strdup_printf("[queue q]\nmaxMemorySize=%" G_GINT64_FORMAT "\n", max_memory);
}

/* Store n items, read half, stop cleanly, restart: every unread item comes back, in order, and
 * again after a second restart. Walks a grid of memory limits and item sizes, because each
 * defect showed only for some of them. */
static void test_restart_grid(Fixture *f, gconstpointer unused)
{
  (void)unused;
  const gint64 limits[] = { 512, 1024, 4096, 16384 };
  const gsize sizes[] = { 8, 37, 100, 300, 1000, 5000 };
  const int n = 100;
  for (guint li = 0; li < G_N_ELEMENTS(limits); li++) {
    for (guint si = 0; si < G_N_ELEMENTS(sizes); si++) {
      g_autofree gchar *config = config_for(limits[li]);
      g_autofree gchar *where =
        g_strdup_printf("maxMemorySize %" G_GINT64_FORMAT ", %" G_GSIZE_FORMAT "-byte items",
                        limits[li], sizes[si]);
      gsize len = sizes[si];
      reopen(f, config);
      KqQueue *q = et_queue(f->c, "q");
      for (int i = 0; i < n; i++)
        add_item(q, i, len);
      for (int i = 0; i < n / 2; i++)
        expect_item(q, i, len, where);
      kq_queue_unref(q);
      for (int restart = 0; restart < 2; restart++) {
        reopen(f, config);
        q = et_queue(f->c, "q");
        if (stats_of(q).items != n - n / 2)
          g_error("%s: %" G_GINT64_FORMAT " items after restart %d, want %d", where,
                  stats_of(q).items, restart + 1, n - n / 2);
        kq_queue_unref(q);
      }
      q = et_queue(f->c, "q");
      for (int i = n / 2; i < n; i++)
        expect_item(q, i, len, where);
      et_expect(q, NULL);
      kq_queue_unref(q);
      g_assert_true(kq_collection_delete(f->c, "q", NULL));
    }
  }
}

/* A restart while reads are open in read-behind: the open items come back to the head in xid
 * order, the confirmed ones never come back, and the rest follows in order. */
static void test_restart_with_open_reads(Fixture *f, gconstpointer unused)
{
  (void)unused;
  const gsize len = 100;
  g_autofree gchar *config = config_for(1024);
  reopen(f, config);
  KqQueue *q = et_queue(f->c, "q");
  for (int i = 0; i < 60; i++)
    add_item(q, i, len);
  /* items 0..9 are opened; the even ones are confirmed, the odd ones stay open */
  for (int i = 0; i < 10; i++) {
    KqItem *item = take_item(q, KQ_REMOVE_OPEN, i, len, "open");
    if (i % 2 == 0)
      g_assert_true(kq_queue_confirm(q, item->xid, NULL));
    kq_item_unref(item);
  }
  for (int i = 10; i < 20; i++)
    expect_item(q, i, len, "before restart");
  kq_queue_unref(q);
  reopen(f, config);
  q = et_queue(f->c, "q");
  g_assert_cmpint(stats_of(q).items, ==, 5 + 40);
  for (int i = 1; i < 10; i += 2)
    expect_item(q, i, len, "open read back at the head");
  for (int i = 20; i < 60; i++)
    expect_item(q, i, len, "after restart");
  et_expect(q, NULL);
  kq_queue_unref(q);
}

/* Adds and removes interleaved so that the live file rotates while the read-behind reader is
 * inside it, with records appended after the reader's last refill. Every item is delivered once,
 * in order, and a restart at the end agrees with what is left. */
static void test_rotation_while_reading_behind(Fixture *f, gconstpointer unused)
{
  (void)unused;
  const gint64 limits[] = { 512, 1024, 4096 };
  const gsize sizes[] = { 20, 100, 333 };
  const int ratios[] = { 2, 3, 7 };
  for (guint li = 0; li < G_N_ELEMENTS(limits); li++) {
    for (guint si = 0; si < G_N_ELEMENTS(sizes); si++) {
      for (guint ri = 0; ri < G_N_ELEMENTS(ratios); ri++) {
        g_autofree gchar *config = config_for(limits[li]);
        g_autofree gchar *where = g_strdup_printf(
          "maxMemorySize %" G_GINT64_FORMAT ", %" G_GSIZE_FORMAT "-byte items, a read every %d "
          "adds", limits[li], sizes[si], ratios[ri]);
        gsize len = sizes[si];
        reopen(f, config);
        KqQueue *q = et_queue(f->c, "q");
        int next = 0, head = 0;
        for (int round = 0; round < 400; round++) {
          add_item(q, next++, len);
          if (round % ratios[ri] == 0)
            expect_item(q, head++, len, where);
        }
        g_assert_cmpint(stats_of(q).journal_rotations, >, 0);
        /* half of the rest now, the other half after a restart */
        int stop = head + (next - head) / 2;
        while (head < stop)
          expect_item(q, head++, len, where);
        kq_queue_unref(q);
        reopen(f, config);
        q = et_queue(f->c, "q");
        g_assert_cmpint(stats_of(q).items, ==, next - head);
        while (head < next)
          expect_item(q, head++, len, where);
        et_expect(q, NULL);
        kq_queue_unref(q);
        g_assert_true(kq_collection_delete(f->c, "q", NULL));
      }
    }
  }
}

/* Open reads taken while the reader crosses rotations: the journal's open and confirm records
 * must refer to the items the clients got, so a restart brings back exactly the unconfirmed. */
static void test_open_reads_across_rotation(Fixture *f, gconstpointer unused)
{
  (void)unused;
  const gsize len = 100;
  g_autofree gchar *config = config_for(512);
  reopen(f, config);
  KqQueue *q = et_queue(f->c, "q");
  int next = 0, head = 0;
  GArray *unconfirmed = g_array_new(FALSE, FALSE, sizeof(int));
  for (int round = 0; round < 300; round++) {
    add_item(q, next++, len);
    if (round % 2 == 0) {
      KqItem *item = take_item(q, KQ_REMOVE_OPEN, head, len, "open across rotation");
      if (head % 3 == 0)
        g_array_append_val(unconfirmed, head);
      else
        g_assert_true(kq_queue_confirm(q, item->xid, NULL));
      head++;
      kq_item_unref(item);
    }
  }
  kq_queue_unref(q);
  reopen(f, config);
  q = et_queue(f->c, "q");
  g_assert_cmpint(stats_of(q).items, ==, (gint64)unconfirmed->len + next - head);
  for (guint k = 0; k < unconfirmed->len; k++)
    expect_item(q, g_array_index(unconfirmed, int, k), len, "unconfirmed back at the head");
  while (head < next)
    expect_item(q, head++, len, "never read");
  et_expect(q, NULL);
  kq_queue_unref(q);
  g_array_unref(unconfirmed);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) \
  g_test_add("/read-behind/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD("restart-grid", test_restart_grid);
  ADD("restart-with-open-reads", test_restart_with_open_reads);
  ADD("rotation-while-reading-behind", test_rotation_while_reading_behind);
  ADD("open-reads-across-rotation", test_open_reads_across_rotation);
#undef ADD
  return g_test_run();
}

/* Queue behaviour through the public API (SPEC 1, 5, 7): FIFO, reliable reads, limits, expiry
 * with a test clock, sweeps, fanout, aliases, delete/flush, journal rotation, rewrite and
 * compaction, read-behind, keepJournal, and the folder lock. */
#include "engine-test.h"
#include <kestrel/io.h>
#include <unistd.h>

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

static KqQueueStats stats_of(KqQueue *q)
{
  KqQueueStats s;
  kq_queue_get_stats(q, &s);
  return s;
}

static void add_expiring(KqQueue *q, const gchar *data, gint64 expiry)
{
  GError *error = NULL;
  g_assert_true(kq_queue_add(q, data, strlen(data), expiry, &error));
  g_assert_no_error(error);
}

static void test_fifo(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, NULL);
  g_autoptr(KqQueue) q = et_queue(f->c, "work");
  g_assert_cmpstr(kq_queue_get_name(q), ==, "work");
  et_add(q, "a");
  et_add(q, "b");
  et_add(q, "");
  et_add(q, "c");
  /* peek returns the head and leaves it there */
  for (int i = 0; i < 2; i++) {
    g_autoptr(KqItem) head = kq_queue_remove(q, KQ_REMOVE_PEEK, NULL);
    g_assert_nonnull(head);
    g_assert_cmpmem(head->data, head->len, "a", 1);
  }
  KqQueueStats s = stats_of(q);
  g_assert_cmpint(s.items, ==, 4);
  g_assert_cmpint(s.bytes, ==, 3);
  g_assert_cmpint(s.total_items, ==, 4);
  g_autofree gchar *items = et_drain(q);
  g_assert_cmpstr(items, ==, "a,b,,c");
  g_assert_null(kq_queue_remove(q, KQ_REMOVE_PEEK, NULL));
  s = stats_of(q);
  g_assert_cmpint(s.items, ==, 0);
  g_assert_cmpint(s.bytes, ==, 0);
  g_assert_cmpint(s.total_items, ==, 4);

  /* binary data survives a restart unchanged */
  const guint8 bin[] = { 0, 1, 2, 0xff, '\r', '\n', 0 };
  g_assert_true(kq_queue_add(q, bin, sizeof(bin), 0, NULL));
  g_clear_pointer(&q, kq_queue_unref);
  reopen(f, NULL);
  q = et_queue(f->c, "work");
  g_autoptr(KqItem) item = kq_queue_remove(q, KQ_REMOVE_PLAIN, NULL);
  g_assert_cmpmem(item->data, item->len, bin, sizeof(bin));
}

static void test_bad_name(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, NULL);
  const gchar *bad[] = { "", "a/b", "a.b", "a~b", "a b", "../x", "+x", "x+" };
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    GError *error = NULL;
    g_assert_null(kq_collection_get(f->c, bad[i], TRUE, &error));
    g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_NAME);
    g_clear_error(&error);
    g_assert_null(kq_collection_get(f->c, bad[i], FALSE, &error));
    g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_NAME);
    g_clear_error(&error);
    g_assert_false(kq_collection_add(f->c, bad[i], "x", 1, 0, &error));
    g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_NAME);
    g_clear_error(&error);
  }
  /* the name is checked when no queue has it, and a NULL name is no queue's */
  GError *null_error = NULL;
  g_assert_null(kq_collection_get(f->c, NULL, TRUE, &null_error));
  g_assert_error(null_error, KQ_ERROR, KQ_ERROR_BAD_NAME);
  g_clear_error(&null_error);
  g_assert_false(kq_collection_add(f->c, NULL, "x", 1, 0, &null_error));
  g_assert_error(null_error, KQ_ERROR, KQ_ERROR_BAD_NAME);
  g_clear_error(&null_error);
  g_autofree gchar *files = et_listing(f->dir);
  g_assert_cmpstr(files, ==, "");
  g_autofree gchar *long_name = g_strnfill(201, 'x');
  GError *error = NULL;
  g_assert_null(kq_collection_get(f->c, long_name, TRUE, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_NAME);
  g_clear_error(&error);
  g_assert_null(kq_collection_get(f->c, "absent", FALSE, &error));
  g_assert_no_error(error);
}

/* Names that arrive with a length are checked on all of it: a NUL byte inside does not cut the
 * name short (a client sending "a\0/../x" must not reach queue "a"). */
static void test_name_with_length(void)
{
  static const struct {
    const gchar *name;
    gsize len;
    const gchar *why;  /* NULL: valid */
  } cases[] = {
    { "a\0/../../x", 10, "queue name contains a NUL byte" },
    { "a\0", 2, "queue name contains a NUL byte" },
    { "\0a", 2, "queue name contains a NUL byte" },
    { "ok", 2, NULL },
    { "ok+child", 8, NULL },
    { "okay", 2, NULL },  /* only the bytes given count */
    { "", 0, "queue name is empty" },
    { NULL, 0, "queue name is empty" },
    { "a/b", 3, "queue name must not contain '/', '~' or '.'" },
    { "a b", 3, "queue name must be printable ASCII without spaces" },
    { "+x", 2, "queue name must not start or end with '+'" },
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    GError *error = NULL;
    gboolean ok = kq_queue_name_is_valid_len(cases[i].name, cases[i].len, &error);
    if (cases[i].why == NULL) {
      g_assert_no_error(error);
      g_assert_true(ok);
    } else {
      g_assert_false(ok);
      g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_NAME);
      g_assert_cmpstr(error->message, ==, cases[i].why);
      g_clear_error(&error);
    }
  }
  g_autofree gchar *long_name = g_strnfill(201, 'x');
  g_assert_true(kq_queue_name_is_valid_len(long_name, 200, NULL));
  g_assert_false(kq_queue_name_is_valid_len(long_name, 201, NULL));
  /* the NUL-terminated form is the same check */
  g_assert_true(kq_queue_name_is_valid("ok", NULL));
  g_assert_false(kq_queue_name_is_valid("a/b", NULL));
}

static void test_open_confirm_abort(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, NULL);
  g_autoptr(KqQueue) q = et_queue(f->c, "q");
  et_add(q, "a");
  et_add(q, "b");
  et_add(q, "c");
  KqItem *a = kq_queue_remove(q, KQ_REMOVE_OPEN, NULL);
  g_assert_cmpmem(a->data, a->len, "a", 1);
  g_assert_cmpuint(a->xid, !=, 0);
  KqQueueStats s = stats_of(q);
  g_assert_cmpint(s.items, ==, 2);
  g_assert_cmpint(s.open_transactions, ==, 1);
  g_assert_cmpint(s.transactions, ==, 1);
  /* abort: back at the head, delivered next */
  g_assert_true(kq_queue_abort(q, a->xid, NULL));
  s = stats_of(q);
  g_assert_cmpint(s.items, ==, 3);
  g_assert_cmpint(s.open_transactions, ==, 0);
  g_assert_cmpint(s.canceled_transactions, ==, 1);
  GError *error = NULL;
  g_assert_false(kq_queue_abort(q, a->xid, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_NO_SUCH_XID);
  g_clear_error(&error);
  kq_item_unref(a);

  KqItem *again = kq_queue_remove(q, KQ_REMOVE_OPEN, NULL);
  g_assert_cmpmem(again->data, again->len, "a", 1);
  KqItem *b = kq_queue_remove(q, KQ_REMOVE_OPEN, NULL);
  g_assert_cmpmem(b->data, b->len, "b", 1);
  g_assert_cmpuint(b->xid, !=, again->xid);
  g_assert_true(kq_queue_confirm(q, again->xid, NULL));
  g_assert_false(kq_queue_confirm(q, again->xid, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_NO_SUCH_XID);
  g_clear_error(&error);
  g_assert_false(kq_queue_confirm(q, 0, NULL));
  kq_item_unref(again);

  /* b is still open at the restart: it comes back to the head; a stays confirmed */
  kq_item_unref(b);
  g_clear_pointer(&q, kq_queue_unref);
  reopen(f, NULL);
  q = et_queue(f->c, "q");
  g_autofree gchar *items = et_drain(q);
  g_assert_cmpstr(items, ==, "b,c");
}

/* An item too large for a store segment is handed out itself, not copied: by a plain read,
 * a peek, and an open read while nobody else holds it. An open read while a peek holds it
 * gets a copy, so the peeked item never shows the open read's xid. */
static void test_large_items_handed_out_by_reference(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, NULL);
  g_autoptr(KqQueue) q = et_queue(f->c, "q");
  const gsize big = 300 * 1024;
  g_autofree guint8 *data = g_malloc(big);
  for (gsize i = 0; i < big; i++)
    data[i] = (guint8)(i % 251);
  for (guint i = 0; i < 3; i++) {
    data[0] = (guint8)i;
    g_assert_true(kq_queue_add(q, data, big, 0, NULL));
  }

  /* a peek and then an open read of item 0: the open read must not mark the peeked item */
  g_autoptr(KqItem) peeked = kq_queue_remove(q, KQ_REMOVE_PEEK, NULL);
  g_autoptr(KqItem) peeked_again = kq_queue_remove(q, KQ_REMOVE_PEEK, NULL);
  g_assert_true(peeked == peeked_again); /* the same item, no copy */
  g_autoptr(KqItem) opened = kq_queue_remove(q, KQ_REMOVE_OPEN, NULL);
  g_assert_true(opened != peeked);
  g_assert_cmpuint(opened->xid, !=, 0);
  g_assert_cmpuint(peeked->xid, ==, 0);
  g_assert_cmpmem(opened->data, opened->len, peeked->data, peeked->len);
  g_assert_true(kq_queue_confirm(q, opened->xid, NULL));

  /* item 1, held by nobody else: the open read hands out the stored item */
  KqItem *look = kq_queue_remove(q, KQ_REMOVE_PEEK, NULL);
  KqItem *stored = look; /* still alive after the unref: the queue holds it */
  kq_item_unref(look);
  g_autoptr(KqItem) open1 = kq_queue_remove(q, KQ_REMOVE_OPEN, NULL);
  g_assert_true(open1 == stored);
  g_assert_cmpuint(open1->xid, !=, 0);
  g_assert_cmpint(open1->data[0], ==, 1);
  /* aborted, it comes back as an item of xid 0, and a plain read takes it as it is */
  g_assert_true(kq_queue_abort(q, open1->xid, NULL));
  g_autoptr(KqItem) plain = kq_queue_remove(q, KQ_REMOVE_PLAIN, NULL);
  g_assert_cmpuint(plain->xid, ==, 0);
  g_assert_cmpmem(plain->data, plain->len, open1->data, open1->len);
  g_autoptr(KqItem) last = kq_queue_remove(q, KQ_REMOVE_PLAIN, NULL);
  g_assert_cmpint(last->data[0], ==, 2);
  g_assert_cmpuint(last->len, ==, big);
  g_assert_cmpmem(last->data + 1, big - 1, data + 1, big - 1);
  g_assert_null(kq_queue_remove(q, KQ_REMOVE_PLAIN, NULL));
}

/* An add that passes an item: the queue holds that item itself (nothing copied) and hands it
 * out; a fanout child gets a copy; the journal has both, so both come back after a restart. */
static void test_add_item_held_without_a_copy(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, NULL);
  g_autoptr(KqQueue) child = et_queue(f->c, "jobs+copy");
  const gsize big = KQ_ITEM_HELD_WHOLE + 10;
  guint8 *block = g_malloc(big + 4);
  for (gsize i = 0; i < big; i++)
    block[i + 2] = (guint8)(i % 251);
  KqItem *item = kq_item_new_in_block(block, block + 2, big);
  g_assert_true(kq_collection_add_item(f->c, "jobs", item, 0, NULL));
  g_assert_cmpint(item->ref_count, ==, 2);
  g_assert_cmpint(item->add_time, >, 0);
  g_autoptr(KqQueue) jobs = et_queue(f->c, "jobs");
  g_autoptr(KqItem) got = kq_queue_remove(jobs, KQ_REMOVE_PLAIN, NULL);
  g_assert_true(got == item);
  kq_item_unref(item);
  g_autoptr(KqItem) copy = kq_queue_remove(child, KQ_REMOVE_PEEK, NULL);
  g_assert_true(copy != got);
  g_assert_cmpmem(copy->data, copy->len, got->data, got->len);

  /* again, then a restart: the journal wrote the item's bytes */
  guint8 *again = g_memdup2(block, big + 4);
  item = kq_item_new_in_block(again, again + 2, big);
  g_assert_true(kq_collection_add_item(f->c, "jobs", item, 0, NULL));
  kq_item_unref(item);
  g_clear_pointer(&jobs, kq_queue_unref);
  g_clear_pointer(&child, kq_queue_unref);
  reopen(f, NULL);
  jobs = et_queue(f->c, "jobs");
  child = et_queue(f->c, "jobs+copy");
  g_autoptr(KqItem) replayed = kq_queue_remove(jobs, KQ_REMOVE_PLAIN, NULL);
  g_assert_nonnull(replayed);
  g_assert_cmpmem(replayed->data, replayed->len, got->data, got->len);
  g_assert_null(kq_queue_remove(jobs, KQ_REMOVE_PLAIN, NULL));
  g_assert_cmpint(stats_of(child).items, ==, 2);
}

static void test_xids_unique(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, NULL);
  g_autoptr(KqQueue) q = et_queue(f->c, "q");
  g_autoptr(GHashTable) seen = g_hash_table_new(NULL, NULL);
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 200; i++)
      et_add(q, "x");
    GPtrArray *open = g_ptr_array_new_with_free_func((GDestroyNotify)kq_item_unref);
    for (int i = 0; i < 200; i++) {
      KqItem *item = kq_queue_remove(q, KQ_REMOVE_OPEN, NULL);
      g_assert_nonnull(item);
      g_assert_cmpuint(item->xid, !=, 0);
      g_assert_cmpuint(item->xid, <=, G_MAXINT32);
      g_assert_false(g_hash_table_contains(seen, GUINT_TO_POINTER(item->xid)));
      g_hash_table_add(seen, GUINT_TO_POINTER(item->xid));
      g_ptr_array_add(open, item);
    }
    g_assert_cmpint(stats_of(q).open_transactions, ==, 200);
    for (guint i = 0; i < open->len; i++) {
      KqItem *item = open->pdata[i];
      g_assert_true(i % 2 ? kq_queue_confirm(q, item->xid, NULL)
                          : kq_queue_abort(q, item->xid, NULL));
    }
    g_ptr_array_unref(open);
    g_assert_cmpint(stats_of(q).items, ==, 100);
    g_autofree gchar *rest = et_drain(q);
    g_assert_cmpuint(strlen(rest), ==, 2 * 100 - 1);
  }
}

static void test_limits(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, "[queue items]\nmaxItems=3\n"
            "[queue size]\nmaxSize=10\n"
            "[queue big]\nmaxItemSize=5\n");
  g_autoptr(KqQueue) items = et_queue(f->c, "items");
  GError *error = NULL;
  for (int i = 0; i < 3; i++)
    et_add(items, "x");
  g_assert_false(kq_queue_add(items, "y", 1, 0, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_FULL);
  g_clear_error(&error);
  g_assert_cmpint(stats_of(items).items, ==, 3);
  g_assert_cmpint(stats_of(items).total_items, ==, 3);
  et_expect(items, "x");
  et_add(items, "z");  /* room again */

  g_autoptr(KqQueue) size = et_queue(f->c, "size");
  et_add(size, "1234");
  et_add(size, "5678");
  et_add(size, "9abc");  /* 8 < 10 bytes queued: accepted, now 12 */
  g_assert_false(kq_queue_add(size, "d", 1, 0, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_FULL);
  g_clear_error(&error);
  g_assert_cmpint(stats_of(size).bytes, ==, 12);

  g_autoptr(KqQueue) big = et_queue(f->c, "big");
  et_add(big, "12345");
  g_assert_false(kq_queue_add(big, "123456", 6, 0, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_TOO_LARGE);
  g_clear_error(&error);
  g_assert_cmpint(stats_of(big).items, ==, 1);

  /* the collection reports refusals the same way */
  g_assert_false(kq_collection_add(f->c, "big", "1234567", 7, 0, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_TOO_LARGE);
  g_clear_error(&error);

  /* a refused add left nothing in the journal */
  g_clear_pointer(&items, kq_queue_unref);
  g_clear_pointer(&size, kq_queue_unref);
  g_clear_pointer(&big, kq_queue_unref);
  kq_collection_close(f->c);
  f->c = NULL;
  g_autofree gchar *after_items = et_replay_drain(f->dir, "items");
  g_assert_cmpstr(after_items, ==, "x,x,z");
  g_autofree gchar *after_size = et_replay_drain(f->dir, "size");
  g_assert_cmpstr(after_size, ==, "1234,5678,9abc");
  g_autofree gchar *after_big = et_replay_drain(f->dir, "big");
  g_assert_cmpstr(after_big, ==, "12345");
}

static void test_discard_old(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, "[queue q]\nmaxItems=3\ndiscardOldWhenFull=true\n"
            "[queue s]\nmaxSize=4\ndiscardOldWhenFull=true\n"
            "[queue big]\nmaxItemSize=2\ndiscardOldWhenFull=true\n");
  g_autoptr(KqQueue) q = et_queue(f->c, "q");
  const gchar *in[] = { "a", "b", "c", "d", "e" };
  for (guint i = 0; i < G_N_ELEMENTS(in); i++)
    et_add(q, in[i]);
  KqQueueStats s = stats_of(q);
  g_assert_cmpint(s.discarded, ==, 2);
  g_assert_cmpint(s.items, ==, 3);
  g_assert_cmpint(s.total_items, ==, 5);

  g_autoptr(KqQueue) sq = et_queue(f->c, "s");
  et_add(sq, "aa");
  et_add(sq, "bb");
  et_add(sq, "cc");
  g_assert_cmpint(stats_of(sq).discarded, ==, 1);
  g_autofree gchar *sitems = et_drain(sq);
  g_assert_cmpstr(sitems, ==, "bb,cc");

  /* too large is refused even when old items could be dropped */
  g_autoptr(KqQueue) big = et_queue(f->c, "big");
  et_add(big, "ok");
  GError *error = NULL;
  g_assert_false(kq_queue_add(big, "big", 3, 0, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_TOO_LARGE);
  g_clear_error(&error);
  g_assert_cmpint(stats_of(big).items, ==, 1);

  /* the discards are journalled */
  g_clear_pointer(&q, kq_queue_unref);
  g_clear_pointer(&sq, kq_queue_unref);
  g_clear_pointer(&big, kq_queue_unref);
  kq_collection_close(f->c);
  f->c = NULL;
  g_autofree gchar *after = et_replay_drain(f->dir, "q");
  g_assert_cmpstr(after, ==, "c,d,e");
}

static void test_expiry(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, NULL);
  g_autoptr(KqQueue) q = et_queue(f->c, "q");
  add_expiring(q, "soon", T0 + 1000);
  add_expiring(q, "never", 0);
  add_expiring(q, "later", T0 + 5000);
  et_now_ms = T0 + 999;
  {
    g_autoptr(KqItem) head = kq_queue_remove(q, KQ_REMOVE_PEEK, NULL);
    g_assert_cmpmem(head->data, head->len, "soon", 4);
  }
  et_now_ms = T0 + 1000;  /* expiry is inclusive */
  {
    g_autoptr(KqItem) head = kq_queue_remove(q, KQ_REMOVE_PEEK, NULL);
    g_assert_cmpmem(head->data, head->len, "never", 5);
  }
  g_assert_cmpint(stats_of(q).expired_items, ==, 1);
  et_expect(q, "never");
  et_now_ms = T0 + 6000;
  et_expect(q, NULL);
  KqQueueStats s = stats_of(q);
  g_assert_cmpint(s.expired_items, ==, 2);
  g_assert_cmpint(s.items, ==, 0);
  g_assert_cmpint(s.bytes, ==, 0);

  /* expired items are never handed out, not even as open reads or after a restart */
  add_expiring(q, "gone", T0 + 7000);
  add_expiring(q, "kept", T0 + 60000);
  et_now_ms = T0 + 7000;
  g_clear_pointer(&q, kq_queue_unref);
  reopen(f, NULL);
  q = et_queue(f->c, "q");
  g_autoptr(KqItem) open = kq_queue_remove(q, KQ_REMOVE_OPEN, NULL);
  g_assert_cmpmem(open->data, open->len, "kept", 4);
  g_assert_cmpint(open->expiry, ==, T0 + 60000);
}

static void test_max_age(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, "[queue q]\nmaxAge=10s\n");
  g_autoptr(KqQueue) q = et_queue(f->c, "q");
  add_expiring(q, "none", 0);
  add_expiring(q, "far", T0 + 50000);
  add_expiring(q, "near", T0 + 5000);
  const gint64 expected[] = { T0 + 10000, T0 + 10000, T0 + 5000 };
  for (guint i = 0; i < G_N_ELEMENTS(expected); i++) {
    g_autoptr(KqItem) item = kq_queue_remove(q, KQ_REMOVE_PLAIN, NULL);
    g_assert_cmpint(item->expiry, ==, expected[i]);
  }
  et_add(q, "x");
  et_now_ms = T0 + 10000;
  et_expect(q, NULL);
}

static void test_flush_expired(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, "[queue limited]\nmaxExpireSweep=2\n");
  g_autoptr(KqQueue) q = et_queue(f->c, "q");
  for (int i = 0; i < 5; i++)
    add_expiring(q, "old", T0 + 100);
  et_add(q, "fresh");
  add_expiring(q, "behind", T0 + 100);  /* not at the head: waits its turn */
  et_now_ms = T0 + 200;
  g_assert_cmpint(kq_collection_flush_expired(f->c, "q", NULL), ==, 5);
  g_assert_cmpint(stats_of(q).items, ==, 2);
  g_assert_cmpint(stats_of(q).expired_items, ==, 5);
  g_assert_cmpint(kq_collection_flush_expired(f->c, "q", NULL), ==, 0);
  et_expect(q, "fresh");
  g_assert_cmpint(kq_collection_flush_all_expired(f->c), ==, 1);
  g_assert_cmpint(stats_of(q).items, ==, 0);

  /* maxExpireSweep bounds the periodic sweep, not flush_expired */
  g_autoptr(KqQueue) lim = et_queue(f->c, "limited");
  for (int i = 0; i < 5; i++)
    add_expiring(lim, "old", T0 + 300);
  et_now_ms = T0 + 400;
  g_assert_cmpint(kq_collection_sweep(f->c), ==, 2);
  g_assert_cmpint(stats_of(lim).items, ==, 3);
  g_assert_cmpint(kq_collection_sweep(f->c), ==, 2);
  g_assert_cmpint(kq_collection_sweep(f->c), ==, 1);
  g_assert_cmpint(kq_collection_sweep(f->c), ==, 0);
  for (int i = 0; i < 5; i++)
    add_expiring(lim, "old", T0 + 500);
  et_now_ms = T0 + 600;
  g_assert_cmpint(kq_collection_flush_expired(f->c, "limited", NULL), ==, 5);
}

/* As in Kestrel, flush and flush_expired leave a queue that does not exist uncreated. */
static void test_flush_absent_queue(Fixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  (void)unused;
  reopen(f, "");
  g_assert_true(kq_collection_flush(f->c, "absent", &error));
  g_assert_no_error(error);
  g_assert_cmpint(kq_collection_flush_expired(f->c, "absent", &error), ==, 0);
  g_assert_no_error(error);
  g_autoptr(KqQueue) q = kq_collection_get(f->c, "absent", FALSE, NULL);
  g_assert_null(q);
  g_autoptr(GPtrArray) names = kq_collection_queue_names(f->c);
  g_assert_cmpuint(names->len, ==, 0);

  g_assert_false(kq_collection_flush(f->c, "bad/name", &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_NAME);
  g_clear_error(&error);
  g_assert_cmpint(kq_collection_flush_expired(f->c, "bad/name", &error), ==, -1);
  g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_NAME);
}

static void test_expire_to_queue(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, "[queue q]\nexpireToQueue=dead\nmaxExpireSweep=1\n");
  g_autoptr(KqQueue) q = et_queue(f->c, "q");
  add_expiring(q, "a", T0 + 100);
  add_expiring(q, "b", T0 + 100);
  et_add(q, "c");
  et_now_ms = T0 + 100;
  g_assert_cmpint(kq_collection_sweep(f->c), ==, 1);
  g_autoptr(KqQueue) dead = kq_collection_get(f->c, "dead", FALSE, NULL);
  g_assert_nonnull(dead);
  g_assert_cmpint(stats_of(dead).items, ==, 1);
  et_expect(q, "c");  /* b expires at the head on the way */
  g_autoptr(KqItem) a = kq_queue_remove(dead, KQ_REMOVE_PLAIN, NULL);
  g_assert_cmpmem(a->data, a->len, "a", 1);
  g_assert_cmpint(a->expiry, ==, 0);
  g_assert_cmpint(a->add_time, ==, T0);
  et_expect(dead, "b");
  et_expect(dead, NULL);
  g_assert_cmpint(stats_of(q).expired_items, ==, 2);
}

static void test_open_transaction_timeout(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, "[queue q]\nopenTransactionTimeout=5s\n");
  g_autoptr(KqQueue) q = et_queue(f->c, "q");
  et_add(q, "a");
  et_add(q, "b");
  g_autoptr(KqItem) a = kq_queue_remove(q, KQ_REMOVE_OPEN, NULL);
  et_now_ms = T0 + 4999;
  kq_collection_sweep(f->c);
  g_assert_cmpint(stats_of(q).open_transactions, ==, 1);
  et_now_ms = T0 + 5000;
  kq_collection_sweep(f->c);
  KqQueueStats s = stats_of(q);
  g_assert_cmpint(s.open_transactions, ==, 0);
  g_assert_cmpint(s.canceled_transactions, ==, 1);
  g_assert_false(kq_queue_confirm(q, a->xid, NULL));
  g_autofree gchar *items = et_drain(q);
  g_assert_cmpstr(items, ==, "a,b");
}

static void test_max_queue_age(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, "[default]\nmaxQueueAge=10s\n");
  g_autoptr(KqQueue) empty = et_queue(f->c, "empty");
  g_autoptr(KqQueue) full = et_queue(f->c, "full");
  et_add(full, "x");
  et_add(empty, "y");
  et_expect(empty, "y");
  g_assert_true(et_exists(f->dir, "empty"));
  et_now_ms = T0 + 10000;
  kq_collection_sweep(f->c);
  KqQueue *lookup = kq_collection_get(f->c, "empty", FALSE, NULL);
  g_assert_true(lookup == empty);
  kq_queue_unref(lookup);
  et_now_ms = T0 + 10001;
  kq_collection_sweep(f->c);
  g_assert_null(kq_collection_get(f->c, "empty", FALSE, NULL));
  g_assert_false(et_exists(f->dir, "empty"));
  KqQueue *still = kq_collection_get(f->c, "full", FALSE, NULL);
  g_assert_true(still == full);
  kq_queue_unref(still);
  KqCollectionStats cs;
  kq_collection_get_stats(f->c, &cs);
  g_assert_cmpint(cs.queue_expires, ==, 1);
  g_assert_cmpint(cs.queue_deletes, ==, 1);
  /* the deleted queue refuses work; a new reference creates a fresh queue */
  GError *error = NULL;
  g_assert_false(kq_queue_add(empty, "z", 1, 0, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_CLOSED);
  g_clear_error(&error);
}

/* An add reaches every child however many there are (the lookup keeps the first few queues
 * without allocating and grows past them), and each waits for durability. */
static void test_fanout_many_children(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, NULL);
  KqQueue *kids[9];
  for (guint i = 0; i < G_N_ELEMENTS(kids); i++) {
    g_autofree gchar *name = g_strdup_printf("wide+%u", i);
    kids[i] = et_queue(f->c, name);
  }
  g_assert_true(kq_collection_add(f->c, "wide", "x", 1, 0, NULL));
  g_assert_true(kq_collection_when_durable(f->c, "wide", NULL, NULL));
  g_autoptr(KqQueue) wide = et_queue(f->c, "wide");
  et_expect(wide, "x");
  for (guint i = 0; i < G_N_ELEMENTS(kids); i++) {
    et_expect(kids[i], "x");
    kq_queue_unref(kids[i]);
  }
}

static void test_fanout(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, "[queue only]\nfanoutOnly=true\n");
  g_assert_true(kq_collection_add(f->c, "orders", "before", 6, 0, NULL));
  g_autoptr(KqQueue) audit = et_queue(f->c, "orders+audit");
  g_autoptr(KqQueue) ship = et_queue(f->c, "orders+ship");
  g_assert_true(kq_collection_add(f->c, "orders", "after", 5, 0, NULL));
  g_autoptr(KqQueue) orders = et_queue(f->c, "orders");
  g_autofree gchar *children = kq_collection_children(f->c, "orders");
  g_assert_cmpstr(children, ==, "orders+audit,orders+ship");
  g_autofree gchar *p = et_drain(orders);
  g_assert_cmpstr(p, ==, "before,after");
  g_autofree gchar *a = et_drain(audit);
  g_assert_cmpstr(a, ==, "after");
  /* deleting a child detaches it */
  g_assert_true(kq_collection_delete(f->c, "orders+ship", NULL));
  g_assert_true(kq_collection_add(f->c, "orders", "late", 4, 0, NULL));
  g_autofree gchar *children2 = kq_collection_children(f->c, "orders");
  g_assert_cmpstr(children2, ==, "orders+audit");
  g_assert_null(kq_collection_get(f->c, "orders+ship", FALSE, NULL));
  g_assert_false(et_exists(f->dir, "orders+ship"));
  et_expect(audit, "late");

  /* fanoutOnly: the parent stores nothing, its children do */
  g_autoptr(KqQueue) child = et_queue(f->c, "only+c");
  g_assert_true(kq_collection_add(f->c, "only", "x", 1, 0, NULL));
  g_autoptr(KqQueue) only = et_queue(f->c, "only");
  g_assert_cmpint(stats_of(only).items, ==, 0);
  et_expect(child, "x");
  /* a child inherits fanoutOnly from its parent's group, yet a direct add still stores */
  g_assert_true(kq_collection_add(f->c, "only+c", "direct", 6, 0, NULL));
  et_expect(child, "direct");

  /* children and their contents come back after a restart */
  g_assert_true(kq_collection_add(f->c, "orders", "kept", 4, 0, NULL));
  g_clear_pointer(&audit, kq_queue_unref);
  g_clear_pointer(&ship, kq_queue_unref);
  g_clear_pointer(&orders, kq_queue_unref);
  g_clear_pointer(&child, kq_queue_unref);
  g_clear_pointer(&only, kq_queue_unref);
  reopen(f, NULL);
  g_autofree gchar *children3 = kq_collection_children(f->c, "orders");
  g_assert_cmpstr(children3, ==, "orders+audit");
  g_assert_true(kq_collection_add(f->c, "orders", "new", 3, 0, NULL));
  g_autoptr(KqQueue) audit2 = et_queue(f->c, "orders+audit");
  g_autofree gchar *a2 = et_drain(audit2);
  g_assert_cmpstr(a2, ==, "kept,new");
}

static void test_alias(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, "[alias a]\ndestinationQueues=x;y\n");
  g_assert_true(kq_collection_is_alias(f->c, "a"));
  g_assert_false(kq_collection_is_alias(f->c, "x"));
  g_assert_true(kq_collection_add(f->c, "a", "m1", 2, 0, NULL));
  g_assert_true(kq_collection_add(f->c, "a", "m22", 3, 0, NULL));
  gint64 put_items = 0, put_bytes = 0;
  kq_collection_get_alias_stats(f->c, "a", &put_items, &put_bytes);
  g_assert_cmpint(put_items, ==, 2);
  g_assert_cmpint(put_bytes, ==, 5);
  g_autofree gchar *dests = kq_collection_children(f->c, "a");
  g_assert_cmpstr(dests, ==, "x,y");
  /* flush and delete of an alias are ignored */
  g_assert_true(kq_collection_flush(f->c, "a", NULL));
  g_assert_true(kq_collection_delete(f->c, "a", NULL));
  g_assert_true(kq_collection_is_alias(f->c, "a"));
  g_autoptr(GPtrArray) names = kq_collection_queue_names(f->c);
  g_assert_cmpuint(names->len, ==, 2);  /* x and y; the alias is no queue */
  g_autoptr(GPtrArray) aliases = kq_collection_alias_names(f->c);
  g_assert_cmpuint(aliases->len, ==, 1);
  g_assert_cmpstr(aliases->pdata[0], ==, "a");
  g_autoptr(KqQueue) x = et_queue(f->c, "x");
  g_autoptr(KqQueue) y = et_queue(f->c, "y");
  g_autofree gchar *xs = et_drain(x);
  g_autofree gchar *ys = et_drain(y);
  g_assert_cmpstr(xs, ==, "m1,m22");
  g_assert_cmpstr(ys, ==, "m1,m22");
  g_assert_false(et_exists(f->dir, "a"));
}

static void test_queue_names_sorted(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, NULL);
  const gchar *names[] = { "m", "b", "z", "a", "b+c", "k" };
  for (guint i = 0; i < G_N_ELEMENTS(names); i++)
    kq_queue_unref(et_queue(f->c, names[i]));
  g_autoptr(GPtrArray) got = kq_collection_queue_names(f->c);
  g_ptr_array_add(got, NULL);
  g_autofree gchar *joined = g_strjoinv(",", (gchar **)got->pdata);
  g_assert_cmpstr(joined, ==, "a,b,b+c,k,m,z");
  KqCollectionStats cs;
  kq_collection_get_stats(f->c, &cs);
  g_assert_cmpint(cs.queue_creates, ==, 6);
}

static void test_delete(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, "[queue q]\nmaxMemorySize=1KB\n");
  g_autoptr(KqQueue) q = et_queue(f->c, "q");
  g_autoptr(KqQueue) other = et_queue(f->c, "qq");
  gchar data[300];
  memset(data, 'd', sizeof(data) - 1);
  data[sizeof(data) - 1] = '\0';
  for (int i = 0; i < 20; i++)
    et_add(q, data);
  et_add(other, "keep");
  g_assert_cmpint(stats_of(q).journal_rotations, >, 0);
  g_autoptr(KqItem) open = kq_queue_remove(q, KQ_REMOVE_OPEN, NULL);
  et_write(f->dir, "q~~5", "junk", 4);
  et_write(f->dir, "q.1.pack", "junk", 4);
  g_assert_true(kq_collection_delete(f->c, "q", NULL));
  g_autofree gchar *files = et_listing(f->dir);
  g_assert_cmpstr(files, ==, "qq");
  g_assert_null(kq_collection_get(f->c, "q", FALSE, NULL));
  /* the open read died with the queue: finishing it neither succeeds nor recreates a file */
  GError *error = NULL;
  g_assert_false(kq_queue_confirm(q, open->xid, &error));
  g_assert_nonnull(error);
  g_clear_error(&error);
  g_assert_false(kq_queue_abort(q, open->xid, &error));
  g_assert_nonnull(error);
  g_clear_error(&error);
  g_assert_false(kq_queue_add(q, "x", 1, 0, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_CLOSED);
  g_clear_error(&error);
  g_autofree gchar *files_after = et_listing(f->dir);
  g_assert_cmpstr(files_after, ==, "qq");
  /* deleting an absent queue is fine */
  g_assert_true(kq_collection_delete(f->c, "q", NULL));
  g_clear_pointer(&q, kq_queue_unref);
  g_clear_pointer(&other, kq_queue_unref);
  reopen(f, NULL);
  g_autoptr(GPtrArray) names = kq_collection_queue_names(f->c);
  g_assert_cmpuint(names->len, ==, 1);
  g_assert_cmpstr(names->pdata[0], ==, "qq");
}

static void test_flush(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, NULL);
  g_autoptr(KqQueue) q = et_queue(f->c, "q");
  et_add(q, "a");
  et_add(q, "b");
  et_add(q, "c");
  g_autoptr(KqItem) a = kq_queue_remove(q, KQ_REMOVE_OPEN, NULL);
  g_assert_true(kq_collection_flush(f->c, "q", NULL));
  KqQueueStats s = stats_of(q);
  g_assert_cmpint(s.items, ==, 0);
  g_assert_cmpint(s.bytes, ==, 0);
  g_assert_cmpint(s.total_flushes, ==, 1);
  g_assert_cmpint(s.open_transactions, ==, 1);  /* open reads are left alone */
  et_expect(q, NULL);
  et_add(q, "d");
  g_clear_pointer(&q, kq_queue_unref);
  /* after a restart: the open read comes back, the flushed items do not */
  reopen(f, NULL);
  q = et_queue(f->c, "q");
  g_autofree gchar *items = et_drain(q);
  g_assert_cmpstr(items, ==, "a,d");
  et_add(q, "e");
  kq_collection_flush_all(f->c);
  et_expect(q, NULL);
}

/* Items of exactly `len` bytes, numbered, so order can be checked. */
static gchar *numbered(int i, gsize len)
{
  gchar *s = g_malloc(len + 1);
  memset(s, '.', len);
  s[len] = '\0';
  gchar head[16];
  int n = g_snprintf(head, sizeof(head), "%06d", i);
  memcpy(s, head, (gsize)n);
  return s;
}

static void expect_numbered(KqQueue *q, int i, gsize len)
{
  g_autofree gchar *want = numbered(i, len);
  g_autoptr(KqItem) item = kq_queue_remove(q, KQ_REMOVE_PLAIN, NULL);
  if (item == NULL)
    g_error("item %d missing", i);
  if (item->len != len || memcmp(item->data, want, len) != 0)
    g_error("item %d: got \"%.*s\"", i, (int)MIN(item->len, 6), (const char *)item->data);
}

static void test_rotation(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, "[queue q]\nmaxMemorySize=4KB\n");
  g_autoptr(KqQueue) q = et_queue(f->c, "q");
  const gsize len = 500;
  for (int i = 0; i < 40; i++) {
    g_autofree gchar *item = numbered(i, len);
    et_add(q, item);
    /* the live file never grows far past maxMemorySize */
    g_assert_cmpint(et_records_size(f->dir, "q"), <=, 4096 + (gint64)len + 21);
  }
  KqQueueStats s = stats_of(q);
  g_assert_cmpint(s.journal_rotations, >=, 4);
  g_assert_cmpint(s.logsize, ==, 40 * (gint64)(len + 21));
  g_autofree gchar *files = et_listing(f->dir);
  gchar **names = g_strsplit(files, " ", -1);
  guint rotated = 0;
  for (gchar **n = names; *n != NULL; n++) {
    gint64 ts = 0;
    if (kq_journal_classify("q", *n, &ts) == KQ_JOURNAL_FILE_ROTATED)
      rotated++;
  }
  g_strfreev(names);
  g_assert_cmpuint(rotated, ==, (guint)s.journal_rotations);
  for (int i = 0; i < 10; i++)
    expect_numbered(q, i, len);
  g_clear_pointer(&q, kq_queue_unref);
  reopen(f, "[queue q]\nmaxMemorySize=4KB\n");
  q = et_queue(f->c, "q");
  g_assert_cmpint(stats_of(q).items, ==, 30);
  for (int i = 10; i < 40; i++)
    expect_numbered(q, i, len);
  et_expect(q, NULL);
}

static void test_rewrite_empty(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, "[queue q]\ndefaultJournalSize=1KB\n");
  g_autoptr(KqQueue) q = et_queue(f->c, "q");
  for (int i = 0; i < 20; i++) {
    g_autofree gchar *item = numbered(i, 100);
    et_add(q, item);
  }
  g_assert_cmpint(et_records_size(f->dir, "q"), ==, 20 * 121);
  for (int i = 0; i < 19; i++)
    expect_numbered(q, i, 100);
  g_assert_cmpint(stats_of(q).journal_rewrites, ==, 0);  /* not empty yet */
  expect_numbered(q, 19, 100);
  KqQueueStats s = stats_of(q);
  g_assert_cmpint(s.journal_rewrites, ==, 1);
  g_assert_cmpint(s.logsize, ==, 0);
  g_autofree gchar *files = et_listing(f->dir);
  g_assert_cmpstr(files, ==, "q");
  g_assert_cmpint(et_records_size(f->dir, "q"), ==, 0);
  /* a small journal of an empty queue is left alone */
  et_add(q, "x");
  et_expect(q, "x");
  et_expect(q, NULL);
  g_assert_cmpint(stats_of(q).journal_rewrites, ==, 1);
  g_assert_cmpint(et_records_size(f->dir, "q"), ==, 22 + 1);
}

/* Items 0..n-1 of `len` bytes added, then taken back in order: the queue is empty again. */
static void add_then_drain_numbered(KqQueue *q, int n, gsize len)
{
  for (int i = 0; i < n; i++) {
    g_autofree gchar *item = numbered(i, len);
    et_add(q, item);
  }
  for (int i = 0; i < n; i++)
    expect_numbered(q, i, len);
}

static GMutex deleted_lock;
static GThread *deleted_closed_on;
static gint deleted_closes;

static int recording_close_deleted(int fd)
{
  g_mutex_lock(&deleted_lock);
  deleted_closed_on = g_thread_self();
  deleted_closes++;
  g_mutex_unlock(&deleted_lock);
  return close(fd);
}

static gint deleted_closes_now(void)
{
  g_mutex_lock(&deleted_lock);
  gint n = deleted_closes;
  g_mutex_unlock(&deleted_lock);
  return n;
}

/* The journal of a queue that emptied is deleted and started again; the last close of the
 * deleted file (which frees its blocks, a wait for the device with `discard`) runs on another
 * thread than the remove that emptied the queue. */
static void test_deleted_journal_closed_in_background(Fixture *f, gconstpointer unused)
{
  (void)unused;
  const KqIoOps ops = { .close_deleted = recording_close_deleted, .allocate_ahead = 4096 };
  kq_io_set(&ops);
  deleted_closes = 0;
  deleted_closed_on = NULL;
  reopen(f, "[queue q]\ndefaultJournalSize=1KB\n");
  g_autoptr(KqQueue) q = et_queue(f->c, "q");
  add_then_drain_numbered(q, 20, 100);
  g_assert_cmpint(stats_of(q).journal_rewrites, ==, 1);
  gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
  while (deleted_closes_now() < 1 && g_get_monotonic_time() < deadline)
    g_usleep(1000);
  g_assert_cmpint(deleted_closes_now(), ==, 1);
  g_mutex_lock(&deleted_lock);
  g_assert_true(deleted_closed_on != g_thread_self());
  g_mutex_unlock(&deleted_lock);
  /* the new journal works */
  et_add(q, "after");
  et_expect(q, "after");
  kq_io_set(NULL);
}

static void test_compaction(Fixture *f, gconstpointer unused)
{
  (void)unused;
  const gchar *config = "[queue q]\nmaxJournalSize=4KB\nminJournalCompactDelay=10s\n";
  reopen(f, config);
  g_autoptr(KqQueue) q = et_queue(f->c, "q");
  int next = 0, head = 0;
  for (int i = 0; i < 3; i++) {
    g_autofree gchar *item = numbered(next++, 100);
    et_add(q, item);
  }
  /* grow the journal past maxJournalSize while the queue holds 3 items */
  while (stats_of(q).logsize <= 8192) {
    g_autofree gchar *item = numbered(next++, 100);
    et_add(q, item);
    expect_numbered(q, head++, 100);
  }
  g_assert_cmpint(stats_of(q).journal_rewrites, ==, 0);  /* within minJournalCompactDelay */
  et_now_ms = T0 + 10000;
  {
    g_autofree gchar *item = numbered(next++, 100);
    et_add(q, item);
  }
  KqQueueStats s = stats_of(q);
  g_assert_cmpint(s.journal_rewrites, ==, 1);
  g_assert_cmpint(s.logsize, <=, 4 * 121);
  g_assert_cmpint(s.items, ==, 4);
  /* the next compaction waits another 10 s */
  while (stats_of(q).logsize <= 8192) {
    g_autofree gchar *item = numbered(next++, 100);
    et_add(q, item);
    expect_numbered(q, head++, 100);
  }
  g_assert_cmpint(stats_of(q).journal_rewrites, ==, 1);
  et_now_ms = T0 + 20000;
  expect_numbered(q, head++, 100);
  {
    g_autofree gchar *item = numbered(next++, 100);
    et_add(q, item);
  }
  g_assert_cmpint(stats_of(q).journal_rewrites, ==, 2);
  /* the compacted journal replays to the same queue */
  g_clear_pointer(&q, kq_queue_unref);
  reopen(f, config);
  q = et_queue(f->c, "q");
  g_assert_cmpint(stats_of(q).items, ==, next - head);
  while (head < next)
    expect_numbered(q, head++, 100);
  et_expect(q, NULL);
}

static void assert_memory_bound(KqQueue *q, gint64 max_memory, gsize item_len)
{
  KqQueueStats s = stats_of(q);
  if (s.mem_bytes > max_memory + (gint64)item_len)
    g_error("mem_bytes %" G_GINT64_FORMAT " over maxMemorySize %" G_GINT64_FORMAT
            " + one item", s.mem_bytes, max_memory);
  g_assert_cmpint(s.mem_items, <=, s.items);
}

static void test_read_behind(Fixture *f, gconstpointer unused)
{
  (void)unused;
  const gchar *config = "[queue q]\nmaxMemorySize=4KB\n";
  const gsize len = 100;
  reopen(f, config);
  g_autoptr(KqQueue) q = et_queue(f->c, "q");
  for (int i = 0; i < 1000; i++) {
    g_autofree gchar *item = numbered(i, len);
    et_add(q, item);
    assert_memory_bound(q, 4096, len);
  }
  KqQueueStats s = stats_of(q);
  g_assert_cmpint(s.items, ==, 1000);
  g_assert_cmpint(s.bytes, ==, 1000 * (gint64)len);
  g_assert_cmpint(s.mem_items, <, 1000);
  for (int i = 0; i < 400; i++) {
    expect_numbered(q, i, len);
    assert_memory_bound(q, 4096, len);
  }
  /* a restart in the middle of read-behind */
  g_clear_pointer(&q, kq_queue_unref);
  reopen(f, config);
  q = et_queue(f->c, "q");
  s = stats_of(q);
  g_assert_cmpint(s.items, ==, 600);
  assert_memory_bound(q, 4096, len);
  /* more items while read-behind is on, interleaved with removes */
  int next = 1000, head = 400;
  for (int round = 0; round < 300; round++) {
    g_autofree gchar *item = numbered(next++, len);
    et_add(q, item);
    if (round % 3 != 0)
      expect_numbered(q, head++, len);
    assert_memory_bound(q, 4096, len);
  }
  while (head < next) {
    expect_numbered(q, head++, len);
    assert_memory_bound(q, 4096, len);
  }
  et_expect(q, NULL);
  s = stats_of(q);
  g_assert_cmpint(s.items, ==, 0);
  g_assert_cmpint(s.mem_items, ==, 0);
  g_assert_cmpint(s.mem_bytes, ==, 0);
  /* and open reads work in read-behind too */
  for (int i = 0; i < 100; i++) {
    g_autofree gchar *item = numbered(i, len);
    et_add(q, item);
  }
  for (int i = 0; i < 100; i++) {
    g_autoptr(KqItem) item = kq_queue_remove(q, KQ_REMOVE_OPEN, NULL);
    g_autofree gchar *want = numbered(i, len);
    g_assert_cmpmem(item->data, item->len, want, len);
    if (i % 2)
      g_assert_true(kq_queue_confirm(q, item->xid, NULL));
    else
      g_assert_true(kq_queue_abort(q, item->xid, NULL));
    if (i % 2 == 0) {
      g_autoptr(KqItem) again = kq_queue_remove(q, KQ_REMOVE_PLAIN, NULL);
      g_assert_cmpmem(again->data, again->len, want, len);
    }
  }
  et_expect(q, NULL);
  g_clear_pointer(&q, kq_queue_unref);
  reopen(f, config);
  q = et_queue(f->c, "q");
  et_expect(q, NULL);
}

static void test_keep_journal_false(Fixture *f, gconstpointer unused)
{
  (void)unused;
  const gchar *config = "[queue mem]\nkeepJournal=false\n";
  reopen(f, config);
  g_autoptr(KqQueue) q = et_queue(f->c, "mem");
  et_add(q, "a");
  et_add(q, "b");
  g_autoptr(KqItem) open = kq_queue_remove(q, KQ_REMOVE_OPEN, NULL);
  g_assert_true(kq_queue_abort(q, open->xid, NULL));
  g_assert_cmpint(stats_of(q).logsize, ==, 0);
  g_autofree gchar *files = et_listing(f->dir);
  g_assert_cmpstr(files, ==, "");
  g_assert_true(kq_queue_when_durable(q, NULL, NULL));
  g_clear_pointer(&q, kq_queue_unref);
  reopen(f, config);
  q = et_queue(f->c, "mem");
  et_expect(q, NULL);
}

static void test_clean_close_empty(Fixture *f, gconstpointer unused)
{
  (void)unused;
  const gchar *config = "[queue q]\nmaxMemorySize=1KB\n";
  reopen(f, config);
  g_autoptr(KqQueue) q = et_queue(f->c, "q");
  add_then_drain_numbered(q, 30, 100);
  g_clear_pointer(&q, kq_queue_unref);
  kq_collection_close(f->c);
  f->c = NULL;
  g_autofree gchar *files = et_listing(f->dir);
  g_assert_cmpstr(files, ==, "q");
  g_assert_cmpint(et_file_size(f->dir, "q"), ==, 0);
}

static void test_folder_lock(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, NULL);
  GError *error = NULL;
  KqConfigSet *config = kq_config_set_new();
  KqCollection *second = kq_collection_open(f->dir, config, &error);
  g_assert_null(second);
  g_assert_error(error, KQ_ERROR, KQ_ERROR_LOCKED);
  g_clear_error(&error);
  kq_config_set_free(config);  /* a failed open leaves the config with the caller */
  /* the holder still works, and its lock file names its pid */
  g_autoptr(KqQueue) q = et_queue(f->c, "q");
  et_add(q, "a");
  g_clear_pointer(&q, kq_queue_unref);
  kq_collection_close(f->c);
  f->c = NULL;
  second = kq_collection_open(f->dir, NULL, &error);
  g_assert_no_error(error);
  g_assert_nonnull(second);
  f->c = second;
  q = et_queue(f->c, "q");
  et_expect(q, "a");
}

static void et_wait_keep(KqQueue *q, KqItem *item, gpointer user_data)
{
  (void)q;
  *(KqItem **)user_data = item;
}

/* Adds and reads answered at once are counted and timed; peeks are timed but take nothing;
 * a parked read is not timed, but the item handed to it counts as read. */
static void test_op_stats(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, NULL);
  g_autoptr(KqQueue) q = et_queue(f->c, "ops");
  KqQueueOpStats s;
  et_add(q, "a");
  et_add(q, "b");
  et_expect(q, "a");
  g_autoptr(KqItem) peeked = kq_queue_remove(q, KQ_REMOVE_PEEK, NULL);
  g_assert_nonnull(peeked);
  et_expect(q, "b");
  et_expect(q, NULL);
  kq_queue_get_op_stats(q, &s);
  g_assert_cmpuint(s.add_latency.count, ==, 2);
  g_assert_cmpuint(s.read_hit_latency.count, ==, 3);
  g_assert_cmpuint(s.read_miss_latency.count, ==, 1);
  g_assert_cmpint(s.items_read, ==, 2);
  g_assert_cmpuint(kq_latency_percentile_ns(&s.add_latency, 1.0), ==, s.add_latency.max_ns);

  KqItem *handed = NULL;
  KqWaiter *w = kq_queue_remove_wait(q, 0, -1, et_wait_keep, &handed, &handed, NULL);
  g_assert_nonnull(w);
  et_add(q, "c");
  g_assert_nonnull(handed);
  g_assert_cmpmem(handed->data, handed->len, "c", 1);
  kq_item_unref(handed);
  kq_queue_get_op_stats(q, &s);
  g_assert_cmpuint(s.add_latency.count, ==, 3);
  g_assert_cmpuint(s.read_hit_latency.count, ==, 3);
  g_assert_cmpuint(s.read_miss_latency.count, ==, 1);
  g_assert_cmpint(s.items_read, ==, 3);
  /* Kestrel's get_items_hit / get_items_miss: the served waiter is a hit */
  KqQueueStats qs;
  kq_queue_get_stats(q, &qs);
  g_assert_cmpint(qs.get_items_hit, ==, 4);
  g_assert_cmpint(qs.get_items_miss, ==, 1);
  g_assert_cmpint(qs.put_bytes, ==, 3);
  /* every item taken (the served waiter's too) had its time in the queue recorded */
  g_assert_cmpuint(s.delivery_latency.count, ==, 3);
}

/* Lifetime counters of the collection never go down when queues are deleted: total_items
 * counts accepted adds since open, and the operation stats keep those of deleted queues. */
static void test_counters_survive_delete(Fixture *f, gconstpointer unused)
{
  (void)unused;
  reopen(f, NULL);
  KqCollectionStats cs;
  KqQueueOpStats ops;
  g_assert_true(kq_collection_add(f->c, "gone", "a", 1, 0, NULL));
  g_assert_true(kq_collection_add(f->c, "gone", "b", 1, 0, NULL));
  g_assert_true(kq_collection_add(f->c, "kept", "c", 1, 0, NULL));
  g_autoptr(KqQueue) gone = kq_collection_get(f->c, "gone", FALSE, NULL);
  g_autoptr(KqItem) item = kq_queue_remove(gone, 0, NULL);
  g_assert_nonnull(item);
  g_assert_true(kq_collection_delete(f->c, "gone", NULL));
  kq_collection_get_stats(f->c, &cs);
  g_assert_cmpint(cs.total_items, ==, 3);
  g_assert_cmpint(cs.curr_items, ==, 1);
  kq_collection_get_op_stats(f->c, &ops);
  g_assert_cmpuint(ops.add_latency.count, ==, 3);
  g_assert_cmpuint(ops.read_hit_latency.count, ==, 1);
  g_assert_cmpint(ops.items_read, ==, 1);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add("/queue/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD("fifo", test_fifo);
  ADD("deleted-journal-closed-in-background", test_deleted_journal_closed_in_background);
  ADD("fanout-many-children", test_fanout_many_children);
  ADD("bad-name", test_bad_name);
  g_test_add_func("/queue/name-with-length", test_name_with_length);
  ADD("open-confirm-abort", test_open_confirm_abort);
  ADD("large-items-by-reference", test_large_items_handed_out_by_reference);
  ADD("add-item-held-without-a-copy", test_add_item_held_without_a_copy);
  ADD("xids-unique", test_xids_unique);
  ADD("limits", test_limits);
  ADD("discard-old", test_discard_old);
  ADD("expiry", test_expiry);
  ADD("max-age", test_max_age);
  ADD("flush-expired", test_flush_expired);
  ADD("flush-absent-queue", test_flush_absent_queue);
  ADD("expire-to-queue", test_expire_to_queue);
  ADD("open-transaction-timeout", test_open_transaction_timeout);
  ADD("max-queue-age", test_max_queue_age);
  ADD("fanout", test_fanout);
  ADD("alias", test_alias);
  ADD("names-sorted", test_queue_names_sorted);
  ADD("delete", test_delete);
  ADD("flush", test_flush);
  ADD("rotation", test_rotation);
  ADD("rewrite-empty", test_rewrite_empty);
  ADD("compaction", test_compaction);
  ADD("read-behind", test_read_behind);
  ADD("keep-journal-false", test_keep_journal_false);
  ADD("clean-close-empty", test_clean_close_empty);
  ADD("folder-lock", test_folder_lock);
  ADD("op-stats", test_op_stats);
  ADD("counters-survive-delete", test_counters_survive_delete);
#undef ADD
  return g_test_run();
}

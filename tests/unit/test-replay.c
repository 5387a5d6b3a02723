/* Journal replay (SPEC 7): journal files written byte by byte into a temporary folder, then
 * opened with a KqCollection. Every opcode's effect, open reads going back to the head,
 * rotated files and packs, temporaries, torn tails, unknown opcodes, and the on-disk states a
 * crash can leave between the steps of a rewrite. */
#include "engine-test.h"

#define T0 G_GINT64_CONSTANT(1700000000000)

typedef struct {
  gchar *dir;
  GByteArray *b;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer unused)
{
  (void)unused;
  f->dir = et_tmpdir();
  f->b = g_byte_array_new();
}

static void fixture_teardown(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_allow_warnings(FALSE);
  et_clock_restore();
  et_rmtree(f->dir);
  g_free(f->dir);
  g_byte_array_unref(f->b);
}

/* Write f->b as `name` and start a new buffer. */
static void flush_to(Fixture *f, const gchar *name)
{
  et_write_bytes(f->dir, name, f->b);
  g_byte_array_set_size(f->b, 0);
}

static void assert_replay(Fixture *f, const gchar *expected)
{
  g_autofree gchar *got = et_replay_drain(f->dir, "q");
  g_assert_cmpstr(got, ==, expected);
}

/* Open, check the items without consuming them for good (peek at the count, then drain into
 * a string), and close without touching the journal beyond the drain's REMOVEs. */
static gchar *open_and_list(Fixture *f, KqQueueStats *stats)
{
  KqCollection *c = et_open(f->dir, NULL);
  KqQueue *q = et_queue(c, "q");
  if (stats != NULL)
    kq_queue_get_stats(q, stats);
  gchar *items = et_drain(q);
  kq_queue_unref(q);
  kq_collection_close(c);
  return items;
}

static void test_addx_remove(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_addx(f->b, T0, 0, "a");
  et_addx(f->b, T0 + 1, 0, "bb");
  et_addx(f->b, T0 + 2, 0, "ccc");
  et_u8(f->b, 1);
  et_addx(f->b, T0 + 3, 0, "");
  flush_to(f, "q");
  KqQueueStats s;
  g_autofree gchar *items = open_and_list(f, &s);
  g_assert_cmpstr(items, ==, "bb,ccc,");
  g_assert_cmpint(s.items, ==, 3);
  g_assert_cmpint(s.bytes, ==, 5);
  g_assert_cmpint(s.open_transactions, ==, 0);

  /* add time and expiry come back as written */
  g_byte_array_set_size(f->b, 0);
  et_addx(f->b, T0 + 7, G_GINT64_CONSTANT(4000000000000), "x");
  flush_to(f, "q");
  KqCollection *c = et_open(f->dir, NULL);
  KqQueue *q = et_queue(c, "q");
  KqItem *item = kq_queue_remove(q, KQ_REMOVE_PLAIN, NULL);
  g_assert_nonnull(item);
  g_assert_cmpint(item->add_time, ==, T0 + 7);
  g_assert_cmpint(item->expiry, ==, G_GINT64_CONSTANT(4000000000000));
  g_assert_cmpuint(item->xid, ==, 0);
  kq_item_unref(item);
  kq_queue_unref(q);
  kq_collection_close(c);
}

static void test_legacy_add(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_clock_install(T0);
  et_add_legacy(f->b, 0, "never");
  et_add_legacy(f->b, (guint32)(T0 / 1000) + 3600, "hour");
  et_add_legacy(f->b, (guint32)(T0 / 1000) - 10, "expired");
  et_add_legacy(f->b, 0, "");
  flush_to(f, "q");
  KqCollection *c = et_open(f->dir, NULL);
  KqQueue *q = et_queue(c, "q");
  KqItem *item = kq_queue_remove(q, KQ_REMOVE_PLAIN, NULL);
  g_assert_cmpmem(item->data, item->len, "never", 5);
  g_assert_cmpint(item->expiry, ==, 0);
  g_assert_cmpint(item->add_time, ==, T0);  /* legacy records carry no add time */
  kq_item_unref(item);
  item = kq_queue_remove(q, KQ_REMOVE_PLAIN, NULL);
  g_assert_cmpmem(item->data, item->len, "hour", 4);
  g_assert_cmpint(item->expiry, ==, T0 + 3600 * 1000);
  kq_item_unref(item);
  /* the expired item is never returned */
  item = kq_queue_remove(q, KQ_REMOVE_PLAIN, NULL);
  g_assert_nonnull(item);
  g_assert_cmpuint(item->len, ==, 0);
  kq_item_unref(item);
  et_expect(q, NULL);
  KqQueueStats s;
  kq_queue_get_stats(q, &s);
  g_assert_cmpint(s.expired_items, ==, 1);
  kq_queue_unref(q);
  kq_collection_close(c);
}

static void test_remove_tentative_legacy(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_addx(f->b, T0, 0, "a");
  et_addx(f->b, T0, 0, "b");
  et_u8(f->b, 3);  /* opens "a" with xid 0 */
  flush_to(f, "q");
  KqCollection *c = et_open(f->dir, NULL);
  KqQueue *q = et_queue(c, "q");
  KqQueueStats s;
  kq_queue_get_stats(q, &s);
  g_assert_cmpint(s.items, ==, 2);
  g_assert_cmpint(s.open_transactions, ==, 0);
  kq_queue_unref(q);
  kq_collection_close(c);
  /* the read went back to the head, and stays there after another restart */
  assert_replay(f, "a,b");
}

/* Two legacy opens both carry xid 0: neither item may be lost. */
static void test_remove_tentative_legacy_twice(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_addx(f->b, T0, 0, "a");
  et_addx(f->b, T0, 0, "b");
  et_addx(f->b, T0, 0, "c");
  et_u8(f->b, 3);
  et_u8(f->b, 3);
  flush_to(f, "q");
  assert_replay(f, "a,b,c");
}

static void test_open_reads_return_to_head(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_addx(f->b, T0, 0, "a");
  et_addx(f->b, T0, 0, "b");
  et_addx(f->b, T0, 0, "c");
  et_addx(f->b, T0, 0, "d");
  et_addx(f->b, T0, 0, "e");
  et_xid_op(f->b, 9, 10);  /* a */
  et_xid_op(f->b, 9, 11);  /* b */
  et_xid_op(f->b, 9, 12);  /* c */
  et_xid_op(f->b, 6, 11);  /* b confirmed */
  flush_to(f, "q");
  gint64 size = et_file_size(f->dir, "q");
  KqCollection *c = et_open(f->dir, NULL);
  KqQueue *q = et_queue(c, "q");
  KqQueueStats s;
  kq_queue_get_stats(q, &s);
  g_assert_cmpint(s.items, ==, 4);
  g_assert_cmpint(s.open_transactions, ==, 0);
  /* an UNREMOVE for each read that was open */
  g_assert_cmpint(et_records_size(f->dir, "q"), ==, size + 2 * 5);
  kq_queue_unref(q);
  kq_collection_close(c);
  assert_replay(f, "a,c,d,e");
}

static void test_open_reads_xid_order(Fixture *f, gconstpointer unused)
{
  (void)unused;
  /* reads opened with falling xids go back in xid order: the lowest xid is the new head */
  et_addx(f->b, T0, 0, "a");
  et_addx(f->b, T0, 0, "b");
  et_addx(f->b, T0, 0, "c");
  et_xid_op(f->b, 9, 30);  /* a */
  et_xid_op(f->b, 9, 20);  /* b */
  flush_to(f, "q");
  assert_replay(f, "b,a,c");
}

static void test_unremove(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_addx(f->b, T0, 0, "a");
  et_addx(f->b, T0, 0, "b");
  et_addx(f->b, T0, 0, "c");
  et_xid_op(f->b, 9, 1);  /* a */
  et_u8(f->b, 1);         /* b removed */
  et_xid_op(f->b, 5, 1);  /* a back at the head */
  et_xid_op(f->b, 9, 2);  /* a again */
  et_xid_op(f->b, 6, 2);  /* and confirmed */
  et_xid_op(f->b, 5, 99); /* unknown xid: ignored */
  et_xid_op(f->b, 6, 98); /* unknown xid: ignored */
  flush_to(f, "q");
  KqQueueStats s;
  g_autofree gchar *items = open_and_list(f, &s);
  g_assert_cmpstr(items, ==, "c");
  g_assert_cmpint(s.items, ==, 1);
}

static void test_save_xid(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_xid_op(f->b, 4, 100);
  et_addx(f->b, T0, 0, "a");
  et_addx(f->b, T0, 0, "b");
  flush_to(f, "q");
  KqCollection *c = et_open(f->dir, NULL);
  KqQueue *q = et_queue(c, "q");
  KqItem *item = kq_queue_remove(q, KQ_REMOVE_OPEN, NULL);
  g_assert_nonnull(item);
  g_assert_cmpuint(item->xid, ==, 101);
  g_assert_true(kq_queue_confirm(q, 101, NULL));
  kq_item_unref(item);
  kq_queue_unref(q);
  kq_collection_close(c);

  /* REMOVE_TENTATIVE_XID also moves the last-used xid */
  g_byte_array_set_size(f->b, 0);
  et_addx(f->b, T0, 0, "a");
  et_addx(f->b, T0, 0, "b");
  et_xid_op(f->b, 9, 500);
  et_xid_op(f->b, 6, 500);
  flush_to(f, "q");
  c = et_open(f->dir, NULL);
  q = et_queue(c, "q");
  item = kq_queue_remove(q, KQ_REMOVE_OPEN, NULL);
  g_assert_nonnull(item);
  g_assert_cmpmem(item->data, item->len, "b", 1);
  g_assert_cmpuint(item->xid, ==, 501);
  kq_item_unref(item);
  kq_queue_unref(q);
  kq_collection_close(c);
}

static void test_add_xid(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_addx(f->b, T0, 0, "a");
  et_xid_block(f->b, 7, 42, T0 + 5, 0, "b");
  flush_to(f, "q");
  KqCollection *c = et_open(f->dir, NULL);
  KqQueue *q = et_queue(c, "q");
  KqQueueStats s;
  kq_queue_get_stats(q, &s);
  g_assert_cmpint(s.items, ==, 2);
  g_assert_cmpint(s.open_transactions, ==, 0);
  et_expect(q, "a");
  KqItem *item = kq_queue_remove(q, KQ_REMOVE_PLAIN, NULL);
  g_assert_cmpmem(item->data, item->len, "b", 1);
  g_assert_cmpint(item->add_time, ==, T0 + 5);
  kq_item_unref(item);
  kq_queue_unref(q);
  kq_collection_close(c);
}

static void test_continue(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_addx(f->b, T0, 0, "a");
  et_addx(f->b, T0, 0, "b");
  et_xid_op(f->b, 9, 4);                           /* a opened */
  et_xid_block(f->b, 8, 4, T0 + 9, 0, "a-next");   /* finished; the new item goes to the tail */
  flush_to(f, "q");
  KqQueueStats s;
  g_autofree gchar *items = open_and_list(f, &s);
  g_assert_cmpstr(items, ==, "b,a-next");
  g_assert_cmpint(s.items, ==, 2);
  g_assert_cmpint(s.open_transactions, ==, 0);
}

static void test_rotated_order(Fixture *f, gconstpointer unused)
{
  (void)unused;
  /* numeric order, not name order: 99 before 100 before 1000 */
  et_addx(f->b, T0, 0, "c");
  flush_to(f, "q.1000");
  et_addx(f->b, T0, 0, "a");
  et_addx(f->b, T0, 0, "x");
  flush_to(f, "q.99");
  et_xid_op(f->b, 9, 7);   /* opens a */
  et_u8(f->b, 1);          /* removes x */
  et_addx(f->b, T0, 0, "b");
  et_xid_op(f->b, 6, 7);   /* a confirmed */
  flush_to(f, "q.100");
  et_addx(f->b, T0, 0, "d");
  flush_to(f, "q");
  /* files of other queues are left alone */
  et_addx(f->b, T0, 0, "other");
  flush_to(f, "qq.5");
  assert_replay(f, "b,c,d");
  g_assert_true(et_exists(f->dir, "qq.5"));
}

static void test_pack_settles(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_addx(f->b, T0, 0, "a");
  et_addx(f->b, T0, 0, "b");
  flush_to(f, "q.100");
  et_u8(f->b, 1);
  flush_to(f, "q.200");
  et_addx(f->b, T0, 0, "b");
  flush_to(f, "q.200.pack");
  g_autoptr(GBytes) pack = et_read(f->dir, "q.200.pack");
  et_addx(f->b, T0, 0, "c");
  flush_to(f, "q.300");
  et_addx(f->b, T0, 0, "d");
  flush_to(f, "q");

  KqCollection *c = et_open(f->dir, NULL);
  g_autofree gchar *files = et_listing(f->dir);
  g_assert_cmpstr(files, ==, "q q.200 q.300");
  g_autoptr(GBytes) settled = et_read(f->dir, "q.200");
  g_assert_true(g_bytes_equal(settled, pack));
  KqQueue *q = et_queue(c, "q");
  g_autofree gchar *items = et_drain(q);
  g_assert_cmpstr(items, ==, "b,c,d");
  kq_queue_unref(q);
  kq_collection_close(c);
}

static void test_temporaries_deleted(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_addx(f->b, T0, 0, "temp");
  flush_to(f, "q~~123");
  et_write(f->dir, "q~~", "\xff\xff", 2);
  et_addx(f->b, T0, 0, "a");
  flush_to(f, "q");
  KqCollection *c = et_open(f->dir, NULL);
  g_autofree gchar *files = et_listing(f->dir);
  g_assert_cmpstr(files, ==, "q");
  KqQueue *q = et_queue(c, "q");
  g_autofree gchar *items = et_drain(q);
  g_assert_cmpstr(items, ==, "a");
  kq_queue_unref(q);
  kq_collection_close(c);
}

/* Every cut point of the last record: the file is cut back to the last whole record, the
 * items before it are kept, and writes after the repair survive another restart. */
static void check_torn_tail(Fixture *f, void (*last)(GByteArray *), const gchar *label)
{
  g_autoptr(GByteArray) whole = g_byte_array_new();
  et_addx(whole, T0, 0, "first");
  et_addx(whole, T0, 0, "second");
  et_addx(whole, T0, 0, "third");
  et_u8(whole, 1);  /* "first" removed */
  guint good = whole->len;
  last(whole);
  guint full = whole->len;
  for (guint cut = good + 1; cut < full; cut++) {
    et_write(f->dir, "q", whole->data, cut);
    et_allow_warnings(TRUE);
    KqCollection *c = et_open(f->dir, NULL);
    et_allow_warnings(FALSE);
    /* a tail of zeros reads as reserved space: cut with a message rather than a warning */
    gboolean zeros = TRUE;
    for (guint i = good; i < cut; i++)
      zeros = zeros && whole->data[i] == 0;
    if (!zeros && g_atomic_int_get(&et_warnings_seen) == 0)
      g_error("%s cut at %u: no warning about the torn tail", label, cut);
    if (et_file_size(f->dir, "q") != good)
      g_error("%s cut at %u: file is %" G_GINT64_FORMAT " bytes, expected %u", label, cut,
              et_file_size(f->dir, "q"), good);
    KqQueue *q = et_queue(c, "q");
    if (et_items(q) != 2)
      g_error("%s cut at %u: %" G_GINT64_FORMAT " items", label, cut, et_items(q));
    et_add(q, "later");
    kq_queue_unref(q);
    kq_collection_close(c);
    g_autofree gchar *items = et_replay_drain(f->dir, "q");
    if (strcmp(items, "second,third,later") != 0)
      g_error("%s cut at %u: replayed \"%s\"", label, cut, items);
  }
}

static void last_addx(GByteArray *b) { et_addx(b, T0, T0 * 2, "fourth"); }
static void last_open(GByteArray *b) { et_xid_op(b, 9, 3); }
static void last_save_xid(GByteArray *b) { et_xid_op(b, 4, 3); }
static void last_legacy(GByteArray *b) { et_add_legacy(b, 0, "fourth"); }
static void last_continue(GByteArray *b) { et_xid_block(b, 8, 1, T0, 0, "fourth"); }
static void last_add_xid(GByteArray *b) { et_xid_block(b, 7, 1, T0, 0, "fourth"); }

static void test_torn_tail(Fixture *f, gconstpointer unused)
{
  (void)unused;
  check_torn_tail(f, last_addx, "ADDX");
  check_torn_tail(f, last_open, "REMOVE_TENTATIVE_XID");
  check_torn_tail(f, last_save_xid, "SAVE_XID");
  check_torn_tail(f, last_legacy, "ADD");
  check_torn_tail(f, last_continue, "CONTINUE");
  check_torn_tail(f, last_add_xid, "ADD_XID");
}

static void test_unknown_opcode(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_addx(f->b, T0, 0, "a");
  et_addx(f->b, T0, 0, "b");
  guint good = f->b->len;
  et_u8(f->b, 10);
  et_addx(f->b, T0, 0, "lost");
  flush_to(f, "q");
  et_allow_warnings(TRUE);
  KqCollection *c = et_open(f->dir, NULL);
  et_allow_warnings(FALSE);
  g_assert_cmpint(et_warnings_seen, >, 0);
  g_assert_cmpint(et_file_size(f->dir, "q"), ==, good);
  KqQueue *q = et_queue(c, "q");
  g_autofree gchar *items = et_drain(q);
  g_assert_cmpstr(items, ==, "a,b");
  kq_queue_unref(q);
  kq_collection_close(c);

  /* in a rotated file: that file ends there, the later files still replay */
  et_addx(f->b, T0, 0, "r1");
  et_u8(f->b, 0xee);
  et_addx(f->b, T0, 0, "lost");
  flush_to(f, "q.5");
  et_addx(f->b, T0, 0, "live");
  flush_to(f, "q");
  et_allow_warnings(TRUE);
  c = et_open(f->dir, NULL);
  et_allow_warnings(FALSE);
  g_assert_cmpint(et_file_size(f->dir, "q.5"), ==, 1 + 20 + 2);
  q = et_queue(c, "q");
  g_autofree gchar *items2 = et_drain(q);
  g_assert_cmpstr(items2, ==, "r1,live");
  kq_queue_unref(q);
  kq_collection_close(c);
}

/* A rewrite of this state: rotated q.100 and live q hold the history, the rewrite rotates q to
 * q.200, writes q~~200, renames it to q.200.pack, deletes q.100 and q.200, renames the pack
 * to q.200. New writes after the rotation go to a new live q. */
static void write_history(Fixture *f)
{
  et_addx(f->b, T0, 0, "a");
  et_addx(f->b, T0, 0, "b");
  et_addx(f->b, T0, 0, "c");
  et_u8(f->b, 1);            /* a gone */
  flush_to(f, "q.100");
  et_addx(f->b, T0, 0, "d");
  et_xid_op(f->b, 9, 5);     /* b open */
  flush_to(f, "q.200");      /* the live file, rotated by the rewrite */
}

static void write_state(Fixture *f, const gchar *name)
{
  et_addx(f->b, T0, 0, "b");
  et_xid_op(f->b, 9, 5);
  et_addx(f->b, T0, 0, "c");
  et_addx(f->b, T0, 0, "d");
  flush_to(f, name);
}

static void write_new_live(Fixture *f)
{
  et_addx(f->b, T0, 0, "e");
  flush_to(f, "q");
}

static void assert_settled(Fixture *f)
{
  KqCollection *c = et_open(f->dir, NULL);
  g_autofree gchar *files = et_listing(f->dir);
  g_assert_true(strstr(files, "~~") == NULL);
  g_assert_true(strstr(files, ".pack") == NULL);
  g_assert_false(et_exists(f->dir, "q.100"));
  KqQueue *q = et_queue(c, "q");
  g_autofree gchar *items = et_drain(q);
  g_assert_cmpstr(items, ==, "b,c,d,e");
  kq_queue_unref(q);
  kq_collection_close(c);
  /* and once more: nothing comes back twice */
  g_autofree gchar *again = et_replay_drain(f->dir, "q");
  g_assert_cmpstr(again, ==, "");
}

static void test_crash_temp_written(Fixture *f, gconstpointer unused)
{
  (void)unused;
  write_history(f);
  write_state(f, "q~~200");
  write_new_live(f);
  KqCollection *c = et_open(f->dir, NULL);
  g_assert_false(et_exists(f->dir, "q~~200"));
  g_assert_true(et_exists(f->dir, "q.100"));  /* the old files still hold the state */
  kq_collection_close(c);
  g_autofree gchar *items = et_replay_drain(f->dir, "q");
  g_assert_cmpstr(items, ==, "b,c,d,e");
}

static void test_crash_pack_with_old_files(Fixture *f, gconstpointer unused)
{
  (void)unused;
  write_history(f);
  write_state(f, "q.200.pack");
  write_new_live(f);
  assert_settled(f);
}

static void test_crash_half_deleted(Fixture *f, gconstpointer unused)
{
  (void)unused;
  write_history(f);
  write_state(f, "q.200.pack");
  write_new_live(f);
  g_autofree gchar *first = g_build_filename(f->dir, "q.100", NULL);
  g_unlink(first);
  assert_settled(f);
}

static void test_crash_pack_not_renamed(Fixture *f, gconstpointer unused)
{
  (void)unused;
  write_state(f, "q.200.pack");
  write_new_live(f);
  assert_settled(f);
}

static void test_crash_before_new_live(Fixture *f, gconstpointer unused)
{
  (void)unused;
  /* rotated but the new live file was never created */
  write_history(f);
  write_state(f, "q.200.pack");
  KqCollection *c = et_open(f->dir, NULL);
  KqQueue *q = et_queue(c, "q");
  g_autofree gchar *items = et_drain(q);
  g_assert_cmpstr(items, ==, "b,c,d");
  kq_queue_unref(q);
  kq_collection_close(c);
}

/* The live file as a killed process leaves it: whole records, then the space the writer had
 * reserved ahead (zeros). Everything journalled replays; the reserved tail is cut. */
static void test_crash_killed_writer(Fixture *f, gconstpointer unused)
{
  (void)unused;
  KqCollection *c = et_open(f->dir, NULL);
  KqQueue *q = et_queue(c, "q");
  for (int i = 0; i < 50; i++) {
    g_autofree gchar *item = g_strdup_printf("item%02d", i);
    et_add(q, item);
  }
  et_expect(q, "item00");
  g_autoptr(KqItem) open = kq_queue_remove(q, KQ_REMOVE_OPEN, NULL);
  g_assert_cmpmem(open->data, open->len, "item01", 6);
  g_assert_cmpint(et_file_size(f->dir, "q"), >, et_records_size(f->dir, "q"));
  GBytes *snapshot = et_read(f->dir, "q");
  g_autofree gchar *other = et_tmpdir();
  gsize len = 0;
  const guint8 *data = g_bytes_get_data(snapshot, &len);
  et_write(other, "q", data, len);
  g_bytes_unref(snapshot);

  et_allow_warnings(TRUE);
  g_autofree gchar *items = et_replay_drain(other, "q");
  et_allow_warnings(FALSE);
  GString *expected = g_string_new("item01");
  for (int i = 2; i < 50; i++)
    g_string_append_printf(expected, ",item%02d", i);
  g_assert_cmpstr(items, ==, expected->str);
  g_string_free(expected, TRUE);
  et_rmtree(other);
  kq_queue_unref(q);
  kq_collection_close(c);
}

/* A record caught mid-copy: its opcode byte still holds the placeholder the writer stores
 * first, its body is there, the rest is reserved space. Replay stops before it and keeps its
 * bytes in a side file, without a warning: the add was never acknowledged. */
static void test_crash_record_mid_copy(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_addx(f->b, T0, 0, "a");
  et_addx(f->b, T0, 0, "b");
  guint good = f->b->len;
  et_addx(f->b, T0, 0, "half-copied");
  f->b->data[good] = 0xff;
  for (int i = 0; i < 64; i++)
    et_u8(f->b, 0);
  flush_to(f, "q");
  KqCollection *c = et_open(f->dir, NULL); /* a warning would fail the test */
  g_assert_cmpint(et_file_size(f->dir, "q"), ==, good);
  g_autoptr(GDir) d = g_dir_open(f->dir, 0, NULL);
  const gchar *name;
  guint side_files = 0;
  while ((name = g_dir_read_name(d)) != NULL)
    side_files += g_str_has_prefix(name, "q~torn~~");
  g_assert_cmpuint(side_files, ==, 1);
  KqQueue *q = et_queue(c, "q");
  g_autofree gchar *items = et_drain(q);
  g_assert_cmpstr(items, ==, "a,b");
  kq_queue_unref(q);
  kq_collection_close(c);
}

/* A killed process leaves reserved space (zeros) after the live file's last record, and replay
 * cuts it off. When read-behind starts inside that file during replay, its reader must not keep
 * the zeros it read there: the records written after the restart go where they were. */
static void test_crash_read_behind_in_live_file(Fixture *f, gconstpointer unused)
{
  (void)unused;
  g_autofree gchar *a = g_strnfill(63, 'a');
  g_autofree gchar *b = g_strnfill(157, 'b');
  g_autofree gchar *c = g_strnfill(147, 'c');
  et_addx(f->b, T0, 0, a);
  et_addx(f->b, T0, 0, b);
  flush_to(f, "q.100");
  et_addx(f->b, T0, 0, c);
  et_addx(f->b, T0, 0, "d");
  et_xid_op(f->b, 9, 1);
  for (int i = 0; i < 4096; i++)
    et_u8(f->b, 0);
  flush_to(f, "q");
  KqCollection *col = et_open(f->dir, "[queue q]\nmaxMemorySize = 256\n");
  KqQueue *q = et_queue(col, "q");
  et_add(q, "e");
  g_autofree gchar *expected = g_strjoin(",", a, b, c, "d", "e", NULL);
  g_autofree gchar *items = et_drain(q);
  g_assert_cmpstr(items, ==, expected);
  kq_queue_unref(q);
  kq_collection_close(col);
}

/* ---------- nothing is destroyed: side files and files that are no journals ---------- */

#define SIDE "q~torn~~1700000000000"

static void assert_file_holds(Fixture *f, const gchar *name, const guint8 *data, gsize len)
{
  g_autoptr(GBytes) got = et_read(f->dir, name);
  gsize got_len = 0;
  const guint8 *p = g_bytes_get_data(got, &got_len);
  g_assert_cmpmem(p, got_len, data, len);
}

/* Open the folder expecting warnings; returns how many were logged. */
static gint open_warned(Fixture *f, KqCollection **c)
{
  et_allow_warnings(TRUE);
  *c = et_open(f->dir, NULL);
  gint seen = g_atomic_int_get(&et_warnings_seen);
  et_allow_warnings(FALSE);
  return seen;
}

/* A torn tail: the bytes cut off the journal are kept, exactly, in a side file beside it. */
static void test_side_file_torn_tail(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_clock_install(T0);
  et_addx(f->b, T0, 0, "a");
  et_addx(f->b, T0, 0, "b");
  guint good = f->b->len;
  et_addx(f->b, T0, 0, "torn-item");
  g_byte_array_set_size(f->b, f->b->len - 3);
  g_autoptr(GBytes) whole = g_bytes_new(f->b->data, f->b->len);
  flush_to(f, "q");
  KqCollection *c = NULL;
  g_assert_cmpint(open_warned(f, &c), ==, 1);
  g_autofree gchar *files = et_listing(f->dir);
  g_assert_cmpstr(files, ==, "q " SIDE);
  g_assert_cmpint(et_file_size(f->dir, "q"), ==, good);
  gsize len = 0;
  const guint8 *data = g_bytes_get_data(whole, &len);
  assert_file_holds(f, SIDE, data + good, len - good);
  KqQueue *q = et_queue(c, "q");
  g_autofree gchar *items = et_drain(q);
  g_assert_cmpstr(items, ==, "a,b");
  kq_queue_unref(q);
  kq_collection_close(c);

  /* the side file is no queue's: the next start leaves it as it is and warns no more */
  c = et_open(f->dir, NULL);
  g_autoptr(GPtrArray) names = kq_collection_queue_names(c);
  g_assert_cmpuint(names->len, ==, 1);
  g_assert_cmpstr(names->pdata[0], ==, "q");
  kq_collection_close(c);
  assert_file_holds(f, SIDE, data + good, len - good);
}

/* Two torn tails in the same millisecond: two side files, each with its own bytes. */
static void test_side_file_twice(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_clock_install(T0);
  et_addx(f->b, T0, 0, "a");
  guint good = f->b->len;
  et_u8(f->b, 2);
  et_u32(f->b, 100);
  flush_to(f, "q");
  KqCollection *c = NULL;
  open_warned(f, &c);
  kq_collection_close(c);

  et_addx(f->b, T0, 0, "a");
  et_xid_op(f->b, 6, 7);
  et_u8(f->b, 9);
  et_u8(f->b, 1);
  flush_to(f, "q");
  g_assert_cmpint(open_warned(f, &c), ==, 1);
  kq_collection_close(c);
  g_autofree gchar *files = et_listing(f->dir);
  g_assert_cmpstr(files, ==, "q " SIDE " " SIDE "-1");
  static const guint8 first[] = { 2, 100, 0, 0, 0 };
  static const guint8 second[] = { 9, 1 };
  assert_file_holds(f, SIDE, first, sizeof(first));
  assert_file_holds(f, SIDE "-1", second, sizeof(second));
  g_assert_cmpint(et_file_size(f->dir, "q"), ==, good + 5);
}

/* An unknown opcode, in a rotated file and in the live file: one side file each. */
static void test_side_file_unknown_opcode(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_clock_install(T0);
  et_addx(f->b, T0, 0, "r1");
  guint good = f->b->len;
  et_u8(f->b, 0xee);
  et_addx(f->b, T0, 0, "kept aside");
  g_autoptr(GBytes) rotated = g_bytes_new(f->b->data + good, f->b->len - good);
  flush_to(f, "q.5");
  et_addx(f->b, T0, 0, "live");
  et_u8(f->b, 10);
  flush_to(f, "q");
  KqCollection *c = NULL;
  g_assert_cmpint(open_warned(f, &c), ==, 2);
  KqQueue *q = et_queue(c, "q");
  g_autofree gchar *items = et_drain(q);
  g_assert_cmpstr(items, ==, "r1,live");
  kq_queue_unref(q);
  kq_collection_close(c);
  gsize len = 0;
  const guint8 *data = g_bytes_get_data(rotated, &len);
  assert_file_holds(f, SIDE, data, len);  /* q.5 is replayed first */
  static const guint8 ten[] = { 10 };
  assert_file_holds(f, SIDE "-1", ten, 1);
}

/* Reserved space (zeros) after the last record is no data: cut without a side file. */
static void test_side_file_not_for_reserved(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_addx(f->b, T0, 0, "a");
  guint good = f->b->len;
  for (int i = 0; i < 4096; i++)
    et_u8(f->b, 0);
  flush_to(f, "q");
  KqCollection *c = et_open(f->dir, NULL);  /* fails on any warning */
  g_autofree gchar *files = et_listing(f->dir);
  g_assert_cmpstr(files, ==, "q");
  g_assert_cmpint(et_file_size(f->dir, "q"), ==, good);
  kq_collection_close(c);
}

/* A record caught mid-copy at the very start of a file (its placeholder opcode first): a
 * journal with an unfinished append, not a stranger's file (and no warning: it was never
 * acknowledged). */
static void test_side_file_placeholder_first(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_clock_install(T0);
  et_addx(f->b, T0, 0, "half-copied");
  f->b->data[0] = 0xff;
  for (int i = 0; i < 64; i++)
    et_u8(f->b, 0);
  g_autoptr(GBytes) whole = g_bytes_new(f->b->data, f->b->len);
  flush_to(f, "q");
  KqCollection *c = NULL;
  g_assert_cmpint(open_warned(f, &c), ==, 0);
  g_assert_cmpint(et_file_size(f->dir, "q"), ==, 0);
  gsize len = 0;
  const guint8 *data = g_bytes_get_data(whole, &len);
  assert_file_holds(f, SIDE, data, len);
  KqQueue *q = et_queue(c, "q");
  et_add(q, "x");
  kq_queue_unref(q);
  kq_collection_close(c);
  g_autofree gchar *items = et_replay_drain(f->dir, "q");
  g_assert_cmpstr(items, ==, "x");
}

/* I/O seam that fails one kind of call on the side file. */
static const KqIoOps *real_io;
static gint fail_write, fail_fsync;

static ssize_t failing_write(int fd, const void *buf, size_t len)
{
  if (fail_write) {
    errno = ENOSPC;
    return -1;
  }
  return real_io->write(fd, buf, len);
}

static int failing_fsync(int fd)
{
  if (fail_fsync) {
    errno = EIO;
    return -1;
  }
  return real_io->fsync(fd);
}

static const KqIoOps failing_ops = { .write = failing_write, .fsync = failing_fsync };

/* When the side file cannot be written or made durable, the journal is not cut: the queue
 * fails to load with an error that says so, and the files are as they were. */
static void check_side_file_failure(Fixture *f, gint *which, const gchar *what)
{
  et_clock_install(T0);
  et_addx(f->b, T0, 0, "a");
  et_addx(f->b, T0, 0, "torn");
  g_byte_array_set_size(f->b, f->b->len - 1);
  g_autoptr(GBytes) before = g_bytes_new(f->b->data, f->b->len);
  flush_to(f, "q");
  kq_io_set(NULL);
  real_io = kq_io_get();
  kq_io_set(&failing_ops);
  *which = 1;
  g_autoptr(GError) error = NULL;
  et_allow_warnings(TRUE);
  KqCollection *c = kq_collection_open(f->dir, NULL, &error);
  et_allow_warnings(FALSE);
  *which = 0;
  kq_io_set(NULL);
  g_assert_null(c);
  g_assert_error(error, KQ_ERROR, KQ_ERROR_IO);
  if (strstr(error->message, "left as it is") == NULL || strstr(error->message, what) == NULL)
    g_error("unclear error: %s", error->message);
  g_autofree gchar *files = et_listing(f->dir);
  g_assert_cmpstr(files, ==, "q");
  gsize len = 0;
  const guint8 *data = g_bytes_get_data(before, &len);
  assert_file_holds(f, "q", data, len);

  /* once the disk works again, the next start sets the tail aside */
  c = NULL;
  open_warned(f, &c);
  kq_collection_close(c);
  g_assert_true(et_exists(f->dir, SIDE));
}

static void test_side_file_write_fails(Fixture *f, gconstpointer unused)
{
  (void)unused;
  check_side_file_failure(f, &fail_write, "cannot write");
}

static void test_side_file_fsync_fails(Fixture *f, gconstpointer unused)
{
  (void)unused;
  check_side_file_failure(f, &fail_fsync, "cannot fsync");
}

typedef struct {
  const gchar *name;
  GBytes *bytes;
  struct timespec mtime;
} Snapshot;

static void snapshot_take(Fixture *f, Snapshot *s, const gchar *name)
{
  g_autofree gchar *path = g_build_filename(f->dir, name, NULL);
  struct stat st;
  g_assert_cmpint(stat(path, &st), ==, 0);
  s->name = name;
  s->bytes = et_read(f->dir, name);
  s->mtime = st.st_mtim;
}

static void snapshot_check(Fixture *f, Snapshot *s)
{
  g_autofree gchar *path = g_build_filename(f->dir, s->name, NULL);
  struct stat st;
  g_assert_cmpint(stat(path, &st), ==, 0);
  g_autoptr(GBytes) now = et_read(f->dir, s->name);
  if (!g_bytes_equal(now, s->bytes))
    g_error("%s was changed", s->name);
  if (st.st_mtim.tv_sec != s->mtime.tv_sec || st.st_mtim.tv_nsec != s->mtime.tv_nsec)
    g_error("%s was written to (mtime changed)", s->name);
  g_bytes_unref(s->bytes);
}

/* Files that are no journal: bad names, and a file under a queue's name that holds no
 * journal. None is touched or served as a queue; each is logged once, at start-up only; the
 * other queues are restored. */
static void test_foreign_files_left_alone(Fixture *f, gconstpointer unused)
{
  (void)unused;
  static const gchar text[] = "hello, this is not a journal\n";
  const gchar *names[] = { "README.txt", ".hidden", "notes~", "foo", "bar.5", "bar" };
  et_write(f->dir, "README.txt", text, strlen(text));
  et_write(f->dir, ".hidden", "\x02secret", 7);
  et_write(f->dir, "notes~", text, strlen(text));
  et_write(f->dir, "foo", text, strlen(text));
  et_write(f->dir, "bar.5", text, strlen(text));   /* a queue's rotated file: bar is refused */
  et_addx(f->b, T0, 0, "bar-item");
  flush_to(f, "bar");
  et_addx(f->b, T0, 0, "a");
  flush_to(f, "q");
  g_autofree gchar *subdir = g_build_filename(f->dir, "sub", NULL);
  g_assert_cmpint(g_mkdir(subdir, 0755), ==, 0);
  Snapshot snaps[G_N_ELEMENTS(names)];
  for (guint i = 0; i < G_N_ELEMENTS(names); i++)
    snapshot_take(f, &snaps[i], names[i]);

  KqCollection *c = NULL;
  /* README.txt, .hidden, notes~: bad names; foo, bar, sub: no journal */
  g_assert_cmpint(open_warned(f, &c), ==, 6);
  g_autoptr(GPtrArray) queues = kq_collection_queue_names(c);
  g_assert_cmpuint(queues->len, ==, 1);
  g_assert_cmpstr(queues->pdata[0], ==, "q");
  KqCollectionStats stats;
  kq_collection_get_stats(c, &stats);
  g_assert_cmpint(stats.curr_items, ==, 1);

  /* no warning again on reload */
  et_allow_warnings(TRUE);
  kq_collection_reload(c, NULL);
  g_assert_cmpint(g_atomic_int_get(&et_warnings_seen), ==, 0);
  et_allow_warnings(FALSE);

  /* referring to them as queues is refused, and nothing is written or deleted; flush and
   * delete, which do not create a queue, have nothing to do */
  const gchar *refused[] = { "foo", "bar", "sub", "foo+child" };
  for (guint i = 0; i < G_N_ELEMENTS(refused); i++) {
    g_autoptr(GError) error = NULL;
    KqQueue *q = kq_collection_get(c, refused[i], TRUE, &error);
    g_assert_null(q);
    g_assert_error(error, KQ_ERROR, KQ_ERROR_NOT_JOURNAL);
    g_clear_error(&error);
    g_assert_false(kq_collection_add(c, refused[i], "x", 1, 0, &error));
    g_assert_error(error, KQ_ERROR, KQ_ERROR_NOT_JOURNAL);
    g_clear_error(&error);
    g_assert_true(kq_collection_flush(c, refused[i], &error));
    g_assert_no_error(error);
    g_assert_cmpint(kq_collection_flush_expired(c, refused[i], &error), ==, 0);
    g_assert_no_error(error);
    g_assert_true(kq_collection_delete(c, refused[i], &error));
    g_assert_no_error(error);
  }
  kq_collection_flush_all(c);
  kq_collection_sweep(c);
  kq_collection_close(c);
  for (guint i = 0; i < G_N_ELEMENTS(names); i++)
    snapshot_check(f, &snaps[i]);
  g_assert_true(g_file_test(subdir, G_FILE_TEST_IS_DIR));
  g_autofree gchar *files = et_listing(f->dir);
  g_assert_cmpstr(files, ==, ".hidden README.txt bar bar.5 foo notes~ q sub");
}

/* An empty file is an empty journal, and the folder lock and the engine's other `.kestrel*`
 * files are never reported. */
static void test_empty_file_is_a_journal(Fixture *f, gconstpointer unused)
{
  (void)unused;
  et_write(f->dir, "empty", "", 0);
  et_write(f->dir, ".kestrel.status", "UP", 2);
  KqCollection *c = et_open(f->dir, NULL);  /* fails on any warning */
  g_autoptr(GPtrArray) queues = kq_collection_queue_names(c);
  g_assert_cmpuint(queues->len, ==, 1);
  g_assert_cmpstr(queues->pdata[0], ==, "empty");
  kq_collection_close(c);
  g_autoptr(GBytes) status = et_read(f->dir, ".kestrel.status");
  g_assert_cmpmem(g_bytes_get_data(status, NULL), g_bytes_get_size(status), "UP", 2);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add("/replay/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD("addx-remove", test_addx_remove);
  ADD("legacy-add", test_legacy_add);
  ADD("remove-tentative-legacy", test_remove_tentative_legacy);
  ADD("remove-tentative-legacy-twice", test_remove_tentative_legacy_twice);
  ADD("open-reads-return-to-head", test_open_reads_return_to_head);
  ADD("open-reads-xid-order", test_open_reads_xid_order);
  ADD("unremove-confirm", test_unremove);
  ADD("save-xid", test_save_xid);
  ADD("add-xid", test_add_xid);
  ADD("continue", test_continue);
  ADD("rotated-order", test_rotated_order);
  ADD("pack-settles", test_pack_settles);
  ADD("temporaries-deleted", test_temporaries_deleted);
  ADD("torn-tail", test_torn_tail);
  ADD("unknown-opcode", test_unknown_opcode);
  ADD("crash/temp-written", test_crash_temp_written);
  ADD("crash/pack-with-old-files", test_crash_pack_with_old_files);
  ADD("crash/half-deleted", test_crash_half_deleted);
  ADD("crash/pack-not-renamed", test_crash_pack_not_renamed);
  ADD("crash/no-new-live-file", test_crash_before_new_live);
  ADD("crash/killed-writer", test_crash_killed_writer);
  ADD("crash/record-mid-copy", test_crash_record_mid_copy);
  ADD("crash/read-behind-in-live-file", test_crash_read_behind_in_live_file);
  ADD("side-file/torn-tail", test_side_file_torn_tail);
  ADD("side-file/twice", test_side_file_twice);
  ADD("side-file/unknown-opcode", test_side_file_unknown_opcode);
  ADD("side-file/not-for-reserved-space", test_side_file_not_for_reserved);
  ADD("side-file/placeholder-first", test_side_file_placeholder_first);
  ADD("side-file/write-fails", test_side_file_write_fails);
  ADD("side-file/fsync-fails", test_side_file_fsync_fails);
  ADD("foreign/left-alone", test_foreign_files_left_alone);
  ADD("foreign/empty-file-is-a-journal", test_empty_file_is_a_journal);
#undef ADD
  return g_test_run();
}

/* The segmented item store under a queue: FIFO order within and across segments, items larger
 * than a segment, items put back at the head, and reuse of an emptied segment. */
#include <string.h>

#include <glib.h>

#include "item-store.h"

#define SEGMENT (256 * 1024) /* item-store.c's SEGMENT_SIZE */

/* Item `n` of `len` bytes: every byte says which item it belongs to. */
static guint8 *
item_bytes(guint n, gsize len)
{
  guint8 *data = g_malloc(len ? len : 1);
  memset(data, (int) ('a' + n % 26), len);
  return data;
}

static void
push_item(KqItemStore *store, guint n, gsize len)
{
  g_autofree guint8 *data = item_bytes(n, len);
  kq_item_store_push(store, 1000 + n, 0, data, len, NULL);
}

/* Take the head and check it is item `n` of `len` bytes. */
static void
assert_take(KqItemStore *store, guint n, gsize len)
{
  g_autofree guint8 *want = item_bytes(n, len);
  g_autoptr(KqItem) item = kq_item_store_take(store);

  g_assert_nonnull(item);
  g_assert_cmpint(item->add_time, ==, 1000 + n);
  g_assert_cmpuint(item->len, ==, len);
  g_assert_cmpmem(item->data, item->len, want, len);
}

static void
test_fifo_across_segments(void)
{
  KqItemStore store;
  const gsize len = 1000; /* about 260 per segment: 2,000 span several */

  kq_item_store_init(&store);
  for (guint i = 0; i < 2000; i++)
    push_item(&store, i, len);
  g_assert_cmpint(store.count, ==, 2000);
  g_assert_cmpint(store.bytes, ==, 2000 * (gint64) len);
  for (guint i = 0; i < 2000; i++)
    assert_take(&store, i, len);
  g_assert_null(kq_item_store_take(&store));
  g_assert_cmpint(store.count, ==, 0);
  g_assert_cmpint(store.bytes, ==, 0);
  kq_item_store_clear(&store);
}

/* An emptied store keeps its segment for reuse; an item that does not fit in it used to go
 * to a second segment behind the empty one, where the head never looked. */
static void
test_large_item_after_the_store_emptied(void)
{
  const gsize sizes[] = { SEGMENT - 20, SEGMENT, SEGMENT + 1, 512 * 1024, 3 * SEGMENT };

  for (guint s = 0; s < G_N_ELEMENTS(sizes); s++) {
    KqItemStore store;
    KqStoreHead head;

    kq_item_store_init(&store);
    push_item(&store, 0, 64);
    assert_take(&store, 0, 64);
    g_assert_false(kq_item_store_head(&store, &head));

    push_item(&store, 1, sizes[s]);
    push_item(&store, 2, 64);
    g_assert_cmpint(store.count, ==, 2);
    g_assert_true(kq_item_store_head(&store, &head));
    g_assert_cmpuint(head.len, ==, sizes[s]);
    assert_take(&store, 1, sizes[s]);
    assert_take(&store, 2, 64);
    g_assert_null(kq_item_store_take(&store));
    kq_item_store_clear(&store);
  }
}

static void
test_large_items_between_small_ones(void)
{
  KqItemStore store;

  kq_item_store_init(&store);
  for (guint round = 0; round < 3; round++) {
    push_item(&store, 0, 10);
    push_item(&store, 1, 600 * 1024);
    push_item(&store, 2, 10);
    push_item(&store, 3, SEGMENT);
    assert_take(&store, 0, 10);
    assert_take(&store, 1, 600 * 1024);
    assert_take(&store, 2, 10);
    assert_take(&store, 3, SEGMENT);
    g_assert_cmpint(store.count, ==, 0);
  }
  kq_item_store_clear(&store);
}

/* An item too large for a segment is kept as an item: the head shows it, and taking it hands
 * out that item itself (the store's reference passes to the caller), not a copy. The bytes
 * held count it; clearing a store that still holds such items frees them. */
static void
test_large_item_is_taken_by_reference(void)
{
  KqItemStore store;
  KqStoreHead head;
  const gsize big = SEGMENT + 1;

  kq_item_store_init(&store);
  push_item(&store, 0, big);
  push_item(&store, 1, 10);
  g_assert_cmpint(store.bytes, ==, (gint64) big + 10);
  g_assert_true(kq_item_store_head(&store, &head));
  g_assert_nonnull(head.front_item);
  g_assert_true(head.data == head.front_item->data);
  KqItem *held = head.front_item;
  KqItem *taken = kq_item_store_take(&store);
  g_assert_true(taken == held);
  g_assert_cmpint(taken->ref_count, ==, 1);
  g_assert_cmpint(taken->add_time, ==, 1000);
  kq_item_unref(taken);
  g_assert_cmpint(store.bytes, ==, 10);
  /* a small one is still copied out of its segment */
  g_assert_true(kq_item_store_head(&store, &head));
  g_assert_null(head.front_item);
  assert_take(&store, 1, 10);
  g_assert_cmpint(store.count, ==, 0);

  /* put back in front of a large item; then cleared with large items inside */
  push_item(&store, 2, big);
  push_item(&store, 3, 3 * SEGMENT);
  KqItem *first = kq_item_store_take(&store);
  kq_item_store_push_front(&store, first);
  kq_item_unref(first);
  g_assert_cmpint(store.count, ==, 2);
  assert_take(&store, 2, big);
  g_assert_cmpint(store.count, ==, 1);
  push_item(&store, 4, big);
  kq_item_store_clear(&store);
  g_assert_cmpint(store.count, ==, 0);
  g_assert_false(kq_item_store_head(&store, &head));
}

/* An add that passes an item of its bytes: the store holds that item itself (with the add's
 * times) when it is of KQ_ITEM_HELD_WHOLE bytes or more and nobody else holds it; otherwise a
 * copy, or a record packed in a segment. */
static void
test_whole_item_held_without_a_copy(void)
{
  KqItemStore store;
  KqStoreHead head;
  const gsize big = KQ_ITEM_HELD_WHOLE;
  g_autofree guint8 *bytes = item_bytes(0, big);

  kq_item_store_init(&store);
  KqItem *whole = kq_item_new(bytes, big, 0, 0);
  kq_item_store_push(&store, 1000, 77, whole->data, whole->len, whole);
  g_assert_true(kq_item_store_head(&store, &head));
  g_assert_true(head.front_item == whole);
  g_assert_cmpint(whole->add_time, ==, 1000);
  g_assert_cmpint(whole->expiry, ==, 77);
  g_assert_cmpint(whole->ref_count, ==, 2);
  kq_item_unref(whole); /* the caller's: the store's keeps it */

  /* held by someone else too: copied (a fanout's second queue, say) */
  g_autofree guint8 *bytes1 = item_bytes(1, big);
  KqItem *shared = kq_item_new(bytes1, big, 5, 0);
  kq_item_ref(shared);
  kq_item_store_push(&store, 1001, 0, shared->data, shared->len, shared);
  g_assert_cmpint(shared->ref_count, ==, 2);
  g_assert_cmpint(shared->add_time, ==, 5);
  kq_item_unref(shared);
  kq_item_unref(shared);

  /* one byte smaller: packed in a segment like any small item */
  KqItem *small = kq_item_new(bytes, big - 1, 0, 0);
  kq_item_store_push(&store, 1002, 0, small->data, small->len, small);
  g_assert_cmpint(small->ref_count, ==, 1);
  kq_item_unref(small);

  KqItem *taken = kq_item_store_take(&store);
  g_assert_true(taken == whole);
  kq_item_unref(taken);
  assert_take(&store, 1, big);
  g_assert_true(kq_item_store_head(&store, &head));
  g_assert_null(head.front_item);
  kq_item_store_clear(&store);
}

static void
test_items_put_back_come_first(void)
{
  KqItemStore store;

  kq_item_store_init(&store);
  push_item(&store, 1, 5);
  push_item(&store, 2, 5);
  KqItem *first = kq_item_store_take(&store);
  kq_item_store_push_front(&store, first);
  kq_item_unref(first);
  g_assert_cmpint(store.count, ==, 2);
  assert_take(&store, 1, 5);
  assert_take(&store, 2, 5);
  kq_item_store_clear(&store);
}

static void
count_item(gint64 add_time, gint64 expiry, const guint8 *data, gsize len, gpointer user_data)
{
  GArray *seen = user_data;
  gint64 n = add_time - 1000;

  g_assert_cmpuint(len, >, 0);
  g_assert_cmpint(data[0], ==, 'a' + n % 26);
  g_array_append_val(seen, n);
}

static void
test_foreach_visits_head_to_tail(void)
{
  KqItemStore store;
  g_autoptr(GArray) seen = g_array_new(FALSE, FALSE, sizeof(gint64));

  kq_item_store_init(&store);
  push_item(&store, 0, 64);
  assert_take(&store, 0, 64);
  for (guint i = 1; i <= 4; i++)
    push_item(&store, i, i % 2 ? 100 : SEGMENT + 100);
  kq_item_store_foreach(&store, count_item, seen);
  g_assert_cmpuint(seen->len, ==, 4);
  for (guint i = 0; i < 4; i++)
    g_assert_cmpint(g_array_index(seen, gint64, i), ==, i + 1);
  kq_item_store_clear(&store);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/item-store/fifo-across-segments", test_fifo_across_segments);
  g_test_add_func("/item-store/large-item-after-the-store-emptied",
                  test_large_item_after_the_store_emptied);
  g_test_add_func("/item-store/large-items-between-small-ones",
                  test_large_items_between_small_ones);
  g_test_add_func("/item-store/large-item-taken-by-reference",
                  test_large_item_is_taken_by_reference);
  g_test_add_func("/item-store/whole-item-held-without-a-copy",
                  test_whole_item_held_without_a_copy);
  g_test_add_func("/item-store/items-put-back-come-first", test_items_put_back_come_first);
  g_test_add_func("/item-store/foreach-visits-head-to-tail", test_foreach_visits_head_to_tail);
  return g_test_run();
}

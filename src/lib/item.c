/* Items handed to callers: one allocation (or a header and a block taken over from the
 * caller), reference-counted so an open read can be held by the engine and the client at once
 * without a copy. */
#include <kestrel/item.h>
#include <string.h>

/* A new reference-counted item of the len bytes at `data`, held in `block` (NULL: right after
 * the item, in the same allocation). */
static KqItem *item_init(KqItem *item, const guint8 *data, gsize len, gpointer block)
{
  item->add_time = 0;
  item->expiry = 0;
  item->xid = 0;
  item->ref_count = 1;
  item->len = len;
  item->data = data;
  item->block = block;
  return item;
}

KqItem *kq_item_new(const void *data, gsize len, gint64 add_time, gint64 expiry)
{
  KqItem *item = g_malloc(sizeof(KqItem) + len);
  guint8 *own = (guint8 *)(item + 1);
  if (len > 0)
    memcpy(own, data, len);
  item_init(item, own, len, NULL);
  item->add_time = add_time;
  item->expiry = expiry;
  return item;
}

KqItem *kq_item_new_in_block(gpointer block, const guint8 *data, gsize len)
{
  return item_init(g_new(KqItem, 1), data, len, block);
}

KqItem *kq_item_ref(KqItem *item)
{
  g_atomic_int_inc(&item->ref_count);
  return item;
}

void kq_item_unref(KqItem *item)
{
  if (item != NULL && g_atomic_int_dec_and_test(&item->ref_count)) {
    if (item->block != NULL)
      g_free(item->block);
    g_free(item);
  }
}

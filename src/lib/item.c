/* Items handed to callers: one allocation, reference-counted so an open read can be held by
 * the engine and the client at once without a copy. */
#include <kestrel/item.h>
#include <string.h>

KqItem *kq_item_new(const void *data, gsize len, gint64 add_time, gint64 expiry)
{
  KqItem *item = g_malloc(sizeof(KqItem) + len);
  item->add_time = add_time;
  item->expiry = expiry;
  item->xid = 0;
  item->ref_count = 1;
  item->len = len;
  if (len > 0)
    memcpy(item->data, data, len);
  return item;
}

KqItem *kq_item_ref(KqItem *item)
{
  g_atomic_int_inc(&item->ref_count);
  return item;
}

void kq_item_unref(KqItem *item)
{
  if (item != NULL && g_atomic_int_dec_and_test(&item->ref_count))
    g_free(item);
}

/* An item handed out by the engine: reference-counted, immutable once created. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  gint64 add_time;   /* ms since epoch when it was added */
  gint64 expiry;     /* ms since epoch, 0 = never */
  guint32 xid;       /* open-read id, 0 when the item was not opened */
  gint ref_count;
  gsize len;
  const guint8 *data; /* its len bytes: right after the item, or inside `block` */
  gpointer block;     /* the allocation that holds data when it is not the item's own (NULL) */
} KqItem;

/* Queues hold an item of at least this many bytes as the item itself, and smaller ones packed
 * with others: an add that passes such an item (kq_collection_add_item) spares a copy. */
#define KQ_ITEM_HELD_WHOLE (256 * 1024 - 19)

KqItem *kq_item_new(const void *data, gsize len, gint64 add_time, gint64 expiry);
/* An item of the len bytes at `data`, inside `block` (from g_malloc), without copying them:
 * the item owns `block` from now on and frees it when the last reference goes. */
KqItem *kq_item_new_in_block(gpointer block, const guint8 *data, gsize len);
KqItem *kq_item_ref(KqItem *item);
void kq_item_unref(KqItem *item);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(KqItem, kq_item_unref)

G_END_DECLS

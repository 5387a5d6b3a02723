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
  guint8 data[];
} KqItem;

KqItem *kq_item_new(const void *data, gsize len, gint64 add_time, gint64 expiry);
KqItem *kq_item_ref(KqItem *item);
void kq_item_unref(KqItem *item);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(KqItem, kq_item_unref)

G_END_DECLS

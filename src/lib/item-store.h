/* The in-memory part of a queue: a FIFO of items packed into large segments, so a queued item
 * costs 20 bytes beyond its data instead of a heap block and a list node. Items that come back
 * to the head (aborted reads) sit in a short list in front of the segments.
 * Not thread-safe: the owning queue's lock guards it. */
#pragma once
#include <glib.h>
#include <kestrel/item.h>

typedef struct _KqSegment KqSegment;

typedef struct {
  GQueue front;          /* KqItem* put back at the head, first = head */
  KqSegment *first, *last;
  KqSegment *spare;      /* one emptied segment kept to avoid malloc churn */
  gint64 count;          /* items held (front + segments) */
  gint64 bytes;          /* data bytes held */
} KqItemStore;

/* A view of the head item; data stays valid until the store is next changed. */
typedef struct {
  gint64 add_time;
  gint64 expiry;
  const guint8 *data;
  gsize len;
  KqItem *front_item;    /* non-NULL when the head is held as an item (put back, or too large
                          * for a segment): a read may take a reference instead of a copy */
} KqStoreHead;

void kq_item_store_init(KqItemStore *store);
void kq_item_store_clear(KqItemStore *store);
/* `whole`, when not NULL, is an item of these bytes that the store may hold instead of a copy
 * (one of KQ_ITEM_HELD_WHOLE bytes or more that only the caller holds: its times are set). */
void kq_item_store_push(KqItemStore *store, gint64 add_time, gint64 expiry,
                        const guint8 *data, gsize len, KqItem *whole);
/* Put an item back at the head (takes a reference). */
void kq_item_store_push_front(KqItemStore *store, KqItem *item);
gboolean kq_item_store_head(KqItemStore *store, KqStoreHead *head);
/* Drop the head item. */
void kq_item_store_pop(KqItemStore *store);
/* The head as a new KqItem (caller owns it), then drop it from the store. */
KqItem *kq_item_store_take(KqItemStore *store);

typedef void (*KqStoreFunc)(gint64 add_time, gint64 expiry, const guint8 *data, gsize len,
                            gpointer user_data);
/* Visit every item head to tail. */
void kq_item_store_foreach(KqItemStore *store, KqStoreFunc func, gpointer user_data);

/* Segmented FIFO storage of queued items (see item-store.h). Each record in a segment is
 * i64 add time, i64 expiry, u32 length, then the data, unaligned (accessed with memcpy). An
 * item too large for a segment is kept as a KqItem in a segment of its own, so that a read
 * hands it out by reference instead of copying it again. */
#include "item-store.h"
#include <string.h>

#define SEGMENT_SIZE (256 * 1024)
#define RECORD_HEAD 20

struct _KqSegment {
  KqSegment *next;
  KqItem *item; /* the one item of an item segment (no records, no data); NULL otherwise */
  gsize head;   /* offset of the first live record */
  gsize tail;   /* offset where the next record goes */
  guint8 data[];
};

void kq_item_store_init(KqItemStore *store)
{
  memset(store, 0, sizeof(*store));
  g_queue_init(&store->front);
}

void kq_item_store_clear(KqItemStore *store)
{
  KqItem *item;
  while ((item = g_queue_pop_head(&store->front)) != NULL)
    kq_item_unref(item);
  for (KqSegment *seg = store->first, *next; seg != NULL; seg = next) {
    next = seg->next;
    kq_item_unref(seg->item);
    g_free(seg);
  }
  g_free(store->spare);
  kq_item_store_init(store);
}

/* A record segment: the spare one, or a fresh one of SEGMENT_SIZE bytes. */
static KqSegment *segment_new(KqItemStore *store)
{
  KqSegment *seg = store->spare;
  if (seg != NULL)
    store->spare = NULL;
  else
    seg = g_malloc(sizeof(KqSegment) + SEGMENT_SIZE);
  seg->next = NULL;
  seg->item = NULL;
  seg->head = seg->tail = 0;
  return seg;
}

/* A segment leaves the store: a record segment is kept as the spare if there is none. */
static void segment_release(KqItemStore *store, KqSegment *seg)
{
  if (seg->item != NULL) {
    kq_item_unref(seg->item);
    g_free(seg);
  } else if (store->spare == NULL) {
    store->spare = seg;
  } else {
    g_free(seg);
  }
}

/* No record left (an item segment is never empty: it goes with its item). */
static gboolean segment_empty(const KqSegment *seg)
{
  return seg->item == NULL && seg->head == seg->tail;
}

static void segment_append(KqItemStore *store, KqSegment *seg)
{
  if (store->last == NULL)
    store->first = seg;
  else
    store->last->next = seg;
  store->last = seg;
}

G_STATIC_ASSERT(KQ_ITEM_HELD_WHOLE == SEGMENT_SIZE - RECORD_HEAD + 1);

/* The item segment's item: `whole` itself when nobody else can see it change, or a copy. */
static KqItem *item_to_hold(KqItem *whole, gint64 add_time, gint64 expiry, const guint8 *data,
                            gsize len)
{
  if (whole == NULL || whole->xid != 0 || g_atomic_int_get(&whole->ref_count) != 1)
    return kq_item_new(data, len, add_time, expiry);
  whole->add_time = add_time;
  whole->expiry = expiry;
  return kq_item_ref(whole);
}

void kq_item_store_push(KqItemStore *store, gint64 add_time, gint64 expiry,
                        const guint8 *data, gsize len, KqItem *whole)
{
  gsize need = RECORD_HEAD + len;
  KqSegment *seg = store->last;
  store->count++;
  store->bytes += (gint64)len;
  if (need > SEGMENT_SIZE) {
    /* The only segment, emptied and kept for reuse, goes first: an item segment behind an
     * empty one would hide every item from kq_item_store_head. */
    if (seg != NULL && segment_empty(seg)) {
      g_assert(seg == store->first);
      store->first = store->last = NULL;
      segment_release(store, seg);
    }
    seg = g_malloc(sizeof(KqSegment));
    seg->next = NULL;
    seg->item = item_to_hold(whole, add_time, expiry, data, len);
    seg->head = seg->tail = 0;
    segment_append(store, seg);
    return;
  }
  if (seg == NULL || seg->item != NULL || SEGMENT_SIZE - seg->tail < need) {
    seg = segment_new(store);
    segment_append(store, seg);
  }
  guint8 *p = seg->data + seg->tail;
  guint32 len32 = (guint32)len;
  memcpy(p, &add_time, 8);
  memcpy(p + 8, &expiry, 8);
  memcpy(p + 16, &len32, 4);
  if (len > 0)
    memcpy(p + RECORD_HEAD, data, len);
  seg->tail += need;
}

void kq_item_store_push_front(KqItemStore *store, KqItem *item)
{
  g_queue_push_head(&store->front, kq_item_ref(item));
  store->count++;
  store->bytes += (gint64)item->len;
}

static gboolean head_of_item(KqStoreHead *head, KqItem *item)
{
  head->add_time = item->add_time;
  head->expiry = item->expiry;
  head->data = item->data;
  head->len = item->len;
  head->front_item = item;
  return TRUE;
}

gboolean kq_item_store_head(KqItemStore *store, KqStoreHead *head)
{
  KqItem *item = g_queue_peek_head(&store->front);
  if (item != NULL)
    return head_of_item(head, item);
  KqSegment *seg = store->first;
  if (seg == NULL || segment_empty(seg))
    return FALSE;
  if (seg->item != NULL)
    return head_of_item(head, seg->item);
  const guint8 *p = seg->data + seg->head;
  guint32 len32;
  memcpy(&head->add_time, p, 8);
  memcpy(&head->expiry, p + 8, 8);
  memcpy(&len32, p + 16, 4);
  head->data = p + RECORD_HEAD;
  head->len = len32;
  head->front_item = NULL;
  return TRUE;
}

void kq_item_store_pop(KqItemStore *store)
{
  KqItem *item = g_queue_pop_head(&store->front);
  if (item != NULL) {
    store->count--;
    store->bytes -= (gint64)item->len;
    kq_item_unref(item);
    return;
  }
  KqSegment *seg = store->first;
  if (seg == NULL || segment_empty(seg))
    return;
  store->count--;
  if (seg->item != NULL) {
    store->bytes -= (gint64)seg->item->len;
  } else {
    guint32 len32;
    memcpy(&len32, seg->data + seg->head + 16, 4);
    seg->head += RECORD_HEAD + len32;
    store->bytes -= len32;
    if (seg->head < seg->tail)
      return;
    if (seg->next == NULL) {
      seg->head = seg->tail = 0;    /* reuse the only segment in place */
      return;
    }
  }
  store->first = seg->next;
  if (store->first == NULL)
    store->last = NULL;
  segment_release(store, seg);
}

KqItem *kq_item_store_take(KqItemStore *store)
{
  KqStoreHead head;
  if (!kq_item_store_head(store, &head))
    return NULL;
  KqItem *item;
  if (head.front_item != NULL)
    item = kq_item_ref(head.front_item);
  else
    item = kq_item_new(head.data, head.len, head.add_time, head.expiry);
  kq_item_store_pop(store);
  return item;
}

void kq_item_store_foreach(KqItemStore *store, KqStoreFunc func, gpointer user_data)
{
  for (GList *l = store->front.head; l != NULL; l = l->next) {
    KqItem *item = l->data;
    func(item->add_time, item->expiry, item->data, item->len, user_data);
  }
  for (KqSegment *seg = store->first; seg != NULL; seg = seg->next) {
    if (seg->item != NULL) {
      func(seg->item->add_time, seg->item->expiry, seg->item->data, seg->item->len, user_data);
      continue;
    }
    gsize off = seg->head;
    while (off < seg->tail) {
      const guint8 *p = seg->data + off;
      gint64 add_time, expiry;
      guint32 len32;
      memcpy(&add_time, p, 8);
      memcpy(&expiry, p + 8, 8);
      memcpy(&len32, p + 16, 4);
      func(add_time, expiry, p + RECORD_HEAD, len32, user_data);
      off += RECORD_HEAD + len32;
    }
  }
}

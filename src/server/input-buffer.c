/* A connection's unhandled input in one block (see input-buffer.h). */
#include "input-buffer.h"

#include <string.h>

/* A connection's block is freed whenever its input is all handled, which for small requests
 * is after every one; the next read would allocate it again. The spare slot (one per loop)
 * keeps one freed block of the usual size instead and hands it to the next connection that
 * needs one, so idle connections still hold nothing and a busy loop does no malloc/free per
 * request. The usual size is what a socket read of an empty buffer asks for. */
#define SPARE_BLOCK_SIZE KQ_INPUT_READ_CHUNK

static void
block_free(KqInputBuffer *b)
{
  if (b->cap == SPARE_BLOCK_SIZE && b->spare != NULL && *b->spare == NULL)
    *b->spare = b->data;
  else if (b->cap != 0) /* 0: taken by an item, which frees it */
    g_free(b->data);
}

guint8 *
kq_input_buffer_reserve(KqInputBuffer *b, gsize min, gsize *room)
{
  gsize len = b->end - b->start;

  if (b->cap - b->end < min) {
    if (b->start > 0 && len + min <= b->cap) {
      /* The unhandled tail of the block moves to its front, once per fill. */
      memmove(b->data, b->data + b->start, len);
    } else {
      /* doubling, or exactly what was asked for when that is more (a request of known size) */
      gsize cap = MAX(MAX(b->cap, 1024) * 2, len + min);
      if (b->data == NULL && cap == SPARE_BLOCK_SIZE && b->spare != NULL && *b->spare != NULL) {
        b->data = *b->spare;
        *b->spare = NULL;
      } else if (b->start == 0) {
        b->data = g_realloc(b->data, cap);
      } else {
        guint8 *data = g_malloc(cap);
        memcpy(data, b->data + b->start, len);
        block_free(b);
        b->data = data;
      }
      b->cap = cap;
    }
    b->start = 0;
    b->end = len;
  }
  *room = b->cap - b->end;
  return b->data + b->end;
}

void
kq_input_buffer_commit(KqInputBuffer *b, gsize n)
{
  g_assert(n <= b->cap - b->end);
  b->end += n;
  if (b->start == b->end)
    kq_input_buffer_clear(b); /* a read that brought nothing keeps no memory */
}

void
kq_input_buffer_consume(KqInputBuffer *b, gsize n)
{
  g_assert(n <= b->end - b->start);
  b->start += n;
  if (b->start == b->end)
    kq_input_buffer_clear(b);
}

KqItem *
kq_input_buffer_take_block(KqInputBuffer *b, const char *data, gsize len, const char *request_end)
{
  const char *first = kq_input_buffer_data(b), *last = (const char *) b->data + b->end;

  if (b->data == NULL || b->cap == 0 || data < first || request_end != last ||
      len > (gsize) (last - data))
    return NULL;
  b->cap = 0; /* the item's: never freed here, nor kept in the spare slot */
  return kq_item_new_in_block(b->data, (const guint8 *) data, len);
}

void
kq_input_buffer_clear(KqInputBuffer *b)
{
  if (b->data != NULL)
    block_free(b);
  b->data = NULL;
  b->start = b->end = b->cap = 0;
}

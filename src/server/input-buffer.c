/* A connection's unhandled input in one block (see input-buffer.h). */
#include "input-buffer.h"

#include <string.h>

guint8 *
kq_input_buffer_reserve(KqInputBuffer *b, gsize min, gsize *room)
{
  gsize len = b->end - b->start;

  if (b->cap - b->end < min) {
    if (b->start > 0 && len + min <= b->cap) {
      /* The unhandled tail of the block moves to its front, once per fill. */
      memmove(b->data, b->data + b->start, len);
    } else {
      gsize cap = MAX(b->cap, 1024);
      while (cap < len + min)
        cap *= 2;
      if (b->start == 0) {
        b->data = g_realloc(b->data, cap);
      } else {
        guint8 *data = g_malloc(cap);
        memcpy(data, b->data + b->start, len);
        g_free(b->data);
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

void
kq_input_buffer_clear(KqInputBuffer *b)
{
  g_clear_pointer(&b->data, g_free);
  b->start = b->end = b->cap = 0;
}

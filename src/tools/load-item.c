/* Item encoding and verification (see load-item.h). */
#include "config.h"

#include <string.h>

#include "load-item.h"

static void put_le(guint8 *p, guint64 v, guint n)
{
  for (guint i = 0; i < n; i++)
    p[i] = (guint8)(v >> (8 * i));
}

static guint64 get_le(const guint8 *p, guint n)
{
  guint64 v = 0;
  for (guint i = 0; i < n; i++)
    v |= (guint64)p[i] << (8 * i);
  return v;
}

/* FNV-1a over sequence + producer + filler: a flipped bit anywhere changes it. */
static guint32 checksum(const guint8 *buf, gsize size)
{
  guint32 h = 2166136261u;
  for (gsize i = 0; i < 12; i++)
    h = (h ^ buf[i]) * 16777619u;
  for (gsize i = LOAD_ITEM_HEADER; i < size; i++)
    h = (h ^ buf[i]) * 16777619u;
  return h;
}

void load_item_fill(guint8 *buf, gsize size, guint64 seq, guint32 producer)
{
  put_le(buf, seq, 8);
  put_le(buf + 8, producer, 4);
  /* printable filler that differs per item, so swapped payloads are caught too */
  for (gsize i = LOAD_ITEM_HEADER; i < size; i++)
    buf[i] = (guint8)('a' + (seq + i) % 26);
  put_le(buf + 12, checksum(buf, size), 4);
}

gboolean load_item_check(const guint8 *buf, gsize len, gsize size, guint64 *seq, guint32 *producer)
{
  if (len != size || len < LOAD_ITEM_HEADER)
    return FALSE;
  if ((guint32)get_le(buf + 12, 4) != checksum(buf, len))
    return FALSE;
  *seq = get_le(buf, 8);
  *producer = (guint32)get_le(buf + 8, 4);
  return TRUE;
}

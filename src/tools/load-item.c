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

/* FNV-1a, 64-bit, over sequence + producer + filler taken 8 bytes at a time (a short tail byte
 * by byte), folded to 32 bits. Each step maps the running value one-to-one, so a change in any
 * word reaches the 64-bit result; large items cost an eighth of the steps of a byte-wise hash. */
static guint32 checksum(const guint8 *buf, gsize size)
{
  const guint64 prime = 1099511628211u;
  guint64 h = 14695981039346656037u;
  guint64 word;
  guint32 producer;
  gsize i;

  memcpy(&word, buf, 8);
  h = (h ^ word) * prime;
  memcpy(&producer, buf + 8, 4);
  h = (h ^ producer) * prime;
  for (i = LOAD_ITEM_HEADER; i + 8 <= size; i += 8) {
    memcpy(&word, buf + i, 8);
    h = (h ^ word) * prime;
  }
  for (; i < size; i++)
    h = (h ^ buf[i]) * prime;
  return (guint32)(h ^ (h >> 32));
}

void load_item_fill(guint8 *buf, gsize size, guint64 seq, guint32 producer)
{
  gsize filler = size - LOAD_ITEM_HEADER;
  guint8 *f = buf + LOAD_ITEM_HEADER;

  put_le(buf, seq, 8);
  put_le(buf + 8, producer, 4);
  /* printable filler that differs per item, so swapped payloads are caught too: byte i is
   * 'a' + (seq + i) % 26, a period of 26 bytes, so the first period is copied onwards in
   * doubling steps (each a whole number of periods) */
  for (gsize i = 0; i < MIN(filler, 26); i++)
    f[i] = (guint8)('a' + (seq + LOAD_ITEM_HEADER + i) % 26);
  for (gsize done = 26; done < filler; done *= 2)
    memcpy(f + done, f, MIN(done, filler - done));
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

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

/* FNV-1a, 64-bit, over sequence + producer + filler taken 8 bytes at a time in four lanes
 * (word k of the filler goes to lane k % 4; a short tail to lane 0), the lanes then hashed in
 * order, folded to 32 bits. Each step maps its lane's value one-to-one, so a change in any
 * word reaches the 64-bit result. The four chains of multiplications do not wait for each
 * other, so a large item costs a quarter of the time one chain would. */
static guint32 checksum(const guint8 *buf, gsize size)
{
  const guint64 prime = 1099511628211u, basis = 14695981039346656037u;
  guint64 lane[4] = { basis, basis + 1, basis + 2, basis + 3 };
  guint64 word;
  guint32 producer;
  gsize i = LOAD_ITEM_HEADER;

  memcpy(&word, buf, 8);
  lane[0] = (lane[0] ^ word) * prime;
  memcpy(&producer, buf + 8, 4);
  lane[0] = (lane[0] ^ producer) * prime;
  for (; i + 32 <= size; i += 32) {
    for (guint k = 0; k < 4; k++) {
      memcpy(&word, buf + i + 8 * k, 8);
      lane[k] = (lane[k] ^ word) * prime;
    }
  }
  for (; i + 8 <= size; i += 8) {
    memcpy(&word, buf + i, 8);
    lane[0] = (lane[0] ^ word) * prime;
  }
  for (; i < size; i++)
    lane[0] = (lane[0] ^ buf[i]) * prime;
  guint64 h = lane[0];
  for (guint k = 1; k < 4; k++)
    h = (h ^ lane[k]) * prime;
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

/* Self-checking load items: a 16-byte header (u64 sequence, u32 producer id, u32 FNV-1a checksum,
 * little-endian) then filler up to the item size, so loss, duplication and corruption of any byte
 * are detected by the reader. */
#ifndef KESTREL_LOAD_ITEM_H
#define KESTREL_LOAD_ITEM_H

#include <glib.h>

#define LOAD_ITEM_HEADER 16

/* size must be >= LOAD_ITEM_HEADER. */
void load_item_fill(guint8 *buf, gsize size, guint64 seq, guint32 producer);
/* TRUE when buf is an intact item of exactly `size` bytes; *seq and *producer are set then. */
gboolean load_item_check(const guint8 *buf, gsize len, gsize size, guint64 *seq, guint32 *producer);

#endif

/* Encoding and decoding of Kestrel 2.4 journal records (SPEC 7). Pure functions over bytes. */
#include <kestrel/journal.h>
#include <string.h>

static const gchar *const op_names[KQ_JOURNAL_OP_COUNT] = {
  "ADD", "REMOVE", "ADDX", "REMOVE_TENTATIVE", "SAVE_XID", "UNREMOVE", "CONFIRM_REMOVE",
  "ADD_XID", "CONTINUE", "REMOVE_TENTATIVE_XID",
};

const gchar *kq_journal_op_name(KqJournalOp op)
{
  return (guint)op < KQ_JOURNAL_OP_COUNT ? op_names[op] : "UNKNOWN";
}

static inline guint32 get_u32(const guint8 *p)
{
  guint32 v;
  memcpy(&v, p, 4);
  return GUINT32_FROM_LE(v);
}

static inline gint64 get_i64(const guint8 *p)
{
  guint64 v;
  memcpy(&v, p, 8);
  return (gint64)GUINT64_FROM_LE(v);
}

static inline void put_u32(guint8 *p, guint32 v)
{
  v = GUINT32_TO_LE(v);
  memcpy(p, &v, 4);
}

static inline void put_i64(guint8 *p, gint64 v)
{
  guint64 u = GUINT64_TO_LE((guint64)v);
  memcpy(p, &u, 8);
}

/* An item block: i32 size (16 + data), i64 add time, i64 expiry, data. */
static KqDecodeResult decode_block(const guint8 *p, gsize avail, KqJournalRecord *out,
                                   gsize *block_len)
{
  if (avail < 4)
    return KQ_DECODE_SHORT;
  guint32 size = get_u32(p);
  if (size < 16 || size > KQ_JOURNAL_MAX_ITEM)
    return KQ_DECODE_BAD;
  if (avail - 4 < size)
    return KQ_DECODE_SHORT;
  out->add_time = get_i64(p + 4);
  out->expiry = get_i64(p + 12);
  out->data = p + 20;
  out->data_len = size - 16;
  *block_len = 4 + (gsize)size;
  return KQ_DECODE_OK;
}

KqDecodeResult kq_journal_decode(const guint8 *buf, gsize len, KqJournalRecord *out)
{
  if (len < 1)
    return KQ_DECODE_SHORT;
  memset(out, 0, sizeof(*out));
  out->op = (KqJournalOp)buf[0];
  const guint8 *p = buf + 1;
  gsize avail = len - 1;
  gsize block_len = 0;
  KqDecodeResult r;

  switch (buf[0]) {
  case KQ_OP_ADD: {
    if (avail < 4)
      return KQ_DECODE_SHORT;
    guint32 size = get_u32(p);
    if (size < 4 || size > KQ_JOURNAL_MAX_ITEM)
      return KQ_DECODE_BAD;
    if (avail - 4 < size)
      return KQ_DECODE_SHORT;
    guint32 expiry_s = get_u32(p + 4);
    out->expiry = (gint64)expiry_s * 1000;
    out->data = p + 8;
    out->data_len = size - 4;
    out->record_len = 1 + 4 + (gsize)size;
    return KQ_DECODE_OK;
  }
  case KQ_OP_REMOVE:
  case KQ_OP_REMOVE_TENTATIVE:
    out->record_len = 1;
    return KQ_DECODE_OK;
  case KQ_OP_ADDX:
    r = decode_block(p, avail, out, &block_len);
    if (r != KQ_DECODE_OK)
      return r;
    out->record_len = 1 + block_len;
    return KQ_DECODE_OK;
  case KQ_OP_SAVE_XID:
  case KQ_OP_UNREMOVE:
  case KQ_OP_CONFIRM_REMOVE:
  case KQ_OP_REMOVE_TENTATIVE_XID:
    if (avail < 4)
      return KQ_DECODE_SHORT;
    out->xid = get_u32(p);
    out->record_len = 5;
    return KQ_DECODE_OK;
  case KQ_OP_ADD_XID:
  case KQ_OP_CONTINUE:
    if (avail < 4)
      return KQ_DECODE_SHORT;
    out->xid = get_u32(p);
    r = decode_block(p + 4, avail - 4, out, &block_len);
    if (r != KQ_DECODE_OK)
      return r;
    out->record_len = 5 + block_len;
    return KQ_DECODE_OK;
  default:
    return KQ_DECODE_BAD;
  }
}

void kq_journal_encode_addx_head(guint8 head[KQ_JOURNAL_ADDX_HEAD], gint64 add_time,
                                 gint64 expiry, gsize len)
{
  head[0] = KQ_OP_ADDX;
  put_u32(head + 1, (guint32)(len + 16));
  put_i64(head + 5, add_time);
  put_i64(head + 13, expiry);
}

void kq_journal_encode_addx(GByteArray *out, gint64 add_time, gint64 expiry,
                            const guint8 *data, gsize len)
{
  guint8 head[KQ_JOURNAL_ADDX_HEAD];
  kq_journal_encode_addx_head(head, add_time, expiry, len);
  g_byte_array_append(out, head, sizeof(head));
  if (len > 0)
    g_byte_array_append(out, data, (guint)len);
}

void kq_journal_encode_remove(GByteArray *out)
{
  guint8 op = KQ_OP_REMOVE;
  g_byte_array_append(out, &op, 1);
}

void kq_journal_encode_xid_op(GByteArray *out, KqJournalOp op, guint32 xid)
{
  guint8 rec[5];
  rec[0] = (guint8)op;
  put_u32(rec + 1, xid);
  g_byte_array_append(out, rec, sizeof(rec));
}

/* Queue names never contain '.' or '~' (SPEC 1), so a name ends at the first of them. */
static gsize queue_part_len(const gchar *filename)
{
  return strcspn(filename, ".~");
}

static gboolean all_digits(const gchar *s, gsize n)
{
  if (n == 0 || n > 18)
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isdigit(s[i]))
      return FALSE;
  return TRUE;
}

KqJournalFileKind kq_journal_classify(const gchar *queue, const gchar *filename, gint64 *ts_out)
{
  gsize qlen = strlen(queue);
  if (strncmp(filename, queue, qlen) != 0 || queue_part_len(filename) != qlen)
    return KQ_JOURNAL_FILE_NONE;
  const gchar *rest = filename + qlen;
  if (*rest == '\0')
    return KQ_JOURNAL_FILE_LIVE;
  if (rest[0] == '~' && rest[1] == '~')
    return KQ_JOURNAL_FILE_TEMP;
  if (rest[0] != '.')
    return KQ_JOURNAL_FILE_NONE;
  rest++;
  gsize digits = strspn(rest, "0123456789");
  if (!all_digits(rest, digits))
    return KQ_JOURNAL_FILE_NONE;
  if (ts_out != NULL)
    *ts_out = g_ascii_strtoll(rest, NULL, 10);
  if (rest[digits] == '\0')
    return KQ_JOURNAL_FILE_ROTATED;
  if (strcmp(rest + digits, ".pack") == 0)
    return KQ_JOURNAL_FILE_PACK;
  return KQ_JOURNAL_FILE_NONE;
}

gchar *kq_journal_queue_of(const gchar *filename)
{
  gsize n = queue_part_len(filename);
  if (n == 0)
    return NULL;
  g_autofree gchar *queue = g_strndup(filename, n);
  if (kq_journal_classify(queue, filename, NULL) == KQ_JOURNAL_FILE_NONE)
    return NULL;
  return g_steal_pointer(&queue);
}

gchar *kq_journal_side_file_queue(const gchar *filename)
{
  gsize n = queue_part_len(filename);
  if (n == 0 || !g_str_has_prefix(filename + n, KQ_JOURNAL_SIDE_MARK))
    return NULL;
  const gchar *stamp = filename + n + strlen(KQ_JOURNAL_SIDE_MARK);
  gsize digits = strspn(stamp, "0123456789");
  if (!all_digits(stamp, digits))
    return NULL;
  const gchar *rest = stamp + digits;
  if (*rest != '\0' && (rest[0] != '-' || !all_digits(rest + 1, strlen(rest + 1))))
    return NULL;
  return g_strndup(filename, n);
}

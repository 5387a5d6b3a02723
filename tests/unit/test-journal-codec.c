/* Journal record codec (SPEC 7): every opcode decoded from bytes built here from the format
 * table, cut-short buffers, bad opcodes and sizes, encoder output, and journal file names. */
#include <string.h>

#include <kestrel/journal.h>

/* Little-endian writers, independent of the engine's encoders. */
static void put_u8(GByteArray *b, guint8 v)
{
  g_byte_array_append(b, &v, 1);
}

static void put_u32(GByteArray *b, guint32 v)
{
  guint8 p[4] = { (guint8)v, (guint8)(v >> 8), (guint8)(v >> 16), (guint8)(v >> 24) };
  g_byte_array_append(b, p, 4);
}

static void put_i64(GByteArray *b, gint64 v)
{
  guint64 u = (guint64)v;
  for (int i = 0; i < 8; i++)
    put_u8(b, (guint8)(u >> (8 * i)));
}

static void put_block(GByteArray *b, gint64 add, gint64 expiry, const guint8 *data, gsize len)
{
  put_u32(b, (guint32)(16 + len));
  put_i64(b, add);
  put_i64(b, expiry);
  g_byte_array_append(b, data, (guint)len);
}

#define ADD_TIME G_GINT64_CONSTANT(0x0102030405060708)
#define EXPIRY G_GINT64_CONSTANT(1700000000123)
static const guint8 payload[] = { 'h', 'e', 'l', 'l', 'o', 0x00, 0xff };

/* One record of each opcode, as SPEC 7 lays it out. */
static GByteArray *build(guint8 op)
{
  GByteArray *b = g_byte_array_new();
  put_u8(b, op);
  switch (op) {
  case 0:
    put_u32(b, 4 + sizeof(payload));
    put_u32(b, 1700000000);
    g_byte_array_append(b, payload, sizeof(payload));
    break;
  case 1:
  case 3:
    break;
  case 2:
    put_block(b, ADD_TIME, EXPIRY, payload, sizeof(payload));
    break;
  case 4:
  case 5:
  case 6:
  case 9:
    put_u32(b, 0x80000001u + op);
    break;
  case 7:
  case 8:
    put_u32(b, 77);
    put_block(b, ADD_TIME, EXPIRY, payload, sizeof(payload));
    break;
  default:
    g_assert_not_reached();
  }
  return b;
}

static void test_decode_each_opcode(void)
{
  static const gsize expected_len[KQ_JOURNAL_OP_COUNT] = {
    1 + 4 + 4 + sizeof(payload), 1, 1 + 20 + sizeof(payload), 1, 5, 5, 5,
    5 + 20 + sizeof(payload), 5 + 20 + sizeof(payload), 5,
  };
  for (guint op = 0; op < KQ_JOURNAL_OP_COUNT; op++) {
    g_autoptr(GByteArray) b = build((guint8)op);
    g_assert_cmpuint(b->len, ==, expected_len[op]);
    /* trailing bytes of a following record must not matter */
    put_u8(b, 1);
    KqJournalRecord rec;
    g_assert_cmpint(kq_journal_decode(b->data, b->len, &rec), ==, KQ_DECODE_OK);
    g_assert_cmpint(rec.op, ==, op);
    g_assert_cmpuint(rec.record_len, ==, expected_len[op]);
    switch (op) {
    case 0:
      g_assert_cmpint(rec.add_time, ==, 0);
      g_assert_cmpint(rec.expiry, ==, G_GINT64_CONSTANT(1700000000) * 1000);
      g_assert_cmpmem(rec.data, rec.data_len, payload, sizeof(payload));
      break;
    case 1:
    case 3:
      g_assert_cmpuint(rec.data_len, ==, 0);
      break;
    case 4:
    case 5:
    case 6:
    case 9:
      g_assert_cmpuint(rec.xid, ==, 0x80000001u + op);
      break;
    case 7:
    case 8:
      g_assert_cmpuint(rec.xid, ==, 77);
      /* fall through */
    case 2:
      g_assert_cmpint(rec.add_time, ==, ADD_TIME);
      g_assert_cmpint(rec.expiry, ==, EXPIRY);
      g_assert_cmpmem(rec.data, rec.data_len, payload, sizeof(payload));
      g_assert_true(rec.data == b->data + rec.record_len - sizeof(payload));
      break;
    }
    g_assert_cmpstr(kq_journal_op_name((KqJournalOp)op), !=, "UNKNOWN");
  }
  g_assert_cmpstr(kq_journal_op_name(KQ_OP_ADDX), ==, "ADDX");
  g_assert_cmpstr(kq_journal_op_name(KQ_OP_REMOVE_TENTATIVE_XID), ==, "REMOVE_TENTATIVE_XID");
  g_assert_cmpstr(kq_journal_op_name((KqJournalOp)10), ==, "UNKNOWN");
}

static void test_decode_legacy_add(void)
{
  /* expiry 0 = none; seconds become ms; an empty item is size 4 */
  g_autoptr(GByteArray) b = g_byte_array_new();
  put_u8(b, 0);
  put_u32(b, 4);
  put_u32(b, 0);
  KqJournalRecord rec;
  g_assert_cmpint(kq_journal_decode(b->data, b->len, &rec), ==, KQ_DECODE_OK);
  g_assert_cmpint(rec.expiry, ==, 0);
  g_assert_cmpuint(rec.data_len, ==, 0);
  g_assert_cmpuint(rec.record_len, ==, 9);

  g_byte_array_set_size(b, 0);
  put_u8(b, 0);
  put_u32(b, 5);
  put_u32(b, 0xfffffffeu);  /* an unsigned 32-bit seconds value */
  put_u8(b, 'x');
  g_assert_cmpint(kq_journal_decode(b->data, b->len, &rec), ==, KQ_DECODE_OK);
  g_assert_cmpint(rec.expiry, ==, G_GINT64_CONSTANT(0xfffffffe) * 1000);
  g_assert_cmpmem(rec.data, rec.data_len, "x", 1);
}

static void test_decode_little_endian(void)
{
  /* SAVE_XID 0x04030201 written byte by byte */
  const guint8 rec_bytes[] = { 4, 0x01, 0x02, 0x03, 0x04 };
  KqJournalRecord rec;
  g_assert_cmpint(kq_journal_decode(rec_bytes, sizeof(rec_bytes), &rec), ==, KQ_DECODE_OK);
  g_assert_cmpuint(rec.xid, ==, 0x04030201u);

  /* ADDX of "A": size 17 = 0x11, add 0x0807060504030201, expiry 1 */
  const guint8 addx[] = { 2, 0x11, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 0, 0, 0, 0, 0, 0, 0, 'A' };
  g_assert_cmpint(kq_journal_decode(addx, sizeof(addx), &rec), ==, KQ_DECODE_OK);
  g_assert_cmpint(rec.add_time, ==, G_GINT64_CONSTANT(0x0807060504030201));
  g_assert_cmpint(rec.expiry, ==, 1);
  g_assert_cmpuint(rec.data_len, ==, 1);
  g_assert_cmpuint(rec.record_len, ==, sizeof(addx));
}

static void test_decode_short(void)
{
  for (guint op = 0; op < KQ_JOURNAL_OP_COUNT; op++) {
    g_autoptr(GByteArray) b = build((guint8)op);
    KqJournalRecord rec;
    for (gsize cut = 0; cut < b->len; cut++) {
      /* a copy of exactly `cut` bytes, so a decoder reading past the end is caught by tools */
      g_autofree guint8 *copy = g_memdup2(b->data, cut ? cut : 1);
      KqDecodeResult r = kq_journal_decode(copy, cut, &rec);
      if (r != KQ_DECODE_SHORT)
        g_error("op %u cut at %" G_GSIZE_FORMAT " of %u: result %d, expected SHORT", op, cut,
                b->len, r);
    }
    g_assert_cmpint(kq_journal_decode(b->data, b->len, &rec), ==, KQ_DECODE_OK);
  }
}

static void test_decode_bad(void)
{
  KqJournalRecord rec;
  for (guint op = KQ_JOURNAL_OP_COUNT; op < 256; op++) {
    guint8 byte = (guint8)op;
    g_assert_cmpint(kq_journal_decode(&byte, 1, &rec), ==, KQ_DECODE_BAD);
  }
  /* block sizes below 16 are impossible, in ADDX, ADD_XID and CONTINUE */
  for (guint32 size = 0; size < 16; size++) {
    g_autoptr(GByteArray) b = g_byte_array_new();
    put_u8(b, 2);
    put_u32(b, size);
    g_byte_array_set_size(b, 64);
    g_assert_cmpint(kq_journal_decode(b->data, b->len, &rec), ==, KQ_DECODE_BAD);
    for (guint8 op = 7; op <= 8; op++) {
      g_byte_array_set_size(b, 0);
      put_u8(b, op);
      put_u32(b, 1);
      put_u32(b, size);
      g_byte_array_set_size(b, 64);
      g_assert_cmpint(kq_journal_decode(b->data, b->len, &rec), ==, KQ_DECODE_BAD);
    }
  }
  /* a legacy ADD smaller than its expiry field */
  for (guint32 size = 0; size < 4; size++) {
    g_autoptr(GByteArray) b = g_byte_array_new();
    put_u8(b, 0);
    put_u32(b, size);
    g_byte_array_set_size(b, 64);
    g_assert_cmpint(kq_journal_decode(b->data, b->len, &rec), ==, KQ_DECODE_BAD);
  }
  /* garbage lengths beyond the item limit are bad, not "read more" */
  g_autoptr(GByteArray) b = g_byte_array_new();
  put_u8(b, 2);
  put_u32(b, 0xffffffffu);
  g_assert_cmpint(kq_journal_decode(b->data, b->len, &rec), ==, KQ_DECODE_BAD);
  g_byte_array_set_size(b, 0);
  put_u8(b, 0);
  put_u32(b, KQ_JOURNAL_MAX_ITEM + 1);
  g_assert_cmpint(kq_journal_decode(b->data, b->len, &rec), ==, KQ_DECODE_BAD);
}

static void test_encoders(void)
{
  g_autoptr(GByteArray) ours = g_byte_array_new();
  g_autoptr(GByteArray) hand = g_byte_array_new();

  kq_journal_encode_addx(ours, ADD_TIME, EXPIRY, payload, sizeof(payload));
  g_autoptr(GByteArray) addx = build(2);
  g_assert_cmpmem(ours->data, ours->len, addx->data, addx->len);
  g_assert_cmpuint(ours->len, ==, KQ_JOURNAL_ADDX_SIZE(sizeof(payload)));

  /* an empty item is 21 bytes */
  g_byte_array_set_size(ours, 0);
  kq_journal_encode_addx(ours, 5, 0, NULL, 0);
  put_u8(hand, 2);
  put_block(hand, 5, 0, NULL, 0);
  g_assert_cmpmem(ours->data, ours->len, hand->data, hand->len);
  g_assert_cmpuint(ours->len, ==, 21);

  g_byte_array_set_size(ours, 0);
  kq_journal_encode_remove(ours);
  g_assert_cmpuint(ours->len, ==, 1);
  g_assert_cmpuint(ours->data[0], ==, 1);

  const KqJournalOp xid_ops[] = { KQ_OP_SAVE_XID, KQ_OP_UNREMOVE, KQ_OP_CONFIRM_REMOVE,
                                  KQ_OP_REMOVE_TENTATIVE_XID };
  for (guint i = 0; i < G_N_ELEMENTS(xid_ops); i++) {
    g_byte_array_set_size(ours, 0);
    kq_journal_encode_xid_op(ours, xid_ops[i], 0x80000001u + xid_ops[i]);
    g_autoptr(GByteArray) expected = build((guint8)xid_ops[i]);
    g_assert_cmpmem(ours->data, ours->len, expected->data, expected->len);
  }

  /* encoders append; a sequence decodes back record by record */
  g_byte_array_set_size(ours, 0);
  kq_journal_encode_addx(ours, 1, 2, (const guint8 *)"ab", 2);
  kq_journal_encode_xid_op(ours, KQ_OP_REMOVE_TENTATIVE_XID, 9);
  kq_journal_encode_remove(ours);
  KqJournalRecord rec;
  gsize pos = 0;
  const KqJournalOp seq[] = { KQ_OP_ADDX, KQ_OP_REMOVE_TENTATIVE_XID, KQ_OP_REMOVE };
  for (guint i = 0; i < G_N_ELEMENTS(seq); i++) {
    g_assert_cmpint(kq_journal_decode(ours->data + pos, ours->len - pos, &rec), ==,
                    KQ_DECODE_OK);
    g_assert_cmpint(rec.op, ==, seq[i]);
    pos += rec.record_len;
  }
  g_assert_cmpuint(pos, ==, ours->len);
}

static void test_classify(void)
{
  gint64 ts = -1;
  g_assert_cmpint(kq_journal_classify("orders", "orders", &ts), ==, KQ_JOURNAL_FILE_LIVE);
  g_assert_cmpint(kq_journal_classify("orders", "orders.1700000000123", &ts), ==,
                  KQ_JOURNAL_FILE_ROTATED);
  g_assert_cmpint(ts, ==, G_GINT64_CONSTANT(1700000000123));
  ts = -1;
  g_assert_cmpint(kq_journal_classify("orders", "orders.42.pack", &ts), ==,
                  KQ_JOURNAL_FILE_PACK);
  g_assert_cmpint(ts, ==, 42);
  g_assert_cmpint(kq_journal_classify("orders", "orders~~1700000000123", NULL), ==,
                  KQ_JOURNAL_FILE_TEMP);
  g_assert_cmpint(kq_journal_classify("orders", "orders~~", NULL), ==, KQ_JOURNAL_FILE_TEMP);

  /* other queues: a longer name, a fanout child, a prefix */
  const gchar *foreign[] = {
    "ordersx", "orders+audit", "orders+audit.12", "order", "orde.12", "x.orders",
    "orders.", "orders.12x", "orders.x12", "orders.12.pack.old", "orders.12.packs",
    "orders..12", "orders.-12", "orders~x", "orders.1234567890123456789", ".kestrel.lock", "",
  };
  for (guint i = 0; i < G_N_ELEMENTS(foreign); i++)
    if (kq_journal_classify("orders", foreign[i], NULL) != KQ_JOURNAL_FILE_NONE)
      g_error("\"%s\" was taken for a file of queue \"orders\"", foreign[i]);
  g_assert_cmpint(kq_journal_classify("orders+audit", "orders+audit.12", NULL), ==,
                  KQ_JOURNAL_FILE_ROTATED);
  g_assert_cmpint(kq_journal_classify("orders+audit", "orders", NULL), ==, KQ_JOURNAL_FILE_NONE);
}

static void test_queue_of(void)
{
  const struct {
    const gchar *file, *queue;
  } cases[] = {
    { "orders", "orders" },
    { "orders.1700000000123", "orders" },
    { "orders.5.pack", "orders" },
    { "orders~~5", "orders" },
    { "orders+audit", "orders+audit" },
    { "orders+audit.77", "orders+audit" },
    { ".kestrel.lock", NULL },
    { "orders.txt", NULL },
    { "orders.5.pack.bak", NULL },
    { "orders~backup", NULL },
    { "~~5", NULL },
    { ".5", NULL },
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree gchar *q = kq_journal_queue_of(cases[i].file);
    if (g_strcmp0(q, cases[i].queue) != 0)
      g_error("queue of \"%s\": got %s, expected %s", cases[i].file, q ? q : "NULL",
              cases[i].queue ? cases[i].queue : "NULL");
  }
}

/* Side files of a torn tail: found by their own parser, never taken for any queue's journal
 * or temporary, and carrying "~~" so that Kestrel makes no queue of them either. */
static void test_side_file(void)
{
  const struct {
    const gchar *file, *queue;
  } cases[] = {
    { "orders~torn~~1700000000123", "orders" },
    { "orders~torn~~1700000000123-2", "orders" },
    { "orders+audit~torn~~5", "orders+audit" },
    { "orders~torn~~", NULL },
    { "orders~torn~~12x", NULL },
    { "orders~torn~~12-", NULL },
    { "orders~torn~~12-x", NULL },
    { "orders~torn~5", NULL },
    { "orders", NULL },
    { "orders~~5", NULL },
    { "~torn~~5", NULL },
    { "orders.5~torn~~5", NULL },
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree gchar *q = kq_journal_side_file_queue(cases[i].file);
    if (g_strcmp0(q, cases[i].queue) != 0)
      g_error("side file \"%s\": got %s, expected %s", cases[i].file, q ? q : "NULL",
              cases[i].queue ? cases[i].queue : "NULL");
  }
  const gchar *sides[] = { "orders~torn~~1700000000123", "orders~torn~~1700000000123-2" };
  for (guint i = 0; i < G_N_ELEMENTS(sides); i++) {
    g_autofree gchar *owner = kq_journal_queue_of(sides[i]);
    g_assert_null(owner);
    g_assert_cmpint(kq_journal_classify("orders", sides[i], NULL), ==, KQ_JOURNAL_FILE_NONE);
    g_assert_nonnull(strstr(sides[i], "~~"));
    g_assert_false(g_str_has_prefix(sides[i], "orders."));
    g_assert_false(g_str_has_prefix(sides[i], "orders~~"));
  }
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/journal-codec/decode/each-opcode", test_decode_each_opcode);
  g_test_add_func("/journal-codec/decode/legacy-add", test_decode_legacy_add);
  g_test_add_func("/journal-codec/decode/little-endian", test_decode_little_endian);
  g_test_add_func("/journal-codec/decode/short", test_decode_short);
  g_test_add_func("/journal-codec/decode/bad", test_decode_bad);
  g_test_add_func("/journal-codec/encode", test_encoders);
  g_test_add_func("/journal-codec/classify", test_classify);
  g_test_add_func("/journal-codec/queue-of", test_queue_of);
  g_test_add_func("/journal-codec/side-file", test_side_file);
  return g_test_run();
}

/* The Kestrel 2.4 journal record format (SPEC 7), for the engine and for tools that read or
 * write journal files directly. Integers are little-endian. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  KQ_OP_ADD = 0,                  /* legacy: i32 size, i32 expiry (s), data[size-4] */
  KQ_OP_REMOVE = 1,
  KQ_OP_ADDX = 2,                 /* block: i32 size (16+len), i64 add ms, i64 expiry ms, data */
  KQ_OP_REMOVE_TENTATIVE = 3,     /* legacy: open head with xid 0 */
  KQ_OP_SAVE_XID = 4,             /* i32 xid */
  KQ_OP_UNREMOVE = 5,             /* i32 xid */
  KQ_OP_CONFIRM_REMOVE = 6,       /* i32 xid */
  KQ_OP_ADD_XID = 7,              /* i32 xid, block */
  KQ_OP_CONTINUE = 8,             /* i32 xid, block */
  KQ_OP_REMOVE_TENTATIVE_XID = 9, /* i32 xid */
} KqJournalOp;

#define KQ_JOURNAL_OP_COUNT 10

typedef struct {
  KqJournalOp op;
  guint32 xid;
  gint64 add_time;        /* ms; 0 for legacy ADD */
  gint64 expiry;          /* ms, 0 = none (legacy ADD seconds converted) */
  const guint8 *data;     /* points into the decoded buffer */
  gsize data_len;
  gsize record_len;       /* total bytes of the record, opcode included */
} KqJournalRecord;

typedef enum {
  KQ_DECODE_OK,
  KQ_DECODE_SHORT,        /* buffer ends inside the record (torn tail, or read more) */
  KQ_DECODE_BAD,          /* unknown opcode or impossible size */
} KqDecodeResult;

/* Largest item block accepted when decoding (guards against garbage lengths). */
#define KQ_JOURNAL_MAX_ITEM (1u << 30)

KqDecodeResult kq_journal_decode(const guint8 *buf, gsize len, KqJournalRecord *out);
const gchar *kq_journal_op_name(KqJournalOp op);

/* Encoders: append one record to `out`. */
void kq_journal_encode_addx(GByteArray *out, gint64 add_time, gint64 expiry,
                            const guint8 *data, gsize len);
/* The part of an ADDX before its `len` data bytes (opcode, size, times). */
#define KQ_JOURNAL_ADDX_HEAD 21
void kq_journal_encode_addx_head(guint8 head[KQ_JOURNAL_ADDX_HEAD], gint64 add_time,
                                 gint64 expiry, gsize len);
void kq_journal_encode_remove(GByteArray *out);
void kq_journal_encode_xid_op(GByteArray *out, KqJournalOp op, guint32 xid);

/* Bytes an ADDX of `len` data bytes takes on disk (len + 21). */
#define KQ_JOURNAL_ADDX_SIZE(len) ((gsize)(len) + KQ_JOURNAL_ADDX_HEAD)

/* Journal files of `queue` in `dir`: classify a file name. */
typedef enum {
  KQ_JOURNAL_FILE_NONE,     /* not a file of this queue */
  KQ_JOURNAL_FILE_LIVE,     /* <q> */
  KQ_JOURNAL_FILE_ROTATED,  /* <q>.<ts> */
  KQ_JOURNAL_FILE_PACK,     /* <q>.<ts>.pack */
  KQ_JOURNAL_FILE_TEMP,     /* <q>~~... */
} KqJournalFileKind;

KqJournalFileKind kq_journal_classify(const gchar *queue, const gchar *filename, gint64 *ts_out);

/* Queue name a file belongs to (NULL if it is no journal file). Caller frees. */
gchar *kq_journal_queue_of(const gchar *filename);

/* Side files: `<q>~torn~~<ms>` (`-<n>` appended when that name is taken) holds the bytes that
 * replay found unreadable at the end of a journal file of q and cut off it. No kestreld or
 * Kestrel takes one for a journal or a temporary: the name is no queue's, holds "~~" and
 * does not start with `<q>.` or `<q>~~`. */
#define KQ_JOURNAL_SIDE_MARK "~torn~~"

/* Queue a side file belongs to (NULL if `filename` is no side file). Caller frees. */
gchar *kq_journal_side_file_queue(const gchar *filename);

G_END_DECLS

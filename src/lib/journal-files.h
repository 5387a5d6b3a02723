/* A queue's journal files on disk: start-up cleanup (temporaries, packs), replay order, and a
 * buffered reader of records. Not thread-safe; the owning queue's lock guards use. */
#pragma once
#include <glib.h>
#include <kestrel/journal.h>

/* Delete `<q>~~*` temporaries and settle `<q>.<ts>.pack` files (rotated files with timestamp
 * <= ts are deleted, the pack becomes `<q>.<ts>`), as a restart after a crash must. Before
 * touching anything, refuses with KQ_ERROR_NOT_JOURNAL when a live, rotated or pack file of
 * the queue is not a journal (kq_journal_files_check_start): such a file is left alone. */
gboolean kq_journal_files_cleanup(const gchar *dir, const gchar *queue, GError **error);

/* Whether `path` may be a journal file: a regular file that is empty or whose first byte is an
 * opcode (or the placeholder of a record being written). A file in which the engine never
 * wrote, such as a text file that happens to have a queue's name, fails with
 * KQ_ERROR_NOT_JOURNAL; a journal whose later records are torn passes. */
gboolean kq_journal_files_check_start(const gchar *path, GError **error);

/* Replay found an unreadable record at `offset` of `path`, a journal file of `queue` in `dir`:
 * copy the bytes from there to the end of the file into a new side file `<q>~torn~~<ms>`
 * beside it (written and fsynced through the KqIoOps seam), log a warning naming both, the
 * offset and the size (a message when the record is `unfinished`: never acknowledged, so no
 * damage), then cut the journal at `offset`. When the side file cannot be made,
 * the journal is left untouched and KQ_ERROR_IO is returned. */
gboolean kq_journal_files_cut_torn_tail(const gchar *dir, const gchar *queue, const gchar *path,
                                        gint64 offset, gboolean unfinished, GError **error);

/* Rotated files (`<q>.<ts>`, basenames) in timestamp order. */
GPtrArray *kq_journal_files_rotated(const gchar *dir, const gchar *queue);

/* Delete every file of the queue (live, rotated, packs, temporaries). */
void kq_journal_files_erase(const gchar *dir, const gchar *queue);

typedef struct _KqJournalReader KqJournalReader;

typedef enum {
  KQ_READ_RECORD,  /* *record filled; its data is valid until the next call */
  KQ_READ_EOF,     /* clean end of file, or of its records when reserved space follows them */
  KQ_READ_TORN,    /* a cut-short record or unknown opcode at reader offset */
  KQ_READ_ERROR,   /* I/O error (error set) */
} KqReadResult;

KqJournalReader *kq_journal_reader_open(const gchar *path, gint64 offset, GError **error);
KqReadResult kq_journal_reader_next(KqJournalReader *reader, KqJournalRecord *record,
                                    GError **error);
/* Stop reading at `limit` (the end of the records of a live file that is written through a
 * mapping over reserved space); -1 reads to the end of the file. */
void kq_journal_reader_set_limit(KqJournalReader *reader, gint64 limit);
/* After KQ_READ_EOF: bytes of reserved space (zeros) between the last record and the end of
 * the file, as a writer that was stopped abruptly leaves them; 0 for a clean end. */
gint64 kq_journal_reader_reserved(KqJournalReader *reader);
/* After KQ_READ_TORN: whether the bad record's opcode is still the placeholder a writer stores
 * first, i.e. an append cut short before it was acknowledged rather than damage. */
gboolean kq_journal_reader_at_unfinished(KqJournalReader *reader);
/* File offset of the next record to be read (after a TORN: where the bad record starts). */
gint64 kq_journal_reader_offset(KqJournalReader *reader);
const gchar *kq_journal_reader_path(KqJournalReader *reader);
void kq_journal_reader_free(KqJournalReader *reader);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(KqJournalReader, kq_journal_reader_free)

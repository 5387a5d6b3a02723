/* A queue's journal writer (SPEC 7): appends records to the live file `<q>`, rotates it to
 * `<q>.<ts>`, and rewrites the whole journal crash-safely. Not thread-safe: the owning queue's
 * lock guards it. */
#pragma once
#include <glib.h>
#include <kestrel/journal.h>

/* An opcode no reader accepts, held in a record's first byte while the record is copied. */
#define KQ_JOURNAL_UNWRITTEN_OP 0xff

typedef struct _KqJournal KqJournal;
typedef struct _KqJournalSink KqJournalSink;

KqJournal *kq_journal_new(const gchar *dir, const gchar *queue);
void kq_journal_free(KqJournal *journal);

const gchar *kq_journal_get_dir(KqJournal *journal);
/* Full path of the live file. */
const gchar *kq_journal_get_live_path(KqJournal *journal);

/* Open (creating if needed) the live file for appending. */
gboolean kq_journal_open(KqJournal *journal, GError **error);
/* Whether the live file is open (from kq_journal_open until kq_journal_close). */
gboolean kq_journal_is_open(KqJournal *journal);
/* Cut `path` at `offset` (torn tail found during replay). */
gboolean kq_journal_truncate_file(const gchar *path, gint64 offset, GError **error);

gboolean kq_journal_write_addx(KqJournal *journal, gint64 add_time, gint64 expiry,
                               const guint8 *data, gsize len, GError **error);
gboolean kq_journal_write_remove(KqJournal *journal, GError **error);
gboolean kq_journal_write_xid(KqJournal *journal, KqJournalOp op, guint32 xid, GError **error);

gint64 kq_journal_size(KqJournal *journal);           /* live file */
gint64 kq_journal_archived_size(KqJournal *journal);  /* rotated files */
/* Bytes ever appended: a position that durability requests refer to. */
guint64 kq_journal_written(KqJournal *journal);

/* Rename the live file to `<q>.<ts>` and start an empty one. Returns the rotated file's path
 * in *rotated_path (caller frees) when not NULL. */
gboolean kq_journal_rotate(KqJournal *journal, gchar **rotated_path, GError **error);

/* For a queue whose state is empty (nothing queued, nothing open) and whose journal is the live
 * file alone: delete it and start a new one, with no fsync. Crash-safe at every step: before the
 * delete the file replays to the empty state, after it there is nothing to replay. A power loss
 * may bring the old file back with its unsynced tail cut, so items read in its last moments are
 * delivered again: the promise of syncJournal = never, the only setting that may use this
 * (the others rewrite, which syncs). FALSE, the journal unchanged, when the delete failed. */
gboolean kq_journal_restart_empty(KqJournal *journal, GError **error);
/* Wait until every deleted journal file handed to the background has been closed, and stop
 * the thread that closes them (the next deletion starts it again). */
void kq_journal_finish_closes(void);

/* The state writer handed to a rewrite's dump function. */
typedef gboolean (*KqJournalDumpFunc)(KqJournalSink *sink, const gchar *rotated_path,
                                      gpointer user_data, GError **error);
gboolean kq_journal_sink_addx(KqJournalSink *sink, gint64 add_time, gint64 expiry,
                              const guint8 *data, gsize len, GError **error);
gboolean kq_journal_sink_xid(KqJournalSink *sink, KqJournalOp op, guint32 xid, GError **error);
gint64 kq_journal_sink_offset(KqJournalSink *sink);

/* Replace every file with one holding the state `dump` writes (the state as of the end of the
 * current live file, which is rotated first and passed to dump). Crash-safe at every step:
 * temp `<q>~~<ts>` -> `<q>.<ts>.pack` -> older files deleted -> `<q>.<ts>`. FALSE when the
 * rewrite failed before the pack was in place: the journal's state is then unchanged. TRUE once
 * it was: the state lives in *state_path (caller frees; NULL when the dump was empty), which is
 * still the pack when the older files could not all be deleted (a warning says so; the next
 * rewrite or a restart settles it). */
gboolean kq_journal_rewrite(KqJournal *journal, KqJournalDumpFunc dump, gpointer user_data,
                            gchar **state_path, GError **error);

/* Durability: a dup of the live fd for fsync outside the lock (-1 if none). */
int kq_journal_dup_fd(KqJournal *journal);
/* fsync the live file now (under the lock). */
gboolean kq_journal_fsync(KqJournal *journal, GError **error);

/* Close the live file; with erase, delete every file of the queue. */
void kq_journal_close(KqJournal *journal, gboolean erase);

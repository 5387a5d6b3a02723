/* kestrel-qpack: compact a queue's journal files into one while no server runs, or with
 * --check verify, without changing anything, that they replay (SPEC 7). */
#include "config.h"

#include <errno.h>
#include <locale.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include <kestrel/collection.h>
#include <kestrel/error.h>
#include <kestrel/journal.h>
#include "journal-files.h"
#include "replay-model.h"

enum {
  EXIT_OK = 0,
  EXIT_FAILED = 1,  /* problems found (--check), folder locked, or packing failed */
  EXIT_USAGE = 2,   /* bad command line, missing folder, no journal files */
};

/* The engine's folder lock file (src/lib/collection.c). */
#define LOCK_FILE_NAME ".kestrel.lock"

typedef struct {
  gboolean check;
  gboolean version;
} Options;

typedef struct {
  gchar *name;
  KqJournalFileKind kind;
  gint64 ts;
  gint64 size;
  gboolean replayed;  /* part of what a start-up replays */
} QueueFile;

static const gchar description[] =
  "Compacts the journal files of QUEUE in QUEUE_FOLDER (rotated files <QUEUE>.<ts>, packs,\n"
  "the live file <QUEUE>) into one file holding the queue's items, as the server does when a\n"
  "journal grows past maxJournalSize. No server may use the folder meanwhile: kestrel-qpack\n"
  "takes the folder lock, and refuses to run when a server holds it.\n"
  "\n"
  "Opening the folder replays it as a server start does: every queue's leftover temporaries\n"
  "are deleted, finished packs settled and torn tails moved to side files (with a warning).\n"
  "Reads that were open go back to the head of their queue, as at any server start, so they\n"
  "are kept as the first items. The result is <QUEUE>.<ts> with the queue's state and an\n"
  "empty live file.\n"
  "\n"
  "With --check nothing is changed and no lock is taken: the files are listed in replay order\n"
  "and every record is decoded while the queue's state is followed, reporting torn tails and\n"
  "unknown opcodes (with their offsets) and records a replay would ignore: a REMOVE on an\n"
  "empty queue, an open of an empty queue, an UNREMOVE, CONFIRM_REMOVE or CONTINUE of an xid\n"
  "that is not open; and side files (<QUEUE>~torn~~<ms>) holding bytes an earlier start-up\n"
  "cut off an unreadable journal tail.\n"
  "\n"
  "Exit status:\n"
  "  0  packed; or, with --check, no problem found.\n"
  "  1  the folder is locked by a running server, packing failed, or --check found problems.\n"
  "  2  bad command line, the folder does not exist, or QUEUE has no journal files there.\n";

static gboolean parse_options(int *argc, char ***argv, Options *o, GError **error)
{
  const GOptionEntry entries[] = {
    { "check", 'c', 0, G_OPTION_ARG_NONE, &o->check,
      "Only verify that the files replay; report problems; change nothing.", NULL },
    { "version", 'V', 0, G_OPTION_ARG_NONE, &o->version,
      "Print \"kestrel-qpack VERSION\" and exit.", NULL },
    { NULL },
  };
  g_autoptr(GOptionContext) context =
    g_option_context_new("QUEUE_FOLDER QUEUE - compact or check a queue's journal files");
  g_option_context_add_main_entries(context, entries, NULL);
  g_option_context_set_description(context, description);
  if (!g_option_context_parse(context, argc, argv, error))
    return FALSE;
  if (o->version)
    return TRUE;
  if (*argc != 3) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                "expected QUEUE_FOLDER and QUEUE (see --help)");
    return FALSE;
  }
  return TRUE;
}

static void queue_file_free(gpointer p)
{
  QueueFile *f = p;
  g_free(f->name);
  g_free(f);
}

/* Replay order: rotated files and packs by timestamp, then the live file, then temporaries. */
static gint queue_file_compare(gconstpointer a, gconstpointer b)
{
  const QueueFile *x = *(const QueueFile *const *)a, *y = *(const QueueFile *const *)b;
  static const int rank[] = {
    [KQ_JOURNAL_FILE_ROTATED] = 0, [KQ_JOURNAL_FILE_PACK] = 0,
    [KQ_JOURNAL_FILE_LIVE] = 1, [KQ_JOURNAL_FILE_TEMP] = 2, [KQ_JOURNAL_FILE_NONE] = 3,
  };
  if (rank[x->kind] != rank[y->kind])
    return rank[x->kind] - rank[y->kind];
  if (x->ts != y->ts)
    return x->ts < y->ts ? -1 : 1;
  if (x->kind != y->kind)  /* a rotated file sorts before the pack with its timestamp */
    return x->kind == KQ_JOURNAL_FILE_ROTATED ? -1 : 1;
  return g_strcmp0(x->name, y->name);
}

/* The queue's files, sorted, with `replayed` set as a start-up would (after it deletes
 * temporaries and lets the newest pack replace the rotated files it covers). */
static GPtrArray *list_queue_files(const gchar *folder, const gchar *queue, GError **error)
{
  g_autoptr(GDir) dir = g_dir_open(folder, 0, error);
  if (dir == NULL)
    return NULL;
  g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(queue_file_free);
  const gchar *name;
  while ((name = g_dir_read_name(dir)) != NULL) {
    gint64 ts = 0;
    KqJournalFileKind kind = kq_journal_classify(queue, name, &ts);
    if (kind == KQ_JOURNAL_FILE_NONE)
      continue;
    g_autofree gchar *path = g_build_filename(folder, name, NULL);
    GStatBuf st;
    QueueFile *f = g_new0(QueueFile, 1);
    f->name = g_strdup(name);
    f->kind = kind;
    f->ts = ts;
    f->size = g_stat(path, &st) == 0 ? (gint64)st.st_size : -1;
    g_ptr_array_add(files, f);
  }
  g_ptr_array_sort(files, queue_file_compare);
  gint64 newest_pack = -1;
  for (guint i = 0; i < files->len; i++) {
    QueueFile *f = files->pdata[i];
    if (f->kind == KQ_JOURNAL_FILE_PACK && f->ts > newest_pack)
      newest_pack = f->ts;
  }
  for (guint i = 0; i < files->len; i++) {
    QueueFile *f = files->pdata[i];
    switch (f->kind) {
    case KQ_JOURNAL_FILE_LIVE:
      f->replayed = TRUE;
      break;
    case KQ_JOURNAL_FILE_ROTATED:
      f->replayed = f->ts > newest_pack;
      break;
    case KQ_JOURNAL_FILE_PACK:
      f->replayed = f->ts == newest_pack;
      break;
    default:
      f->replayed = FALSE;
    }
  }
  return g_steal_pointer(&files);
}

static const gchar *file_note(const QueueFile *f)
{
  switch (f->kind) {
  case KQ_JOURNAL_FILE_LIVE:
    return "live";
  case KQ_JOURNAL_FILE_ROTATED:
    return f->replayed ? "rotated" : "rotated, covered by a newer pack: deleted at start-up";
  case KQ_JOURNAL_FILE_PACK:
    return f->replayed ? "pack: replaces the rotated files up to its timestamp at start-up"
                       : "pack, covered by a newer pack: deleted at start-up";
  case KQ_JOURNAL_FILE_TEMP:
    return "temporary: deleted at start-up, not replayed";
  default:
    return "";
  }
}

static void print_files(GPtrArray *files, gboolean notes)
{
  gint64 total = 0;
  int width = 0;
  for (guint i = 0; i < files->len; i++)
    width = MAX(width, (int)strlen(((QueueFile *)files->pdata[i])->name));
  for (guint i = 0; i < files->len; i++) {
    QueueFile *f = files->pdata[i];
    printf("  %-*s %12" G_GINT64_FORMAT " bytes%s%s\n", width, f->name, f->size,
           notes ? "  " : "", notes ? file_note(f) : "");
    total += MAX(f->size, 0);
  }
  printf("  total: %" G_GINT64_FORMAT " bytes in %u file%s\n", total, files->len,
         files->len == 1 ? "" : "s");
}

/* ---------- --check ---------- */

/* Tell whether a server holds the folder lock, without creating or keeping anything. */
static gboolean folder_is_locked(const gchar *folder)
{
  g_autofree gchar *path = g_build_filename(folder, LOCK_FILE_NAME, NULL);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return FALSE;
  gboolean locked = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  close(fd);  /* also drops the shared lock, if we got it */
  return locked;
}

/* Replay one file into `state`; problems are printed and counted. FALSE on an I/O error. */
static gboolean check_file(const gchar *folder, const QueueFile *f, ToolReplay *state,
                           gint64 *problems, GError **error)
{
  g_autofree gchar *path = g_build_filename(folder, f->name, NULL);
  g_autoptr(KqJournalReader) reader = kq_journal_reader_open(path, 0, error);
  if (reader == NULL)
    return FALSE;
  KqJournalRecord rec;
  KqReadResult res;
  for (;;) {
    gint64 offset = kq_journal_reader_offset(reader);
    res = kq_journal_reader_next(reader, &rec, error);
    if (res != KQ_READ_RECORD)
      break;
    g_autofree gchar *problem = tool_replay_apply(state, &rec);
    if (problem != NULL) {
      printf("  %s offset %" G_GINT64_FORMAT ": %s\n", f->name, offset, problem);
      (*problems)++;
    }
  }
  if (res == KQ_READ_ERROR)
    return FALSE;
  if (res == KQ_READ_TORN) {
    gint64 end = kq_journal_reader_offset(reader);
    GStatBuf st;
    gint64 size = g_stat(path, &st) == 0 ? (gint64)st.st_size : end;
    g_autofree gchar *reason = tool_torn_reason(path, end);
    printf("  %s: torn tail at offset %" G_GINT64_FORMAT " (%" G_GINT64_FORMAT
           " bytes unreadable): %s; a start-up moves those bytes to a side file and "
           "truncates the file there\n",
           f->name, end, size - end, reason);
    (*problems)++;
  }
  return TRUE;
}

static gint side_name_compare(gconstpointer a, gconstpointer b)
{
  return g_strcmp0(*(const gchar *const *)a, *(const gchar *const *)b);
}

/* Side files an earlier start-up left for the queue (bytes cut off an unreadable journal
 * tail): each is a finding, since someone has to look at those bytes. */
static void check_side_files(const gchar *folder, const gchar *queue, gint64 *problems)
{
  g_autoptr(GDir) dir = g_dir_open(folder, 0, NULL);
  if (dir == NULL)
    return;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  const gchar *name;
  while ((name = g_dir_read_name(dir)) != NULL) {
    g_autofree gchar *owner = kq_journal_side_file_queue(name);
    if (g_strcmp0(owner, queue) == 0)
      g_ptr_array_add(names, g_strdup(name));
  }
  g_ptr_array_sort(names, side_name_compare);
  for (guint i = 0; i < names->len; i++) {
    g_autofree gchar *path = g_build_filename(folder, names->pdata[i], NULL);
    GStatBuf st;
    gint64 size = g_stat(path, &st) == 0 ? (gint64)st.st_size : -1;
    printf("  %s: side file, %" G_GINT64_FORMAT " bytes an earlier start-up cut off an "
           "unreadable journal tail; not replayed (inspect with kestrel-qdump, then delete it)\n",
           (gchar *)names->pdata[i], size);
    (*problems)++;
  }
}

static int run_check(const gchar *folder, const gchar *queue, GPtrArray *files)
{
  printf("checking queue '%s' in %s\n", queue, folder);
  if (folder_is_locked(folder))
    printf("note: a server holds the folder lock; its live file may change while it is read\n");
  printf("files (replay order):\n");
  print_files(files, TRUE);
  printf("problems:\n");
  ToolReplay state;
  tool_replay_init(&state);
  gint64 problems = 0;
  for (guint i = 0; i < files->len; i++) {
    QueueFile *f = files->pdata[i];
    g_autoptr(GError) error = NULL;
    if (f->replayed && !check_file(folder, f, &state, &problems, &error)) {
      g_printerr("kestrel-qpack: %s\n", error->message);
      tool_replay_clear(&state);
      return EXIT_USAGE;
    }
  }
  check_side_files(folder, queue, &problems);
  if (problems == 0)
    printf("  none\n");
  g_autofree gchar *xids = tool_replay_format_xids(&state);
  guint open = g_hash_table_size(state.open);
  printf("state after replay: %" G_GSIZE_FORMAT " item%s queued (%" G_GINT64_FORMAT
         " bytes of data), %u open read%s%s%s%s, last xid %u\n",
         state.count, state.count == 1 ? "" : "s", state.bytes, open, open == 1 ? "" : "s", open ? " (xids " : "", xids,
         open ? "; they go back to the head at start-up)" : "", state.last_xid);
  tool_replay_clear(&state);
  if (problems > 0) {
    printf("%" G_GINT64_FORMAT " problem%s found\n", problems, problems == 1 ? "" : "s");
    return EXIT_FAILED;
  }
  printf("clean\n");
  return EXIT_OK;
}

/* ---------- packing ---------- */

static int run_pack(const gchar *folder, const gchar *queue, GPtrArray *before)
{
  g_autoptr(GError) error = NULL;
  printf("packing queue '%s' in %s\n", queue, folder);
  printf("before:\n");
  print_files(before, FALSE);
  KqCollection *collection = kq_collection_open(folder, NULL, &error);
  if (collection == NULL) {
    if (g_error_matches(error, KQ_ERROR, KQ_ERROR_LOCKED))
      g_printerr("kestrel-qpack: cannot pack while a server runs: %s; stop the server first\n",
                 error->message);
    else
      g_printerr("kestrel-qpack: cannot open %s: %s\n", folder, error->message);
    return EXIT_FAILED;
  }
  g_autoptr(KqQueue) q = kq_collection_get(collection, queue, FALSE, &error);
  if (q == NULL) {
    g_printerr("kestrel-qpack: queue '%s' was not restored from %s%s%s\n", queue, folder,
               error ? ": " : "", error ? error->message : "");
    kq_collection_close(collection);
    return EXIT_FAILED;
  }
  gboolean ok = kq_queue_compact(q, &error);
  KqQueueStats stats;
  kq_queue_get_stats(q, &stats);
  g_clear_pointer(&q, kq_queue_unref);
  kq_collection_close(collection);
  if (!ok) {
    g_printerr("kestrel-qpack: packing queue '%s' failed: %s\n", queue, error->message);
    return EXIT_FAILED;
  }
  g_autoptr(GError) list_error = NULL;
  g_autoptr(GPtrArray) after = list_queue_files(folder, queue, &list_error);
  if (after != NULL) {
    printf("after:\n");
    print_files(after, FALSE);
  }
  printf("queue '%s': %" G_GINT64_FORMAT " item%s (%" G_GINT64_FORMAT " bytes of data)\n", queue,
         stats.items, stats.items == 1 ? "" : "s", stats.bytes);
  return EXIT_OK;
}

int main(int argc, char **argv)
{
  Options o = { 0 };
  g_autoptr(GError) error = NULL;
  setlocale(LC_CTYPE, "");   /* --help in the terminal's charset, as kestreld */
  if (!parse_options(&argc, &argv, &o, &error)) {
    g_printerr("kestrel-qpack: %s\n", error->message);
    return EXIT_USAGE;
  }
  if (o.version) {
    printf("kestrel-qpack %s\n", PACKAGE_VERSION);
    return EXIT_OK;
  }
  const gchar *folder = argv[1], *queue = argv[2];
  if (!g_file_test(folder, G_FILE_TEST_IS_DIR)) {
    g_printerr("kestrel-qpack: %s is not a folder\n", folder);
    return EXIT_USAGE;
  }
  if (!kq_queue_name_is_valid(queue, &error)) {
    g_printerr("kestrel-qpack: bad queue name '%s': %s\n", queue, error->message);
    return EXIT_USAGE;
  }
  g_autoptr(GPtrArray) files = list_queue_files(folder, queue, &error);
  if (files == NULL) {
    g_printerr("kestrel-qpack: cannot list %s: %s\n", folder, error->message);
    return EXIT_USAGE;
  }
  if (files->len == 0) {
    g_printerr("kestrel-qpack: queue '%s' has no journal files in %s\n", queue, folder);
    return EXIT_USAGE;
  }
  return o.check ? run_check(folder, queue, files) : run_pack(folder, queue, files);
}

/* kestrel-qdump: print the records of Kestrel journal files, one per line, then a summary per
 * file (SPEC 7). Files are read through a buffered reader, never loaded whole. */
#include "config.h"

#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

#include <kestrel/journal.h>
#include "journal-files.h"
#include "replay-model.h"

enum {
  EXIT_CLEAN = 0,
  EXIT_TORN = 1,   /* a file has a torn tail or an unknown opcode */
  EXIT_USAGE = 2,  /* bad command line, or a file that cannot be read */
};

#define DEFAULT_DATA_LIMIT 64

typedef struct {
  gboolean data;
  gboolean quiet;
  gint data_limit;
  gboolean version;
} Options;

static const gchar description[] =
  "Prints every record of each journal FILE (a queue's live file <q>, a rotated file <q>.<ts>,\n"
  "a pack <q>.<ts>.pack or a temporary <q>~~<ts>; files written by Kestrel 2.4 too), one per\n"
  "line:\n"
  "\n"
  "  OFFSET    OPCODE   FIELDS\n"
  "  000000000 ADDX     size=5 add=2026-11-21T10:30:00.123Z expiry=none\n"
  "  000000026 REMOVE_TENTATIVE_XID xid=1\n"
  "\n"
  "OFFSET is the record's byte offset in the file; size= is the item's data length in bytes;\n"
  "add= and expiry= are UTC times (expiry=none: never expires). Then a summary per file:\n"
  "records, items added and removed, items still queued and their data bytes, reads open at\n"
  "the end (their xids), and where a torn tail starts:\n"
  "\n"
  "  # torn tail at offset N (M bytes unreadable): REASON\n"
  "\n"
  "The queue state carries over from one FILE to the next while they belong to the same queue,\n"
  "so give a queue's files in replay order (rotated files by timestamp, then the live file) to\n"
  "see the state a server would restore. A server stops replaying a file at its torn tail.\n"
  "\n"
  "Exit status:\n"
  "  0  every file was read to a clean end.\n"
  "  1  a file has a torn tail (a record cut short or an unknown opcode).\n"
  "  2  bad command line, or a file cannot be opened or read.\n";

static gboolean parse_options(int *argc, char ***argv, Options *o, GError **error)
{
  const GOptionEntry entries[] = {
    { "data", 'd', 0, G_OPTION_ARG_NONE, &o->data,
      "Show item data: printable ASCII as a quoted string, anything else as hex.", NULL },
    { "max-data", 'm', 0, G_OPTION_ARG_INT, &o->data_limit,
      "With -d, show at most N bytes of each item (default 64; 0 shows all).", "N" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &o->quiet,
      "Print only the summaries, not the records.", NULL },
    { "version", 'V', 0, G_OPTION_ARG_NONE, &o->version,
      "Print \"kestrel-qdump VERSION\" and exit.", NULL },
    { NULL },
  };
  g_autoptr(GOptionContext) context = g_option_context_new("FILE... - print journal records");
  g_option_context_add_main_entries(context, entries, NULL);
  g_option_context_set_description(context, description);
  if (!g_option_context_parse(context, argc, argv, error))
    return FALSE;
  if (o->version)
    return TRUE;
  if (o->data_limit < 0) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                "--max-data must be 0 or more, not %d", o->data_limit);
    return FALSE;
  }
  if (*argc < 2) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                "no journal FILE given (see --help)");
    return FALSE;
  }
  return TRUE;
}

static gboolean is_printable(const guint8 *data, gsize len)
{
  for (gsize i = 0; i < len; i++)
    if (data[i] < 0x20 || data[i] > 0x7e)
      return FALSE;
  return TRUE;
}

static void append_data(GString *line, const KqJournalRecord *rec, gint limit)
{
  gsize shown = rec->data_len;
  if (limit > 0 && shown > (gsize)limit)
    shown = (gsize)limit;
  if (is_printable(rec->data, rec->data_len)) {
    g_string_append(line, " data=\"");
    for (gsize i = 0; i < shown; i++) {
      if (rec->data[i] == '"' || rec->data[i] == '\\')
        g_string_append_c(line, '\\');
      g_string_append_c(line, (gchar)rec->data[i]);
    }
    g_string_append_c(line, '"');
  } else {
    g_string_append(line, " data=hex:");
    for (gsize i = 0; i < shown; i++)
      g_string_append_printf(line, "%02x", rec->data[i]);
  }
  if (shown < rec->data_len)
    g_string_append_printf(line, "...(%" G_GSIZE_FORMAT " more bytes)", rec->data_len - shown);
}

static void print_record(gint64 offset, const KqJournalRecord *rec, const Options *o)
{
  g_autoptr(GString) line = g_string_new(NULL);
  g_string_append_printf(line, "%09" G_GINT64_FORMAT " %-8s", offset, kq_journal_op_name(rec->op));
  gboolean has_xid = rec->op != KQ_OP_ADD && rec->op != KQ_OP_ADDX && rec->op != KQ_OP_REMOVE &&
                     rec->op != KQ_OP_REMOVE_TENTATIVE;
  gboolean has_item = rec->op == KQ_OP_ADD || rec->op == KQ_OP_ADDX ||
                      rec->op == KQ_OP_ADD_XID || rec->op == KQ_OP_CONTINUE;
  if (has_xid)
    g_string_append_printf(line, " xid=%u", rec->xid);
  if (has_item) {
    g_autofree gchar *expiry = tool_format_time(rec->expiry);
    g_string_append_printf(line, " size=%" G_GSIZE_FORMAT, rec->data_len);
    if (rec->op != KQ_OP_ADD) {  /* legacy ADD carries no add time */
      g_autofree gchar *add = tool_format_time(rec->add_time);
      g_string_append_printf(line, " add=%s", add);
    }
    g_string_append_printf(line, " expiry=%s", expiry);
    if (o->data)
      append_data(line, rec, o->data_limit);
  }
  puts(g_strchomp(line->str));  /* no padding after a bare opcode */
}

/* Dump one file, continuing `state`. Returns EXIT_CLEAN, EXIT_TORN or EXIT_USAGE. */
static int dump_file(const gchar *path, ToolReplay *state, const Options *o)
{
  g_autoptr(GError) error = NULL;
  GStatBuf st;
  if (g_stat(path, &st) != 0) {
    g_printerr("kestrel-qdump: cannot read %s: %s\n", path, g_strerror(errno));
    return EXIT_USAGE;
  }
  if (!S_ISREG(st.st_mode)) {
    g_printerr("kestrel-qdump: %s is not a regular file\n", path);
    return EXIT_USAGE;
  }
  g_autoptr(KqJournalReader) reader = kq_journal_reader_open(path, 0, &error);
  if (reader == NULL) {
    g_printerr("kestrel-qdump: %s\n", error->message);
    return EXIT_USAGE;
  }
  gint64 added0 = state->added, removed0 = state->removed, records = 0;
  printf("# %s (%" G_GINT64_FORMAT " bytes)\n", path, (gint64)st.st_size);
  KqJournalRecord rec;
  KqReadResult res;
  for (;;) {
    gint64 offset = kq_journal_reader_offset(reader);
    res = kq_journal_reader_next(reader, &rec, &error);
    if (res != KQ_READ_RECORD)
      break;
    records++;
    if (!o->quiet)
      print_record(offset, &rec, o);
    g_free(tool_replay_apply(state, &rec));
  }
  if (res == KQ_READ_ERROR) {
    g_printerr("kestrel-qdump: %s\n", error->message);
    return EXIT_USAGE;
  }
  gint64 end = kq_journal_reader_offset(reader);
  g_autofree gchar *xids = tool_replay_format_xids(state);
  printf("# records: %" G_GINT64_FORMAT "\n", records);
  printf("# items: %" G_GINT64_FORMAT " added, %" G_GINT64_FORMAT " removed, %" G_GSIZE_FORMAT
         " queued (%" G_GINT64_FORMAT " bytes of data)\n",
         state->added - added0, state->removed - removed0, state->count, state->bytes);
  printf("# open transactions: %u%s%s%s\n", g_hash_table_size(state->open),
         *xids ? " (xids " : "", xids, *xids ? ")" : "");
  if (res == KQ_READ_TORN) {
    g_autofree gchar *reason = tool_torn_reason(path, end);
    printf("# torn tail at offset %" G_GINT64_FORMAT " (%" G_GINT64_FORMAT
           " bytes unreadable): %s\n", end, (gint64)st.st_size - end, reason);
    return EXIT_TORN;
  }
  if (kq_journal_reader_reserved(reader) > 0)
    printf("# %" G_GINT64_FORMAT " bytes of reserved space (zeros) after the last record: a live "
           "file of a running server, or of one stopped abruptly\n",
           kq_journal_reader_reserved(reader));
  printf("# clean end at offset %" G_GINT64_FORMAT "\n", end);
  return EXIT_CLEAN;
}

int main(int argc, char **argv)
{
  Options o = { .data_limit = DEFAULT_DATA_LIMIT };
  g_autoptr(GError) error = NULL;
  setlocale(LC_CTYPE, "");   /* --help in the terminal's charset, as kestreld */
  if (!parse_options(&argc, &argv, &o, &error)) {
    g_printerr("kestrel-qdump: %s\n", error->message);
    return EXIT_USAGE;
  }
  if (o.version) {
    printf("kestrel-qdump %s\n", PACKAGE_VERSION);
    return EXIT_CLEAN;
  }
  int status = EXIT_CLEAN;
  ToolReplay state;
  tool_replay_init(&state);
  g_autofree gchar *queue = NULL;
  for (int i = 1; i < argc; i++) {
    g_autofree gchar *base = g_path_get_basename(argv[i]);
    g_autofree gchar *this_queue = kq_journal_queue_of(base);
    if (i > 1) {
      putchar('\n');
      if (this_queue == NULL || g_strcmp0(this_queue, queue) != 0)
        tool_replay_reset(&state);
    }
    g_free(queue);
    queue = g_steal_pointer(&this_queue);
    int rc = dump_file(argv[i], &state, &o);
    if (rc > status)
      status = rc;
  }
  tool_replay_clear(&state);
  return status;
}

/* Journal files on disk: naming, start-up cleanup and reading (SPEC 7). */
#include "journal-files.h"
#include <kestrel/error.h>
#include <kestrel/io.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK (1024 * 1024)

typedef struct {
  gchar *name;
  gint64 ts;
} TsFile;

static gint ts_file_compare(gconstpointer a, gconstpointer b)
{
  const TsFile *x = *(const TsFile *const *)a, *y = *(const TsFile *const *)b;
  return x->ts < y->ts ? -1 : x->ts > y->ts ? 1 : 0;
}

static void ts_file_free(gpointer p)
{
  TsFile *f = p;
  g_free(f->name);
  g_free(f);
}

/* Files of `queue` of the given kind, sorted by timestamp. */
static GPtrArray *list_kind(const gchar *dir, const gchar *queue, KqJournalFileKind kind)
{
  GPtrArray *files = g_ptr_array_new_with_free_func(ts_file_free);
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  if (d == NULL)
    return files;
  const gchar *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    gint64 ts = 0;
    if (kq_journal_classify(queue, name, &ts) != kind)
      continue;
    TsFile *f = g_new(TsFile, 1);
    f->name = g_strdup(name);
    f->ts = ts;
    g_ptr_array_add(files, f);
  }
  g_ptr_array_sort(files, ts_file_compare);
  return files;
}

gboolean kq_journal_files_cleanup(const gchar *dir, const gchar *queue, GError **error)
{
  const KqIoOps *io = kq_io_get();
  g_autoptr(GPtrArray) temps = list_kind(dir, queue, KQ_JOURNAL_FILE_TEMP);
  for (guint i = 0; i < temps->len; i++) {
    TsFile *f = temps->pdata[i];
    g_autofree gchar *path = g_build_filename(dir, f->name, NULL);
    g_message("deleting unfinished journal temporary %s", path);
    io->unlink(path);
  }
  g_autoptr(GPtrArray) packs = list_kind(dir, queue, KQ_JOURNAL_FILE_PACK);
  for (guint i = 0; i < packs->len; i++) {
    TsFile *pack = packs->pdata[i];
    g_autoptr(GPtrArray) rotated = list_kind(dir, queue, KQ_JOURNAL_FILE_ROTATED);
    for (guint j = 0; j < rotated->len; j++) {
      TsFile *r = rotated->pdata[j];
      if (r->ts > pack->ts)
        continue;
      g_autofree gchar *path = g_build_filename(dir, r->name, NULL);
      if (io->unlink(path) != 0 && errno != ENOENT) {
        g_set_error(error, KQ_ERROR, KQ_ERROR_IO, "cannot delete %s: %s", path, g_strerror(errno));
        return FALSE;
      }
    }
    g_autofree gchar *from = g_build_filename(dir, pack->name, NULL);
    g_autofree gchar *to = g_strdup_printf("%s/%s.%" G_GINT64_FORMAT, dir, queue, pack->ts);
    if (io->rename(from, to) != 0) {
      g_set_error(error, KQ_ERROR, KQ_ERROR_IO, "cannot rename %s to %s: %s", from, to,
                  g_strerror(errno));
      return FALSE;
    }
    g_message("settled journal pack %s", to);
  }
  return TRUE;
}

GPtrArray *kq_journal_files_rotated(const gchar *dir, const gchar *queue)
{
  g_autoptr(GPtrArray) files = list_kind(dir, queue, KQ_JOURNAL_FILE_ROTATED);
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < files->len; i++)
    g_ptr_array_add(names, g_strdup(((TsFile *)files->pdata[i])->name));
  return names;
}

void kq_journal_files_erase(const gchar *dir, const gchar *queue)
{
  const KqIoOps *io = kq_io_get();
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  if (d == NULL)
    return;
  const gchar *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    if (kq_journal_classify(queue, name, NULL) == KQ_JOURNAL_FILE_NONE)
      continue;
    g_autofree gchar *path = g_build_filename(dir, name, NULL);
    io->unlink(path);
  }
}

struct _KqJournalReader {
  gchar *path;
  int fd;
  guint8 *buf;
  gsize capacity;
  gsize len;        /* bytes valid in buf */
  gsize pos;        /* next record in buf */
  gint64 buf_offset;/* file offset of buf[0] */
  gint64 limit;     /* read nothing at or past this offset (-1: to end of file) */
  gint64 reserved;  /* zero bytes found between the last record and the end of the file */
};

KqJournalReader *kq_journal_reader_open(const gchar *path, gint64 offset, GError **error)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_IO, "cannot open journal %s: %s", path,
                g_strerror(errno));
    return NULL;
  }
  KqJournalReader *r = g_new0(KqJournalReader, 1);
  r->path = g_strdup(path);
  r->fd = fd;
  r->capacity = READ_CHUNK;
  r->buf = g_malloc(r->capacity);
  r->buf_offset = offset;
  r->limit = -1;
  return r;
}

void kq_journal_reader_set_limit(KqJournalReader *r, gint64 limit)
{
  r->limit = limit;
}

/* Keep the unread tail, then read more after it. Returns bytes added, 0 at EOF, -1 on error. */
static gssize refill(KqJournalReader *r, GError **error)
{
  if (r->pos > 0) {
    memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->buf_offset += (gint64)r->pos;
    r->len -= r->pos;
    r->pos = 0;
  }
  if (r->len == r->capacity) {
    r->capacity *= 2;
    r->buf = g_realloc(r->buf, r->capacity);
  }
  gint64 from = r->buf_offset + (gint64)r->len;
  gsize want = r->capacity - r->len;
  if (r->limit >= 0)
    want = (gsize)CLAMP(r->limit - from, 0, (gint64)want);
  if (want == 0)
    return 0;
  for (;;) {
    ssize_t n = pread(r->fd, r->buf + r->len, want, (off_t)from);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      g_set_error(error, KQ_ERROR, KQ_ERROR_IO, "cannot read journal %s: %s", r->path,
                  g_strerror(errno));
      return -1;
    }
    r->len += (gsize)n;
    return n;
  }
}

/* Whether every byte from the reader's position to the end of the file is zero: space the
 * writer reserved and had not filled yet (journal.c), never a record. */
static gboolean rest_is_reserved(KqJournalReader *r)
{
  if (r->limit >= 0)
    return FALSE;
  gint64 from = kq_journal_reader_offset(r), at = from;
  g_autofree guint8 *chunk = g_malloc(READ_CHUNK);
  for (;;) {
    ssize_t n = pread(r->fd, chunk, READ_CHUNK, (off_t)at);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return FALSE;
    if (n == 0)
      break;
    for (ssize_t i = 0; i < n; i++)
      if (chunk[i] != 0)
        return FALSE;
    at += n;
  }
  r->reserved = at - from;
  return r->reserved > 0;
}

KqReadResult kq_journal_reader_next(KqJournalReader *r, KqJournalRecord *record, GError **error)
{
  for (;;) {
    KqDecodeResult d = kq_journal_decode(r->buf + r->pos, r->len - r->pos, record);
    if (d == KQ_DECODE_OK) {
      r->pos += record->record_len;
      return KQ_READ_RECORD;
    }
    if (d == KQ_DECODE_BAD)
      return rest_is_reserved(r) ? KQ_READ_EOF : KQ_READ_TORN;
    gssize n = refill(r, error);
    if (n < 0)
      return KQ_READ_ERROR;
    if (n == 0)
      return r->pos == r->len || rest_is_reserved(r) ? KQ_READ_EOF : KQ_READ_TORN;
  }
}

gint64 kq_journal_reader_reserved(KqJournalReader *r)
{
  return r->reserved;
}

gint64 kq_journal_reader_offset(KqJournalReader *r)
{
  return r->buf_offset + (gint64)r->pos;
}

const gchar *kq_journal_reader_path(KqJournalReader *r)
{
  return r->path;
}

void kq_journal_reader_free(KqJournalReader *r)
{
  if (r == NULL)
    return;
  close(r->fd);
  g_free(r->buf);
  g_free(r->path);
  g_free(r);
}

/* Journal files on disk: naming, start-up cleanup and reading (SPEC 7). */
#include "journal-files.h"
#include "journal.h"
#include <kestrel/clock.h>
#include <kestrel/error.h>
#include <kestrel/io.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK (1024 * 1024)
#define SIDE_NAME_TRIES 1000  /* side files of one queue made within the same millisecond */

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

gboolean kq_journal_files_check_start(const gchar *path, GError **error)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_IO, "cannot open journal %s: %s", path,
                g_strerror(errno));
    return FALSE;
  }
  struct stat st;
  guint8 first = 0;
  ssize_t n = 0;
  int err = 0;
  if (fstat(fd, &st) != 0)
    err = errno;
  else if (S_ISREG(st.st_mode)) {
    do
      n = pread(fd, &first, 1, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
      err = errno;
  }
  close(fd);
  if (err != 0) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_IO, "cannot read journal %s: %s", path,
                g_strerror(err));
    return FALSE;
  }
  if (!S_ISREG(st.st_mode)) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_NOT_JOURNAL,
                "%s is not a regular file, so not a journal; it is left alone", path);
    return FALSE;
  }
  if (n == 1 && first >= KQ_JOURNAL_OP_COUNT && first != KQ_JOURNAL_UNWRITTEN_OP) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_NOT_JOURNAL,
                "%s does not start with a journal record (first byte 0x%02x); it is left "
                "alone, and the queue cannot be used until the file is moved away", path, first);
    return FALSE;
  }
  return TRUE;
}

/* Every file a start-up would replay, settle or delete as a rotated file must be a journal. */
static gboolean check_starts(const gchar *dir, const gchar *queue, GError **error)
{
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  if (d == NULL)
    return TRUE;
  const gchar *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    KqJournalFileKind kind = kq_journal_classify(queue, name, NULL);
    if (kind == KQ_JOURNAL_FILE_NONE || kind == KQ_JOURNAL_FILE_TEMP)
      continue;
    g_autofree gchar *path = g_build_filename(dir, name, NULL);
    if (!kq_journal_files_check_start(path, error))
      return FALSE;
  }
  return TRUE;
}

gboolean kq_journal_files_cleanup(const gchar *dir, const gchar *queue, GError **error)
{
  const KqIoOps *io = kq_io_get();
  if (!check_starts(dir, queue, error))
    return FALSE;
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

/* Create a side file for `queue` under a name nobody has taken yet. */
static int create_side_file(const gchar *dir, const gchar *queue, gchar **path_out,
                            GError **error)
{
  gint64 now = kq_clock_now_ms();
  for (guint n = 0; n < SIDE_NAME_TRIES; n++) {
    g_autofree gchar *name =
      n == 0 ? g_strdup_printf("%s" KQ_JOURNAL_SIDE_MARK "%" G_GINT64_FORMAT, queue, now)
             : g_strdup_printf("%s" KQ_JOURNAL_SIDE_MARK "%" G_GINT64_FORMAT "-%u", queue, now, n);
    g_autofree gchar *path = g_build_filename(dir, name, NULL);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      *path_out = g_steal_pointer(&path);
      return fd;
    }
    if (errno != EEXIST) {
      g_set_error(error, KQ_ERROR, KQ_ERROR_IO, "cannot create %s: %s", path, g_strerror(errno));
      return -1;
    }
  }
  g_set_error(error, KQ_ERROR, KQ_ERROR_IO, "cannot create a side file for queue '%s' in %s: "
              "every name for this millisecond is taken", queue, dir);
  return -1;
}

/* Copy [offset, end of file) of `from` to `to_fd`. Returns the bytes copied, -1 on error. */
static gint64 copy_tail(int from_fd, gint64 offset, int to_fd, const gchar *from,
                        const gchar *to, GError **error)
{
  const KqIoOps *io = kq_io_get();
  g_autofree guint8 *chunk = g_malloc(READ_CHUNK);
  gint64 at = offset;
  for (;;) {
    ssize_t n = pread(from_fd, chunk, READ_CHUNK, (off_t)at);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      g_set_error(error, KQ_ERROR, KQ_ERROR_IO, "cannot read journal %s: %s", from,
                  g_strerror(errno));
      return -1;
    }
    if (n == 0)
      return at - offset;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = io->write(to_fd, chunk + done, (size_t)(n - done));
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0) {
        g_set_error(error, KQ_ERROR, KQ_ERROR_IO, "cannot write %s: %s", to,
                    g_strerror(w < 0 ? errno : EIO));
        return -1;
      }
      done += w;
    }
    at += n;
  }
}

/* fsync `path` (a side file's folder, so its name survives a crash too). */
static gboolean fsync_path(const gchar *path, GError **error)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || kq_io_get()->fsync(fd) != 0) {
    int err = errno;
    if (fd >= 0)
      close(fd);
    g_set_error(error, KQ_ERROR, KQ_ERROR_IO, "cannot fsync %s: %s", path, g_strerror(err));
    return FALSE;
  }
  close(fd);
  return TRUE;
}

/* Write the tail of `path` from `offset` into a new side file, durably. */
static gboolean keep_tail(const gchar *dir, const gchar *queue, const gchar *path,
                          gint64 offset, gchar **side_path, gint64 *kept, GError **error)
{
  const KqIoOps *io = kq_io_get();
  int from = open(path, O_RDONLY | O_CLOEXEC);
  if (from < 0) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_IO, "cannot open journal %s: %s", path,
                g_strerror(errno));
    return FALSE;
  }
  g_autofree gchar *side = NULL;
  int to = create_side_file(dir, queue, &side, error);
  if (to < 0) {
    close(from);
    return FALSE;
  }
  *kept = copy_tail(from, offset, to, path, side, error);
  gboolean ok = *kept >= 0;
  close(from);
  if (ok && io->fsync(to) != 0) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_IO, "cannot fsync %s: %s", side, g_strerror(errno));
    ok = FALSE;
  }
  close(to);
  ok = ok && fsync_path(dir, error);
  if (!ok) {
    io->unlink(side);
    return FALSE;
  }
  *side_path = g_steal_pointer(&side);
  return TRUE;
}

gboolean kq_journal_files_cut_torn_tail(const gchar *dir, const gchar *queue, const gchar *path,
                                        gint64 offset, gboolean unfinished, GError **error)
{
  g_autofree gchar *side = NULL;
  gint64 kept = 0;
  g_autoptr(GError) local = NULL;
  if (!keep_tail(dir, queue, path, offset, &side, &kept, &local)) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_IO,
                "journal %s: unreadable record at offset %" G_GINT64_FORMAT " (torn write or "
                "unknown opcode), and its bytes cannot be set aside (%s); the journal is left as "
                "it is", path, offset, local->message);
    return FALSE;
  }
  if (!kq_journal_truncate_file(path, offset, error)) {
    kq_io_get()->unlink(side);  /* the journal still holds those bytes */
    return FALSE;
  }
  if (unfinished)
    g_message("journal %s: a record at offset %" G_GINT64_FORMAT " was still being written when "
              "the server stopped (never acknowledged); its %" G_GINT64_FORMAT " bytes were moved "
              "to %s and the journal truncated there", path, offset, kept, side);
  else
    g_warning("journal %s: unreadable record at offset %" G_GINT64_FORMAT " (torn write or "
              "unknown opcode); the %" G_GINT64_FORMAT " bytes from there to the end were moved "
              "to %s and the journal truncated there, keeping what precedes it", path, offset,
              kept, side);
  return TRUE;
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

gboolean kq_journal_reader_at_unfinished(KqJournalReader *r)
{
  return r->pos < r->len && r->buf[r->pos] == KQ_JOURNAL_UNWRITTEN_OP;
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

/* Journal writing, rotation and crash-safe rewrite (SPEC 7). Every file-system call that can
 * fail goes through the KqIoOps seam so tests can make it fail.
 *
 * Records are appended by copying them into a shared mapping of the live file, over space
 * reserved ahead with allocate(): a record is in the kernel's page cache the moment the copy
 * ends (a killed process loses nothing it acknowledged) without a system call per record.
 * Large records are written with pwritev instead: each fresh page of a shared mapping costs a
 * page fault, and for a 512 KB record those faults cost twenty times the system call. The
 * file is cut back to its last record when it is rotated or closed; after a crash the reserved
 * tail is zeros, which the reader recognises as reserved space (journal-files.c) and replay
 * cuts off. */
#include "journal.h"
#include "journal-files.h"
#include <kestrel/clock.h>
#include <kestrel/error.h>
#include <kestrel/io.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SINK_BUFFER (256 * 1024)
#define MAP_WINDOW (1024 * 1024) /* bytes of the live file mapped at once (bounds resident pages) */
/* Records at least this big are written by system call, not through the mapping (4 pages: a
 * call costs less than four page faults). */
#define WRITE_THROUGH_MIN (16 * 1024)

struct _KqJournal {
  gchar *dir;
  gchar *queue;
  gchar *live_path;
  int fd;
  gint64 size;          /* bytes of whole records in the live file */
  gint64 reserved;      /* bytes of the file (records + space reserved ahead) */
  guint8 *map;          /* shared mapping of [map_offset, map_offset + map_len) of the file */
  gint64 map_offset;
  gsize map_len;
  gint64 archived_size;
  gint64 last_rotation_ts;
  guint64 written;
  GByteArray *scratch;
  gboolean torn;        /* a failed write may have left part of a record past `size` */
};

struct _KqJournalSink {
  int fd;
  const gchar *path;
  GByteArray *buf;
  gint64 offset;
};

static void set_io_error(GError **error, const gchar *what, const gchar *path, int err)
{
  g_set_error(error, KQ_ERROR, KQ_ERROR_IO, "%s %s: %s", what, path, g_strerror(err));
}

/* Write all of buf or fail; errno is kept from the failing call (EIO for a zero write). */
static gboolean write_all(int fd, const guint8 *buf, gsize len)
{
  const KqIoOps *io = kq_io_get();
  while (len > 0) {
    ssize_t n = io->write(fd, buf, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (n == 0)
        errno = ENOSPC;
      return FALSE;
    }
    buf += n;
    len -= (gsize)n;
  }
  return TRUE;
}

static gint64 file_size(const gchar *path)
{
  struct stat st;
  return stat(path, &st) == 0 ? (gint64)st.st_size : 0;
}

static void recalc_archived(KqJournal *j)
{
  g_autoptr(GPtrArray) rotated = kq_journal_files_rotated(j->dir, j->queue);
  j->archived_size = 0;
  for (guint i = 0; i < rotated->len; i++) {
    g_autofree gchar *path = g_build_filename(j->dir, rotated->pdata[i], NULL);
    j->archived_size += file_size(path);
    gint64 ts = 0;
    kq_journal_classify(j->queue, rotated->pdata[i], &ts);
    j->last_rotation_ts = MAX(j->last_rotation_ts, ts);
  }
}

static void unmap(KqJournal *j)
{
  if (j->map != NULL)
    munmap(j->map, j->map_len);
  j->map = NULL;
  j->map_len = 0;
}

/* Let go of the live file (its mapping and descriptor); the file itself stays as it is. */
static void close_live(KqJournal *j)
{
  unmap(j);
  if (j->fd >= 0)
    close(j->fd);
  j->fd = -1;
}

/* Cut the reserved space off the live file so it ends on its last record. */
static gboolean trim_reserved(KqJournal *j, GError **error)
{
  unmap(j);
  if (j->fd < 0 || j->reserved == j->size)
    return TRUE;
  if (kq_io_get()->ftruncate(j->fd, (off_t)j->size) != 0) {
    set_io_error(error, "cannot truncate journal", j->live_path, errno);
    return FALSE;
  }
  j->reserved = j->size;
  return TRUE;
}

KqJournal *kq_journal_new(const gchar *dir, const gchar *queue)
{
  KqJournal *j = g_new0(KqJournal, 1);
  j->dir = g_strdup(dir);
  j->queue = g_strdup(queue);
  j->live_path = g_build_filename(dir, queue, NULL);
  j->fd = -1;
  j->scratch = g_byte_array_sized_new(256);
  return j;
}

void kq_journal_free(KqJournal *j)
{
  if (j == NULL)
    return;
  if (j->fd >= 0) {
    trim_reserved(j, NULL);
    close(j->fd);
  }
  g_byte_array_unref(j->scratch);
  g_free(j->dir);
  g_free(j->queue);
  g_free(j->live_path);
  g_free(j);
}

const gchar *kq_journal_get_dir(KqJournal *j) { return j->dir; }
const gchar *kq_journal_get_live_path(KqJournal *j) { return j->live_path; }
gint64 kq_journal_size(KqJournal *j) { return j->size; }
gint64 kq_journal_archived_size(KqJournal *j) { return j->archived_size; }
guint64 kq_journal_written(KqJournal *j) { return j->written; }

gboolean kq_journal_open(KqJournal *j, GError **error)
{
  if (j->fd >= 0)
    return TRUE;
  j->fd = open(j->live_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (j->fd < 0) {
    set_io_error(error, "cannot open journal", j->live_path, errno);
    return FALSE;
  }
  j->size = j->reserved = file_size(j->live_path);
  recalc_archived(j);
  return TRUE;
}

gboolean kq_journal_is_open(KqJournal *j)
{
  return j->fd >= 0;
}

gboolean kq_journal_truncate_file(const gchar *path, gint64 offset, GError **error)
{
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    set_io_error(error, "cannot open journal", path, errno);
    return FALSE;
  }
  int rc = kq_io_get()->ftruncate(fd, (off_t)offset);
  int err = errno;
  close(fd);
  if (rc != 0) {
    set_io_error(error, "cannot truncate journal", path, err);
    return FALSE;
  }
  return TRUE;
}

/* Make [j->size, j->size + len) reserved in the file. Nothing is written, so a failure leaves
 * the journal as it was. */
static gboolean reserve(KqJournal *j, gsize len, GError **error)
{
  const KqIoOps *io = kq_io_get();
  gint64 end = j->size + (gint64)len;
  if (end <= j->reserved)
    return TRUE;
  gint64 want = end + (gint64)io->allocate_ahead;
  if (io->allocate(j->fd, (off_t)j->reserved, (off_t)(want - j->reserved)) != 0) {
    int err = errno;
    /* a failed reservation may still have grown the file: count it, so a close cuts it */
    struct stat st;
    if (fstat(j->fd, &st) == 0 && (gint64)st.st_size > j->reserved)
      j->reserved = (gint64)st.st_size;
    set_io_error(error, "cannot reserve journal space in", j->live_path, err);
    return FALSE;
  }
  j->reserved = want;
  return TRUE;
}

/* Make [j->size, j->size + len) reserved and mapped. */
static gboolean make_room(KqJournal *j, gsize len, GError **error)
{
  gint64 end = j->size + (gint64)len;
  if (!reserve(j, len, error))
    return FALSE;
  if (j->map != NULL && j->size >= j->map_offset && end <= j->map_offset + (gint64)j->map_len)
    return TRUE;
  unmap(j);
  gint64 page = sysconf(_SC_PAGESIZE);
  gint64 offset = j->size / page * page;
  gsize map_len = (gsize)MAX((gint64)MAP_WINDOW, (end - offset + page - 1) / page * page);
  void *map = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, j->fd, (off_t)offset);
  if (map == MAP_FAILED) {
    set_io_error(error, "cannot map journal", j->live_path, errno);
    return FALSE;
  }
  j->map = map;
  j->map_offset = offset;
  j->map_len = map_len;
  return TRUE;
}

/* pwritev all of iov[0..n) at offset, or fail with errno set (the vector is consumed). */
static gboolean pwrite_all(int fd, struct iovec *iov, int n, off_t offset)
{
  const KqIoOps *io = kq_io_get();
  while (n > 0) {
    ssize_t done = io->pwritev(fd, iov, n, offset);
    if (done < 0 && errno == EINTR)
      continue;
    if (done <= 0) {
      if (done == 0)
        errno = ENOSPC;
      return FALSE;
    }
    offset += done;
    while (n > 0 && (gsize)done >= iov->iov_len) {
      done -= (ssize_t)iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (guint8 *)iov->iov_base + done;
      iov->iov_len -= (gsize)done;
    }
  }
  return TRUE;
}

/* A large record by system call: everything but the opcode first, over a placeholder no reader
 * accepts, then the opcode, as through the mapping. */
static gboolean write_through(KqJournal *j, const guint8 *head, gsize head_len,
                              const guint8 *data, gsize data_len, GError **error)
{
  static const guint8 unwritten = KQ_JOURNAL_UNWRITTEN_OP;
  struct iovec body[] = {
    { (void *)&unwritten, 1 },
    { (void *)(head + 1), head_len - 1 },
    { (void *)data, data_len },
  };
  struct iovec op[] = { { (void *)head, 1 } };
  if (!reserve(j, head_len + data_len, error))
    return FALSE;
  if (!pwrite_all(j->fd, body, G_N_ELEMENTS(body), (off_t)j->size) ||
      !pwrite_all(j->fd, op, 1, (off_t)j->size)) {
    set_io_error(error, "cannot write journal", j->live_path, errno);
    /* Part of the record may be in the file: cut it off, or a shorter record written over its
     * start would leave the rest of it where replay reads the next record. */
    j->torn = !trim_reserved(j, NULL);
    return FALSE;
  }
  return TRUE;
}

/* Append one record: head[0..head_len) (its first byte the opcode), then data[0..data_len).
 * The opcode byte is stored last, over a placeholder no reader accepts, so at every instant the
 * file replays to the last whole record. */
static gboolean append(KqJournal *j, const guint8 *head, gsize head_len, const guint8 *data,
                       gsize data_len, GError **error)
{
  gsize len = head_len + data_len;
  if (j->fd < 0 && !kq_journal_open(j, error))
    return FALSE;
  if (G_UNLIKELY(j->torn)) {
    if (!trim_reserved(j, NULL)) {
      set_io_error(error, "cannot cut a failed write off journal", j->live_path, errno);
      return FALSE;
    }
    j->torn = FALSE;
  }
  if (len >= WRITE_THROUGH_MIN) {
    if (!write_through(j, head, head_len, data, data_len, error))
      return FALSE;
  } else {
    if (!make_room(j, len, error))
      return FALSE;
    guint8 *dest = j->map + (j->size - j->map_offset);
    dest[0] = KQ_JOURNAL_UNWRITTEN_OP;
    atomic_signal_fence(memory_order_seq_cst); /* the compiler keeps these stores in order */
    memcpy(dest + 1, head + 1, head_len - 1);
    if (data_len > 0)
      memcpy(dest + head_len, data, data_len);
    atomic_signal_fence(memory_order_seq_cst);
    dest[0] = head[0];
  }
  j->size += (gint64)len;
  j->written += len;
  return TRUE;
}

gboolean kq_journal_write_addx(KqJournal *j, gint64 add_time, gint64 expiry,
                               const guint8 *data, gsize len, GError **error)
{
  guint8 head[KQ_JOURNAL_ADDX_HEAD];
  kq_journal_encode_addx_head(head, add_time, expiry, len);
  return append(j, head, sizeof head, data, len, error);
}

gboolean kq_journal_write_remove(KqJournal *j, GError **error)
{
  static const guint8 rec = KQ_OP_REMOVE;
  return append(j, &rec, 1, NULL, 0, error);
}

gboolean kq_journal_write_xid(KqJournal *j, KqJournalOp op, guint32 xid, GError **error)
{
  g_byte_array_set_size(j->scratch, 0);
  kq_journal_encode_xid_op(j->scratch, op, xid);
  return append(j, j->scratch->data, j->scratch->len, NULL, 0, error);
}

/* A timestamp later than every rotated file's, so replay order is file-name order. */
static gint64 next_rotation_ts(KqJournal *j)
{
  gint64 ts = MAX(kq_clock_now_ms(), j->last_rotation_ts + 1);
  j->last_rotation_ts = ts;
  return ts;
}

static void sync_dir(const gchar *dir)
{
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    kq_io_get()->fsync(fd);
    close(fd);
  }
}

gboolean kq_journal_rotate(KqJournal *j, gchar **rotated_path, GError **error)
{
  const KqIoOps *io = kq_io_get();
  if (!trim_reserved(j, error))
    return FALSE;
  if (j->fd >= 0 && io->fsync(j->fd) != 0) {
    set_io_error(error, "cannot sync journal", j->live_path, errno);
    return FALSE;
  }
  g_autofree gchar *path =
    g_strdup_printf("%s.%" G_GINT64_FORMAT, j->live_path, next_rotation_ts(j));
  if (io->rename(j->live_path, path) != 0 && errno != ENOENT) {
    set_io_error(error, "cannot rotate journal", j->live_path, errno);
    return FALSE;
  }
  close_live(j);
  j->archived_size += j->size;
  j->size = 0;
  if (!kq_journal_open(j, error))
    return FALSE;
  sync_dir(j->dir);
  if (rotated_path != NULL)
    *rotated_path = g_steal_pointer(&path);
  return TRUE;
}

typedef struct {
  int fd;
  int (*close_deleted)(int fd);
} DeletedFile;

/* The closing thread's queue; a DeletedFile with fd -1 tells it to stop. */
static gpointer closer_main(gpointer queue)
{
  for (;;) {
    DeletedFile *d = g_async_queue_pop(queue);
    gboolean stop = d->fd < 0;
    if (!stop)
      d->close_deleted(d->fd);
    g_free(d);
    if (stop)
      return NULL;
  }
}

static GMutex closer_lock;
static GAsyncQueue *closer_queue;
static GThread *closer_thread;
static pid_t closer_pid;

/* The last close of an unlinked file frees its blocks, and on a file system mounted with
 * `discard` waits for the device to discard them: hundreds of ms while the disk is busy
 * writing. Seen on the thread of a request that emptied a queue of large items, it held up
 * every connection of that thread and the queue's lock. A thread of its own takes it, started
 * by the first such close and stopped by kq_journal_finish_closes. A child forked meanwhile
 * (the crash-point tests' way) has no such thread and closes in place. */
static void close_deleted_in_background(int fd)
{
  DeletedFile *d = g_new(DeletedFile, 1);
  gboolean queued = FALSE;

  d->fd = fd;
  d->close_deleted = kq_io_get()->close_deleted;
  g_mutex_lock(&closer_lock);
  if (closer_queue == NULL) {
    GAsyncQueue *queue = g_async_queue_new();
    closer_thread = g_thread_try_new("kq-close", closer_main, queue, NULL);
    if (closer_thread != NULL) {
      closer_queue = queue;
      closer_pid = getpid();
    } else {
      g_async_queue_unref(queue);
    }
  }
  if (closer_queue != NULL && closer_pid == getpid()) {
    g_async_queue_push(closer_queue, d);
    queued = TRUE;
  }
  g_mutex_unlock(&closer_lock);
  if (!queued) {
    d->close_deleted(d->fd);
    g_free(d);
  }
}

void kq_journal_finish_closes(void)
{
  g_mutex_lock(&closer_lock);
  if (closer_queue != NULL && closer_pid == getpid()) {
    DeletedFile *stop = g_new0(DeletedFile, 1);
    stop->fd = -1;
    g_async_queue_push(closer_queue, stop);
    g_thread_join(closer_thread);
    g_async_queue_unref(closer_queue);
    closer_queue = NULL;
    closer_thread = NULL;
  }
  g_mutex_unlock(&closer_lock);
}

/* unlink(2) of a journal file (through the seam) whose blocks, when it could be opened first,
 * are freed by the background close above instead of by the unlink itself. */
static int unlink_in_background(const gchar *path)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  int rc = kq_io_get()->unlink(path);
  int saved = errno;

  if (fd >= 0)
    close_deleted_in_background(fd);
  errno = saved;
  return rc;
}

gboolean kq_journal_restart_empty(KqJournal *j, GError **error)
{
  if (kq_io_get()->unlink(j->live_path) != 0 && errno != ENOENT) {
    set_io_error(error, "cannot delete journal", j->live_path, errno);
    return FALSE;
  }
  unmap(j); /* the descriptor holds the deleted file alone now */
  if (j->fd >= 0)
    close_deleted_in_background(j->fd);
  j->fd = -1;
  j->size = j->reserved = 0;
  j->torn = FALSE;
  return kq_journal_open(j, error);
}

static gboolean sink_flush(KqJournalSink *s, GError **error)
{
  if (s->buf->len == 0)
    return TRUE;
  if (!write_all(s->fd, s->buf->data, s->buf->len)) {
    set_io_error(error, "cannot write journal", s->path, errno);
    return FALSE;
  }
  g_byte_array_set_size(s->buf, 0);
  return TRUE;
}

gboolean kq_journal_sink_addx(KqJournalSink *s, gint64 add_time, gint64 expiry,
                              const guint8 *data, gsize len, GError **error)
{
  kq_journal_encode_addx(s->buf, add_time, expiry, data, len);
  s->offset += (gint64)KQ_JOURNAL_ADDX_SIZE(len);
  return s->buf->len < SINK_BUFFER || sink_flush(s, error);
}

gboolean kq_journal_sink_xid(KqJournalSink *s, KqJournalOp op, guint32 xid, GError **error)
{
  kq_journal_encode_xid_op(s->buf, op, xid);
  s->offset += 5;
  return s->buf->len < SINK_BUFFER || sink_flush(s, error);
}

gint64 kq_journal_sink_offset(KqJournalSink *s)
{
  return s->offset;
}

/* Replace every older file of the journal by `pack`: delete the rotated files and packs it
 * holds the state of, then rename it to `rotated` (or delete it when it is empty). FALSE, with a
 * warning, when a step failed: the pack is then left in place, which replays the same. */
static gboolean settle_pack(KqJournal *j, const gchar *pack, const gchar *rotated, gboolean empty)
{
  const KqIoOps *io = kq_io_get();
  g_autofree gchar *pack_name = g_path_get_basename(pack);
  g_autoptr(GDir) d = g_dir_open(j->dir, 0, NULL);
  const gchar *name;
  while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
    KqJournalFileKind kind = kq_journal_classify(j->queue, name, NULL);
    if ((kind != KQ_JOURNAL_FILE_ROTATED && kind != KQ_JOURNAL_FILE_PACK) ||
        strcmp(name, pack_name) == 0)
      continue;
    /* every rotated file and every other pack is older than this pack */
    g_autofree gchar *path = g_build_filename(j->dir, name, NULL);
    if (unlink_in_background(path) != 0 && errno != ENOENT) {
      g_warning("journal %s: cannot delete %s after a rewrite (%s); the rewrite is kept in %s",
                j->live_path, path, g_strerror(errno), pack);
      return FALSE;
    }
  }
  int rc = empty ? unlink_in_background(pack) : io->rename(pack, rotated);
  if (rc != 0) {
    g_warning("journal %s: cannot %s %s (%s); it stays as it is", j->live_path,
              empty ? "delete" : "rename", pack, g_strerror(errno));
    return FALSE;
  }
  return TRUE;
}

gboolean kq_journal_rewrite(KqJournal *j, KqJournalDumpFunc dump, gpointer user_data,
                            gchar **state_path, GError **error)
{
  const KqIoOps *io = kq_io_get();
  g_autofree gchar *rotated = NULL;
  if (!kq_journal_rotate(j, &rotated, error))
    return FALSE;
  const gchar *ts_text = rotated + strlen(j->live_path) + 1;
  g_autofree gchar *temp = g_strdup_printf("%s~~%s", j->live_path, ts_text);
  g_autofree gchar *pack = g_strdup_printf("%s.pack", rotated);

  int fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    set_io_error(error, "cannot create", temp, errno);
    return FALSE;
  }
  KqJournalSink sink = { .fd = fd, .path = temp, .buf = g_byte_array_sized_new(SINK_BUFFER) };
  gboolean ok = dump(&sink, rotated, user_data, error) && sink_flush(&sink, error);
  if (ok && io->fsync(fd) != 0) {
    set_io_error(error, "cannot sync", temp, errno);
    ok = FALSE;
  }
  close(fd);
  g_byte_array_unref(sink.buf);
  if (!ok) {
    io->unlink(temp);  /* the rotated file still holds everything */
    return FALSE;
  }
  /* The commit point: once the pack has its name, it is the journal's state up to the rotated
   * file, whatever happens next (a restart settles a pack as journal-files.c says). */
  if (io->rename(temp, pack) != 0) {
    set_io_error(error, "cannot rename", temp, errno);
    io->unlink(temp);
    return FALSE;
  }
  sync_dir(j->dir);
  j->archived_size = sink.offset;
  if (!settle_pack(j, pack, rotated, sink.offset == 0)) {
    /* the pack stays a pack until every file it replaces is gone; the next rewrite or a
     * restart finishes the job */
    if (state_path != NULL)
      *state_path = sink.offset == 0 ? NULL : g_strdup(pack);
    return TRUE;
  }
  if (state_path != NULL)
    *state_path = sink.offset == 0 ? NULL : g_strdup(rotated);
  sync_dir(j->dir);
  return TRUE;
}

int kq_journal_dup_fd(KqJournal *j)
{
  return j->fd >= 0 ? dup(j->fd) : -1;
}

gboolean kq_journal_fsync(KqJournal *j, GError **error)
{
  if (j->fd >= 0 && kq_io_get()->fsync(j->fd) != 0) {
    set_io_error(error, "cannot sync journal", j->live_path, errno);
    return FALSE;
  }
  return TRUE;
}

void kq_journal_close(KqJournal *j, gboolean erase)
{
  if (j->fd >= 0) {
    if (!erase) {
      trim_reserved(j, NULL);
      kq_io_get()->fsync(j->fd);
    }
    close_live(j);
  }
  if (erase) {
    kq_journal_files_erase(j->dir, j->queue);
    j->size = j->archived_size = 0;
  }
}

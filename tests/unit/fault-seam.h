/* A fault injector over the engine's file-system seam (include/kestrel/io.h), for tests that
 * crash the engine at a chosen I/O call, make calls fail with an errno, or simulate a power
 * loss by keeping, for each file, only what an fsync covered.
 *
 * Calls are counted in the order the engine makes them (all kinds together, 1-based):
 * - FS_CRASH_BEFORE / FS_CRASH_AFTER: at call `target` the process kills itself with SIGKILL
 *   (fs_crash) before or after doing the call: what is on disk is then exactly what a
 *   kill -9 at that instant leaves (journal records are in the page cache as soon as they are
 *   copied into the mapping). Use only in a forked child.
 * - FS_FAIL: calls of the kinds in `fail_kinds` numbered [target, target + fail_count) fail
 *   with `fail_errno` and do nothing.
 * With a shadow folder set, every fsync copies the synced file there and renames and unlinks
 * are mirrored, so fs_power_loss() can later put every file back to its last synced content.
 * Names and directory entries are taken as durable at once (the model's one simplification). */
#pragma once
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kestrel/io.h>

/* A real kill -9: no exit handlers, and no leak report from valgrind for what the process held. */
static inline void G_GNUC_NORETURN fs_crash(void)
{
  kill(getpid(), SIGKILL);
  _exit(99);  /* not reached */
}

typedef enum {
  FS_WRITE = 1 << 0,
  FS_FSYNC = 1 << 1,
  FS_FTRUNCATE = 1 << 2,
  FS_RENAME = 1 << 3,
  FS_UNLINK = 1 << 4,
  FS_ALLOCATE = 1 << 5,
  FS_PWRITEV = 1 << 6,
  FS_ALL_KINDS = (1 << 7) - 1,
} FsKind;

#define FS_KINDS 7 /* bits of FsKind */

typedef enum { FS_COUNT, FS_CRASH_BEFORE, FS_CRASH_AFTER, FS_FAIL } FsMode;

static struct {
  GMutex lock;
  FsMode mode;
  guint64 calls;        /* calls made so far, every kind */
  guint64 kind_calls;   /* calls of the kinds in fail_kinds (FS_FAIL counts these) */
  guint64 target;
  guint64 fail_count;
  guint fail_kinds;
  int fail_errno;
  guint64 failed;       /* calls made to fail */
  guint64 per_kind[FS_KINDS];  /* calls of each kind, in FsKind bit order */
  gchar *shadow;        /* power-loss copies, NULL: off */
} fs;

static inline const gchar *fs_kind_name(FsKind kind)
{
  switch (kind) {
  case FS_WRITE: return "write";
  case FS_FSYNC: return "fsync";
  case FS_FTRUNCATE: return "ftruncate";
  case FS_RENAME: return "rename";
  case FS_UNLINK: return "unlink";
  case FS_ALLOCATE: return "allocate";
  case FS_PWRITEV: return "pwritev";
  default: return "?";
  }
}

/* Before a call: crash, fail (-1, errno set) or go on (the call's number). */
static inline gint64 fs_enter(FsKind kind)
{
  g_mutex_lock(&fs.lock);
  guint64 n = ++fs.calls;
  gboolean fail = FALSE;
  fs.per_kind[g_bit_nth_lsf((gulong)kind, -1)]++;
  if (fs.mode == FS_CRASH_BEFORE && n == fs.target)
    fs_crash();
  if (fs.mode == FS_FAIL && (fs.fail_kinds & kind)) {
    guint64 k = ++fs.kind_calls;
    fail = k >= fs.target && k < fs.target + fs.fail_count;
    if (fail)
      fs.failed++;
  }
  g_mutex_unlock(&fs.lock);
  if (fail) {
    errno = fs.fail_errno;
    return -1;
  }
  return (gint64)n;
}

/* After call number `n` was done. */
static inline void fs_leave(gint64 n)
{
  if (fs.mode == FS_CRASH_AFTER && (guint64)n == fs.target)
    fs_crash();
}

static inline gchar *fs_path_of_fd(int fd)
{
  g_autofree gchar *link = g_strdup_printf("/proc/self/fd/%d", fd);
  return g_file_read_link(link, NULL);
}

static inline gchar *fs_shadow_path(const gchar *path)
{
  g_autofree gchar *base = g_path_get_basename(path);
  return g_build_filename(fs.shadow, base, NULL);
}

static inline void fs_copy_file(const gchar *from, const gchar *to)
{
  gchar *data = NULL;
  gsize len = 0;
  if (g_file_get_contents(from, &data, &len, NULL))
    g_file_set_contents(to, data, (gssize)len, NULL);
  g_free(data);
}

static ssize_t fs_write(int fd, const void *buf, size_t len)
{
  gint64 call = fs_enter(FS_WRITE);
  if (call < 0)
    return -1;
  ssize_t n = write(fd, buf, len);
  fs_leave(call);
  return n;
}

static ssize_t fs_pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset)
{
  gint64 call = fs_enter(FS_PWRITEV);
  if (call < 0)
    return -1;
  ssize_t n = pwritev(fd, iov, iovcnt, offset);
  fs_leave(call);
  return n;
}

static int fs_fsync(int fd)
{
  gint64 call = fs_enter(FS_FSYNC);
  if (call < 0)
    return -1;
  int rc = fdatasync(fd);
  if (rc == 0 && fs.shadow != NULL) {
    struct stat st;
    g_autofree gchar *path = fs_path_of_fd(fd);
    if (path != NULL && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
      g_autofree gchar *copy = fs_shadow_path(path);
      g_mutex_lock(&fs.lock);
      fs_copy_file(path, copy);
      g_mutex_unlock(&fs.lock);
    }
  }
  fs_leave(call);
  return rc;
}

static int fs_ftruncate(int fd, off_t len)
{
  gint64 call = fs_enter(FS_FTRUNCATE);
  if (call < 0)
    return -1;
  int rc = ftruncate(fd, len);
  fs_leave(call);
  return rc;
}

static int fs_rename(const char *from, const char *to)
{
  gint64 call = fs_enter(FS_RENAME);
  if (call < 0)
    return -1;
  int rc = rename(from, to);
  if (rc == 0 && fs.shadow != NULL) {
    g_autofree gchar *sfrom = fs_shadow_path(from), *sto = fs_shadow_path(to);
    g_mutex_lock(&fs.lock);
    if (rename(sfrom, sto) != 0)
      g_unlink(sto);  /* the source was never synced: the target holds nothing durable */
    g_mutex_unlock(&fs.lock);
  }
  fs_leave(call);
  return rc;
}

static int fs_unlink(const char *path)
{
  gint64 call = fs_enter(FS_UNLINK);
  if (call < 0)
    return -1;
  int rc = unlink(path);
  if (rc == 0 && fs.shadow != NULL) {
    g_autofree gchar *copy = fs_shadow_path(path);
    g_unlink(copy);
  }
  fs_leave(call);
  return rc;
}

static int fs_allocate(int fd, off_t offset, off_t len)
{
  gint64 call = fs_enter(FS_ALLOCATE);
  if (call < 0)
    return -1;
  int err = posix_fallocate(fd, offset, len);
  fs_leave(call);
  if (err != 0) {
    errno = err;
    return -1;
  }
  return 0;
}

/* Space the journal reserves ahead under the injector. 0 makes every journal record reserve its
 * own, so every record is an I/O call: a crash point, and a place where ENOSPC shows. */
static gsize fs_allocate_ahead;

/* Install the injector. */
static inline void fs_install(FsMode mode, guint64 target, const gchar *shadow)
{
  fs.mode = mode;
  fs.calls = fs.kind_calls = fs.failed = 0;
  memset(fs.per_kind, 0, sizeof(fs.per_kind));
  fs.target = target;
  g_free(fs.shadow);
  fs.shadow = g_strdup(shadow);
  static KqIoOps ops = {
    .write = fs_write,
    .pwritev = fs_pwritev,
    .fsync = fs_fsync,
    .ftruncate = fs_ftruncate,
    .rename = fs_rename,
    .unlink = fs_unlink,
    .allocate = fs_allocate,
  };
  ops.allocate_ahead = fs_allocate_ahead;
  kq_io_set(&ops);
}

static inline void fs_fail_kinds(guint kinds, int err, guint64 first, guint64 count)
{
  fs_install(FS_FAIL, first, NULL);
  fs.fail_kinds = kinds;
  fs.fail_errno = err;
  fs.fail_count = count;
}

/* Whether an FS_FAIL window has passed: every call it was to fail has failed. */
static inline gboolean fs_fault_over(void)
{
  g_mutex_lock(&fs.lock);
  gboolean over = fs.mode == FS_FAIL && fs.kind_calls >= fs.target + fs.fail_count - 1 &&
                  fs.failed == fs.fail_count;
  g_mutex_unlock(&fs.lock);
  return over;
}

/* Stop failing; keep counting. */
static inline void fs_heal(void)
{
  g_mutex_lock(&fs.lock);
  fs.mode = FS_COUNT;
  g_mutex_unlock(&fs.lock);
}

static inline void fs_uninstall(void)
{
  kq_io_set(NULL);
  g_clear_pointer(&fs.shadow, g_free);
  fs.mode = FS_COUNT;
}

/* Put every file of `dir` back to what its last fsync covered (empty if it never had one). */
static inline void fs_power_loss(const gchar *dir, const gchar *shadow)
{
  GDir *d = g_dir_open(dir, 0, NULL);
  g_assert_nonnull(d);
  const gchar *name;
  while ((name = g_dir_read_name(d)) != NULL) {
    if (strcmp(name, ".kestrel.lock") == 0)
      continue;
    gchar *path = g_build_filename(dir, name, NULL);
    gchar *copy = g_build_filename(shadow, name, NULL);
    if (g_file_test(copy, G_FILE_TEST_EXISTS))
      fs_copy_file(copy, path);
    else
      g_assert_cmpint(truncate(path, 0), ==, 0);
    g_free(path);
    g_free(copy);
  }
  g_dir_close(d);
}

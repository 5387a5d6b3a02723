/* The file-system seam: POSIX by default, replaceable by tests to inject failures. */
#include <kestrel/io.h>
#include <stdio.h>
#include <unistd.h>

static ssize_t posix_write(int fd, const void *buf, size_t len) { return write(fd, buf, len); }
static int posix_fsync(int fd) { return fdatasync(fd); }
static int posix_ftruncate(int fd, off_t len) { return ftruncate(fd, len); }
static int posix_rename(const char *from, const char *to) { return rename(from, to); }
static int posix_unlink(const char *path) { return unlink(path); }

static const KqIoOps posix_ops = {
  .write = posix_write,
  .fsync = posix_fsync,
  .ftruncate = posix_ftruncate,
  .rename = posix_rename,
  .unlink = posix_unlink,
};

static const KqIoOps *current_ops = &posix_ops;

const KqIoOps *kq_io_get(void)
{
  return current_ops;
}

void kq_io_set(const KqIoOps *ops)
{
  current_ops = ops != NULL ? ops : &posix_ops;
}

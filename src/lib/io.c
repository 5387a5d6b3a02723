/* The file-system seam: POSIX by default, replaceable by tests to inject failures. */
#include <kestrel/io.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#define DEFAULT_ALLOCATE_AHEAD (1024 * 1024)

static ssize_t posix_write(int fd, const void *buf, size_t len) { return write(fd, buf, len); }
static ssize_t posix_pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset)
{
  return pwritev(fd, iov, iovcnt, offset);
}
static int posix_fsync(int fd) { return fdatasync(fd); }
static int posix_ftruncate(int fd, off_t len) { return ftruncate(fd, len); }
static int posix_rename(const char *from, const char *to) { return rename(from, to); }
static int posix_unlink(const char *path) { return unlink(path); }
static int posix_close_deleted(int fd) { return close(fd); }

static int posix_allocate(int fd, off_t offset, off_t len)
{
  int err = posix_fallocate(fd, offset, len);
  if (err != 0) {
    errno = err;
    return -1;
  }
  return 0;
}

static const KqIoOps posix_ops = {
  .write = posix_write,
  .pwritev = posix_pwritev,
  .fsync = posix_fsync,
  .ftruncate = posix_ftruncate,
  .rename = posix_rename,
  .unlink = posix_unlink,
  .close_deleted = posix_close_deleted,
  .allocate = posix_allocate,
  .allocate_ahead = DEFAULT_ALLOCATE_AHEAD,
};

static KqIoOps replaced_ops;
static const KqIoOps *current_ops = &posix_ops;

const KqIoOps *kq_io_get(void)
{
  return current_ops;
}

void kq_io_set(const KqIoOps *ops)
{
  if (ops == NULL) {
    current_ops = &posix_ops;
    return;
  }
  replaced_ops = *ops;
#define DEFAULT_OP(name) \
  if (replaced_ops.name == NULL) \
    replaced_ops.name = posix_ops.name
  DEFAULT_OP(write);
  DEFAULT_OP(pwritev);
  DEFAULT_OP(fsync);
  DEFAULT_OP(ftruncate);
  DEFAULT_OP(rename);
  DEFAULT_OP(unlink);
  DEFAULT_OP(close_deleted);
  DEFAULT_OP(allocate);
#undef DEFAULT_OP
  current_ops = &replaced_ops;
}

/* The file-system seam of the engine: every journal write, space reservation, fsync, rename and
 * unlink goes through this table so tests can inject ENOSPC, EIO and short writes. */
#pragma once
#include <glib.h>
#include <sys/types.h>
#include <sys/uio.h>

G_BEGIN_DECLS

typedef struct {
  ssize_t (*write)(int fd, const void *buf, size_t len);
  /* pwritev(2): how the live journal writes records too large to copy through its mapping. */
  ssize_t (*pwritev)(int fd, const struct iovec *iov, int iovcnt, off_t offset);
  int (*fsync)(int fd);
  int (*ftruncate)(int fd, off_t len);
  int (*rename)(const char *from, const char *to);
  int (*unlink)(const char *path);
  /* close(2) of the last descriptor of a journal file already unlinked, which frees the file's
   * blocks: on a file system mounted with `discard`, a wait for the device. The engine calls
   * it on a thread of its own, never on the thread of the request that emptied the queue. */
  int (*close_deleted)(int fd);
  /* Reserve [offset, offset + len) of a file (posix_fallocate); 0, or -1 with errno set. The
   * live journal is written (through a shared mapping, or by pwritev) only into space
   * reserved this way, so running out of disk shows up here, before a record is written, and
   * never as a fault. */
  int (*allocate)(int fd, off_t offset, off_t len);
  /* Bytes the journal reserves beyond the record that needs more room. 0 reserves exactly
   * each record, so every append calls allocate (what failure-injection tests want). */
  size_t allocate_ahead;
} KqIoOps;

/* The ops in force (POSIX by default). */
const KqIoOps *kq_io_get(void);
/* Replace them (NULL restores POSIX; NULL members take the POSIX op). Tests only; call while no
 * journal is being written. */
void kq_io_set(const KqIoOps *ops);

G_END_DECLS

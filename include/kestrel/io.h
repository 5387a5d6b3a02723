/* The file-system seam of the engine: every journal write, fsync, rename and unlink goes
 * through this table so tests can inject ENOSPC, EIO and short writes. */
#pragma once
#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

typedef struct {
  ssize_t (*write)(int fd, const void *buf, size_t len);
  int (*fsync)(int fd);
  int (*ftruncate)(int fd, off_t len);
  int (*rename)(const char *from, const char *to);
  int (*unlink)(const char *path);
} KqIoOps;

/* The ops in force (POSIX by default). */
const KqIoOps *kq_io_get(void);
/* Replace them (NULL restores POSIX). Tests only; call while no journal is being written. */
void kq_io_set(const KqIoOps *ops);

G_END_DECLS

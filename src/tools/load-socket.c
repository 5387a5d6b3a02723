/* Non-blocking socket I/O of kestrel-load (see load-socket.h). */
#include "config.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "load-socket.h"

#define WRITE_IOVECS 64 /* buffer chains handed to one writev */

ssize_t (*load_socket_readv)(int fd, const struct iovec *iov, int n) = readv;
ssize_t (*load_socket_writev)(int fd, const struct iovec *iov, int n) = writev;

int load_socket_dial(const struct sockaddr_in *addr, int *err)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = errno;
    return -1;
  }
  /* EINTR: the connect goes on in the background, as with EINPROGRESS */
  if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) < 0 && errno != EINPROGRESS &&
      errno != EINTR) {
    *err = errno;
    close(fd);
    return -1;
  }
  *err = 0;
  return fd;
}

int load_socket_connected(int fd)
{
  int err = 0, one = 1;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
    return errno;
  if (err == 0)
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return err;
}

/* libevent's vectors as iovecs for readv/writev; returns their total length. */
static gsize to_iovec(const struct evbuffer_iovec *vec, struct iovec *iov, int n)
{
  gsize total = 0;
  for (int i = 0; i < n; i++) {
    iov[i].iov_base = vec[i].iov_base;
    iov[i].iov_len = vec[i].iov_len;
    total += vec[i].iov_len;
  }
  return total;
}

LoadSocketStatus load_socket_read(int fd, struct evbuffer *in, int *err)
{
  guint full = 0;
  while (full < LOAD_SOCKET_READS) {
    struct evbuffer_iovec space[2];
    struct iovec iov[2];
    int n = evbuffer_reserve_space(in, LOAD_SOCKET_READ_CHUNK, space, 2);
    if (n < 0) {
      *err = ENOMEM;
      return LOAD_SOCKET_ERROR;
    }
    gsize room = to_iovec(space, iov, n);
    ssize_t got = load_socket_readv(fd, iov, n);
    if (got < 0) {
      evbuffer_commit_space(in, space, 0);
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return LOAD_SOCKET_DONE; /* after a read that filled its space, or a spurious wake-up */
      *err = errno;
      return LOAD_SOCKET_ERROR;
    }
    if (got == 0) {
      evbuffer_commit_space(in, space, 0);
      return LOAD_SOCKET_EOF;
    }
    /* the committed vectors must say how much of each was filled */
    gsize left = (gsize)got;
    int used = 0;
    for (; used < n && left > 0; used++) {
      space[used].iov_len = MIN(space[used].iov_len, left);
      left -= space[used].iov_len;
    }
    evbuffer_commit_space(in, space, used);
    if ((gsize)got < room)
      return LOAD_SOCKET_DONE; /* a short read: the socket is drained, no read just for EAGAIN */
    full++;
  }
  return LOAD_SOCKET_DONE; /* more may be waiting: the event fires again (level-triggered) */
}

LoadSocketStatus load_socket_write(int fd, struct evbuffer *out, int *err)
{
  while (evbuffer_get_length(out) > 0) {
    struct evbuffer_iovec chains[WRITE_IOVECS];
    struct iovec iov[WRITE_IOVECS];
    int n = MIN(evbuffer_peek(out, -1, NULL, chains, WRITE_IOVECS), WRITE_IOVECS);
    gsize size = to_iovec(chains, iov, n);
    ssize_t sent = load_socket_writev(fd, iov, n);
    if (sent < 0 && errno == EINTR)
      continue;
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return LOAD_SOCKET_BLOCKED;
    if (sent < 0) {
      *err = errno;
      return LOAD_SOCKET_ERROR;
    }
    evbuffer_drain(out, (size_t)sent);
    if ((gsize)sent < size)
      return LOAD_SOCKET_BLOCKED; /* the send buffer is full: asking again would only fail */
  }
  return LOAD_SOCKET_DONE;
}

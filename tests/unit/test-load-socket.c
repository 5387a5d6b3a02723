/* kestrel-load's socket I/O (src/tools/load-socket.c) on socket pairs: how many read calls a
 * read takes (a short read ends it, a full one asks again), EOF and errors, writes that stop at
 * a full socket, and dials that succeed or are refused. */
#include "config.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "load-socket.h"

#define CHUNK LOAD_SOCKET_READ_CHUNK

static guint readv_calls, full_readv_calls, writev_calls;
static int fail_readv_errno, fail_writev_errno; /* the next call fails with this, once */

static ssize_t counting_readv(int fd, const struct iovec *iov, int n)
{
  readv_calls++;
  if (fail_readv_errno) {
    errno = fail_readv_errno;
    fail_readv_errno = 0;
    return -1;
  }
  gsize room = 0;
  for (int i = 0; i < n; i++)
    room += iov[i].iov_len;
  ssize_t got = readv(fd, iov, n);
  if (got >= 0 && (gsize)got == room)
    full_readv_calls++;
  return got;
}

static ssize_t counting_writev(int fd, const struct iovec *iov, int n)
{
  writev_calls++;
  if (fail_writev_errno) {
    errno = fail_writev_errno;
    fail_writev_errno = 0;
    return -1;
  }
  return writev(fd, iov, n);
}

typedef struct {
  int fd[2]; /* [0] is read and written by the code under test, [1] is the peer */
  struct evbuffer *buf;
} Pair;

static void pair_setup(Pair *p, gconstpointer data)
{
  int big = 1 << 20;
  g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fd), ==, 0);
  setsockopt(p->fd[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  p->buf = evbuffer_new();
  readv_calls = full_readv_calls = writev_calls = 0;
  fail_readv_errno = fail_writev_errno = 0;
  load_socket_readv = counting_readv;
  load_socket_writev = counting_writev;
}

static void pair_teardown(Pair *p, gconstpointer data)
{
  close(p->fd[0]);
  if (p->fd[1] >= 0)
    close(p->fd[1]);
  evbuffer_free(p->buf);
}

/* Writes n bytes of a pattern to fd; the socket buffer must take them all. */
static void send_bytes(int fd, gsize n)
{
  g_autofree guint8 *data = g_malloc(n);
  for (gsize i = 0; i < n; i++)
    data[i] = (guint8)i;
  g_assert_cmpint(write(fd, data, n), ==, (gssize)n);
}

static void test_short_read_is_the_last(Pair *p, gconstpointer data)
{
  int err = 0;
  send_bytes(p->fd[1], 100);
  g_assert_cmpint(load_socket_read(p->fd[0], p->buf, &err), ==, LOAD_SOCKET_DONE);
  g_assert_cmpuint(evbuffer_get_length(p->buf), ==, 100);
  g_assert_cmpuint(readv_calls, ==, 1); /* no second read just to see EAGAIN */
}

/* A read that filled the space it offered asks again; the first short one ends the call. (A
 * read offers at least LOAD_SOCKET_READ_CHUNK bytes: the rest of a buffer chain may be more.) */
static void test_full_reads_ask_again(Pair *p, gconstpointer data)
{
  int err = 0;
  send_bytes(p->fd[1], 2 * CHUNK + 10);
  g_assert_cmpint(load_socket_read(p->fd[0], p->buf, &err), ==, LOAD_SOCKET_DONE);
  g_assert_cmpuint(evbuffer_get_length(p->buf), ==, 2 * CHUNK + 10);
  g_assert_cmpuint(full_readv_calls, >=, 1);
  g_assert_cmpuint(readv_calls, ==, full_readv_calls + 1);
}

/* One call takes at most LOAD_SOCKET_READS reads; the rest waits for the next call. */
static void test_reads_take_turns(Pair *p, gconstpointer data)
{
  int err = 0;
  gsize n = 200 * 1024; /* more than LOAD_SOCKET_READS reads take */
  send_bytes(p->fd[1], n);
  g_assert_cmpint(load_socket_read(p->fd[0], p->buf, &err), ==, LOAD_SOCKET_DONE);
  g_assert_cmpuint(readv_calls, ==, LOAD_SOCKET_READS);
  g_assert_cmpuint(full_readv_calls, ==, LOAD_SOCKET_READS);
  g_assert_cmpuint(evbuffer_get_length(p->buf), >=, LOAD_SOCKET_READS * CHUNK);
  g_assert_cmpuint(evbuffer_get_length(p->buf), <, n);
  for (guint i = 0; i < 10 && evbuffer_get_length(p->buf) < n; i++)
    g_assert_cmpint(load_socket_read(p->fd[0], p->buf, &err), ==, LOAD_SOCKET_DONE);
  g_assert_cmpuint(evbuffer_get_length(p->buf), ==, n);
  /* the bytes came in order */
  const guint8 *d = evbuffer_pullup(p->buf, -1);
  for (gsize i = 0; i < n; i++)
    g_assert_cmpuint(d[i], ==, (guint8)i);
}

static void test_eof_after_data(Pair *p, gconstpointer data)
{
  int err = 0;
  send_bytes(p->fd[1], 10);
  close(p->fd[1]);
  p->fd[1] = -1;
  g_assert_cmpint(load_socket_read(p->fd[0], p->buf, &err), ==, LOAD_SOCKET_DONE);
  g_assert_cmpuint(evbuffer_get_length(p->buf), ==, 10);
  g_assert_cmpint(load_socket_read(p->fd[0], p->buf, &err), ==, LOAD_SOCKET_EOF);
  g_assert_cmpuint(evbuffer_get_length(p->buf), ==, 10);
}

static void test_read_errors(Pair *p, gconstpointer data)
{
  int err = 0;
  send_bytes(p->fd[1], 10);
  fail_readv_errno = EINTR; /* retried */
  g_assert_cmpint(load_socket_read(p->fd[0], p->buf, &err), ==, LOAD_SOCKET_DONE);
  g_assert_cmpuint(evbuffer_get_length(p->buf), ==, 10);
  g_assert_cmpuint(readv_calls, ==, 2);
  fail_readv_errno = ECONNRESET;
  g_assert_cmpint(load_socket_read(p->fd[0], p->buf, &err), ==, LOAD_SOCKET_ERROR);
  g_assert_cmpint(err, ==, ECONNRESET);
  g_assert_cmpuint(evbuffer_get_length(p->buf), ==, 10);
}

static void test_write_all(Pair *p, gconstpointer data)
{
  int err = 0;
  evbuffer_add_printf(p->buf, "get spam\r\n");
  evbuffer_add_printf(p->buf, "get eggs\r\n");
  g_assert_cmpint(load_socket_write(p->fd[0], p->buf, &err), ==, LOAD_SOCKET_DONE);
  g_assert_cmpuint(evbuffer_get_length(p->buf), ==, 0);
  g_assert_cmpuint(writev_calls, ==, 1);
  gchar got[32] = "";
  g_assert_cmpint(read(p->fd[1], got, sizeof got), ==, 20);
  g_assert_cmpstr(got, ==, "get spam\r\nget eggs\r\n");
  /* nothing to write: no call */
  g_assert_cmpint(load_socket_write(p->fd[0], p->buf, &err), ==, LOAD_SOCKET_DONE);
  g_assert_cmpuint(writev_calls, ==, 1);
}

/* More than the socket takes: the write stops at the short write, keeps the rest, and goes on
 * once the peer read some. */
static void test_write_blocks(Pair *p, gconstpointer data)
{
  int err = 0, small = 4096;
  setsockopt(p->fd[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  gsize total = 4 << 20;
  g_autofree guint8 *bytes = g_malloc0(total);
  evbuffer_add(p->buf, bytes, total);
  g_assert_cmpint(load_socket_write(p->fd[0], p->buf, &err), ==, LOAD_SOCKET_BLOCKED);
  gsize left = evbuffer_get_length(p->buf);
  g_assert_cmpuint(left, >, 0);
  g_assert_cmpuint(left, <, total);
  guint calls = writev_calls;
  g_assert_cmpint(load_socket_write(p->fd[0], p->buf, &err), ==, LOAD_SOCKET_BLOCKED);
  g_assert_cmpuint(evbuffer_get_length(p->buf), ==, left); /* EAGAIN: nothing went */
  g_assert_cmpuint(writev_calls, ==, calls + 1);

  gsize received = 0;
  gchar sink[65536];
  while (received < total) {
    ssize_t n = read(p->fd[1], sink, sizeof sink);
    if (n < 0) {
      g_assert_cmpint(errno, ==, EAGAIN);
      LoadSocketStatus st = load_socket_write(p->fd[0], p->buf, &err);
      g_assert_cmpint(st, !=, LOAD_SOCKET_ERROR);
      struct pollfd pfd = { .fd = p->fd[1], .events = POLLIN };
      g_assert_cmpint(poll(&pfd, 1, 5000), ==, 1);
      continue;
    }
    received += (gsize)n;
  }
  g_assert_cmpuint(evbuffer_get_length(p->buf), ==, 0);
}

static void test_write_errors(Pair *p, gconstpointer data)
{
  int err = 0;
  evbuffer_add_printf(p->buf, "get spam\r\n");
  fail_writev_errno = EINTR; /* retried */
  g_assert_cmpint(load_socket_write(p->fd[0], p->buf, &err), ==, LOAD_SOCKET_DONE);
  g_assert_cmpuint(writev_calls, ==, 2);
  close(p->fd[1]);
  p->fd[1] = -1;
  evbuffer_add_printf(p->buf, "get spam\r\n");
  g_assert_cmpint(load_socket_write(p->fd[0], p->buf, &err), ==, LOAD_SOCKET_ERROR);
  g_assert_cmpint(err, ==, EPIPE);
  g_assert_cmpuint(evbuffer_get_length(p->buf), ==, 10);
}

static void wait_writable(int fd)
{
  struct pollfd pfd = { .fd = fd, .events = POLLOUT };
  g_assert_cmpint(poll(&pfd, 1, 5000), ==, 1);
}

static void test_dial(void)
{
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t len = sizeof addr;
  int listener = socket(AF_INET, SOCK_STREAM, 0), err = -1;
  g_assert_cmpint(bind(listener, (struct sockaddr *)&addr, sizeof addr), ==, 0);
  g_assert_cmpint(listen(listener, 1), ==, 0);
  g_assert_cmpint(getsockname(listener, (struct sockaddr *)&addr, &len), ==, 0);

  int fd = load_socket_dial(&addr, &err);
  g_assert_cmpint(fd, >=, 0);
  g_assert_cmpint(err, ==, 0);
  wait_writable(fd);
  g_assert_cmpint(load_socket_connected(fd), ==, 0);
  int nodelay = 0;
  len = sizeof nodelay;
  getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len);
  g_assert_cmpint(nodelay, !=, 0);
  close(fd);

  /* nobody listens any more: refused, seen once the connect finished */
  close(listener);
  fd = load_socket_dial(&addr, &err);
  if (fd >= 0) {
    wait_writable(fd);
    err = load_socket_connected(fd);
    close(fd);
  }
  g_assert_cmpint(err, ==, ECONNREFUSED);
}

int main(int argc, char **argv)
{
  signal(SIGPIPE, SIG_IGN);
  g_test_init(&argc, &argv, NULL);
#define PAIR_TEST(path, fn) g_test_add(path, Pair, NULL, pair_setup, fn, pair_teardown)
  PAIR_TEST("/load-socket/read/short-read-is-the-last", test_short_read_is_the_last);
  PAIR_TEST("/load-socket/read/full-reads-ask-again", test_full_reads_ask_again);
  PAIR_TEST("/load-socket/read/take-turns", test_reads_take_turns);
  PAIR_TEST("/load-socket/read/eof-after-data", test_eof_after_data);
  PAIR_TEST("/load-socket/read/errors", test_read_errors);
  PAIR_TEST("/load-socket/write/all", test_write_all);
  PAIR_TEST("/load-socket/write/blocks", test_write_blocks);
  PAIR_TEST("/load-socket/write/errors", test_write_errors);
  g_test_add_func("/load-socket/dial", test_dial);
  return g_test_run();
}

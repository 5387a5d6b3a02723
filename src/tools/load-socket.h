/* Non-blocking socket I/O of kestrel-load connections, straight between a socket and libevent
 * evbuffers, without bufferevents: a bufferevent asks the kernel how much is readable before
 * every read (ioctl FIONREAD) and adds and removes its write event around every request, which
 * made the load generator spend more CPU in the kernel than on the load it generates. Here a
 * read that comes back short ends the read (the socket is drained) and a write that does not
 * block needs no event at all. The engine (load-engine.c) owns the events. */
#ifndef KESTREL_LOAD_SOCKET_H
#define KESTREL_LOAD_SOCKET_H

#include <netinet/in.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <glib.h>

#define LOAD_SOCKET_READ_CHUNK 16384 /* a read offers at least this much room (a chain's rest) */
#define LOAD_SOCKET_READS 4          /* full reads per call before others get their turn */

typedef enum {
  LOAD_SOCKET_DONE,    /* read: drained (or took its share); write: all of it went out */
  LOAD_SOCKET_BLOCKED, /* write: the socket's send buffer is full, wait until it is writable */
  LOAD_SOCKET_EOF,     /* read: the peer closed the connection */
  LOAD_SOCKET_ERROR,   /* *err says why */
} LoadSocketStatus;

/* A non-blocking socket connecting to addr: >= 0 with the connect under way (wait until it is
 * writable, then ask load_socket_connected), or -1 with *err set. */
int load_socket_dial(const struct sockaddr_in *addr, int *err);
/* 0 when the connect under way on fd succeeded (Nagle is then off), else its errno. */
int load_socket_connected(int fd);
/* Appends what fd has to `in`: reads again only while a read fills the room it offered, at most
 * LOAD_SOCKET_READS times. DONE also when nothing was there (a spurious wake-up). */
LoadSocketStatus load_socket_read(int fd, struct evbuffer *in, int *err);
/* Writes `out` to fd and drains what was written; stops at the first short write. */
LoadSocketStatus load_socket_write(int fd, struct evbuffer *out, int *err);

/* The system calls, for tests to count or fail them. */
extern ssize_t (*load_socket_readv)(int fd, const struct iovec *iov, int n);
extern ssize_t (*load_socket_writev)(int fd, const struct iovec *iov, int n);

#endif

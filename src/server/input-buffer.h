/* The bytes a client sent that are not handled yet, kept in one contiguous block so requests
 * (a large set's data included) are parsed in place without gathering pieces first: reads go
 * straight to the end, handled requests are dropped from the front. Holds no memory while
 * empty, so idle connections cost nothing here; the buffers of one loop share a slot that keeps
 * one freed block aside for the next buffer that needs one. */
#pragma once
#include <errno.h>
#include <sys/socket.h>

#include <glib.h>
#include <kestrel/item.h>

G_BEGIN_DECLS

typedef struct {
  guint8 *data; /* NULL while empty */
  gsize start;  /* first byte not handled yet */
  gsize end;    /* end of the bytes read */
  gsize cap;     /* 0 with a block: the block is an item's now (kq_input_buffer_take_block),
                 * read only, and forgotten, not freed, once its bytes are handled */
  guint8 **spare; /* the slot for a freed block of the usual size (NULL: none); its owner frees
                   * what is left in it, and only one thread uses a slot */
} KqInputBuffer;

/* Room for at least `min` more bytes after the last one read: its start, *room its size. Grows
 * the block by doubling, so a request that arrives in many reads is copied O(1) times, or to
 * exactly len + min when that is more (a caller that knows a request's size asks for all of it). */
guint8 *kq_input_buffer_reserve(KqInputBuffer *b, gsize min, gsize *room);
/* `n` bytes were written at what kq_input_buffer_reserve returned. */
void kq_input_buffer_commit(KqInputBuffer *b, gsize n);
/* Drop `n` handled bytes from the front; frees the block once nothing is left (or keeps it in
 * the spare slot). */
void kq_input_buffer_consume(KqInputBuffer *b, gsize n);
/* The block as an item of the len bytes at `data`, which lie in the unhandled input, when
 * nothing was read after `request_end` (the end of the request they belong to); NULL
 * otherwise. The bytes are not copied: the block is the item's from now on, and lives only as
 * long as the item. Until the request is consumed, the buffer must not be reserved or committed,
 * nor read once the item may be gone. */
KqItem *kq_input_buffer_take_block(KqInputBuffer *b, const char *data, gsize len,
                                   const char *request_end);
/* Free everything (the spare slot stays). */
void kq_input_buffer_clear(KqInputBuffer *b);

static inline gsize
kq_input_buffer_length(const KqInputBuffer *b)
{
  return b->end - b->start;
}

/* Bytes that fit after the last one read without growing the block. */
static inline gsize
kq_input_buffer_room(const KqInputBuffer *b)
{
  return b->cap - b->end;
}

static inline const char *
kq_input_buffer_data(const KqInputBuffer *b)
{
  return (const char *) b->data + b->start;
}

/* *end of kq_input_buffer_read while the peer is there. */
#define KQ_INPUT_SOCKET_OPEN (-1)
/* Least room offered to a socket read. A read that does not fill its room drained the socket:
 * no read to see EAGAIN. */
#define KQ_INPUT_READ_CHUNK 16384

/* Read what socket `fd` has, at most `limit` bytes. `*whole` is the length of the request at the
 * front when known, else 0 (the reader of the buffer sets it back to 0 when it consumes that
 * request). When a read fills the block, `request_length` (if not NULL) is asked for it; the
 * block then grows once to hold exactly the rest, and reading stops as soon as it holds the
 * whole request. Returns the bytes read; *end is KQ_INPUT_SOCKET_OPEN, 0 at end of stream, or
 * the errno of a failed read. Inline: every read of every connection goes through it. */
static inline gsize
kq_input_buffer_read(KqInputBuffer *b, int fd, gsize limit, gsize *whole,
                     gsize (*request_length)(const char *data, gsize len), int *end)
{
  gsize total = 0;

  *end = KQ_INPUT_SOCKET_OPEN;
  while (total < limit) {
    gsize room, want = KQ_INPUT_READ_CHUNK, len = kq_input_buffer_length(b);

    /* A full block: if it begins a request of known length, the block grows once to hold the
     * rest of it. */
    if (*whole == 0 && len > 0 && kq_input_buffer_room(b) == 0 && request_length != NULL)
      *whole = request_length(kq_input_buffer_data(b), len);
    /* Once the block holds that whole request, it is handled before more is read: reading on
     * would grow the block past it, copying it. (A read that has brought nothing yet goes on:
     * a parked client's later requests are still read, up to the connection's limit.) */
    if (*whole > 0 && *whole <= len && total > 0)
      break;
    if (*whole > len)
      want = *whole - len;
    guint8 *dst = kq_input_buffer_reserve(b, want, &room);
    ssize_t n;

    room = MIN(room, limit - total);
    do
      n = recv(fd, dst, room, 0); /* not read(2): sockets skip the file layer */
    while (n < 0 && errno == EINTR);
    if (n == 0)
      *end = 0;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
      *end = errno;
    kq_input_buffer_commit(b, n > 0 ? (gsize) n : 0);
    if (n <= 0)
      break;
    total += (gsize) n;
    if ((gsize) n < room)
      break; /* drained */
  }
  return total;
}

G_END_DECLS

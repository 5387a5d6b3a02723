/* The server's contiguous input buffer: bytes stay in order and in one block across reads,
 * handled bytes leave from the front, an empty buffer holds no memory, and a large request's
 * block can become an item. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#include "input-buffer.h"

static void
append(KqInputBuffer *b, const char *text)
{
  gsize room;
  guint8 *dst = kq_input_buffer_reserve(b, strlen(text), &room);

  g_assert_cmpuint(room, >=, strlen(text));
  memcpy(dst, text, strlen(text));
  kq_input_buffer_commit(b, strlen(text));
}

static void
test_empty_holds_nothing(void)
{
  KqInputBuffer b = { 0 };
  gsize room;

  kq_input_buffer_reserve(&b, 16384, &room);
  g_assert_cmpuint(room, >=, 16384);
  kq_input_buffer_commit(&b, 0); /* a read that brought nothing */
  g_assert_null(b.data);
  append(&b, "get q\r\n");
  kq_input_buffer_consume(&b, 7);
  g_assert_null(b.data);
  g_assert_cmpuint(kq_input_buffer_length(&b), ==, 0);
}

static void
test_keeps_order_across_growth_and_moves(void)
{
  KqInputBuffer b = { 0 };
  GString *want = g_string_new(NULL);

  /* Many small reads with requests handled from the front in between: the unhandled tail
   * always reads back as one block in order. */
  for (guint i = 0; i < 5000; i++) {
    gchar *piece = g_strdup_printf("%u,", i);
    append(&b, piece);
    g_string_append(want, piece);
    g_free(piece);
    if (i % 7 == 6) {
      gsize drop = want->len / 3;
      g_assert_cmpmem(kq_input_buffer_data(&b), kq_input_buffer_length(&b), want->str,
                      want->len);
      kq_input_buffer_consume(&b, drop);
      g_string_erase(want, 0, (gssize) drop);
    }
  }
  g_assert_cmpmem(kq_input_buffer_data(&b), kq_input_buffer_length(&b), want->str, want->len);
  kq_input_buffer_clear(&b);
  g_assert_null(b.data);
  g_string_free(want, TRUE);
}

static void
test_large_request_in_one_block(void)
{
  KqInputBuffer b = { 0 };
  gsize total = 3 << 20, done = 0;

  append(&b, "x");
  kq_input_buffer_consume(&b, 1);
  while (done < total) {
    gsize room;
    guint8 *dst = kq_input_buffer_reserve(&b, 16384, &room);
    gsize n = MIN(room, MIN((gsize) 100000, total - done));
    for (gsize i = 0; i < n; i++)
      dst[i] = (guint8) ((done + i) % 251);
    kq_input_buffer_commit(&b, n);
    done += n;
  }
  g_assert_cmpuint(kq_input_buffer_length(&b), ==, total);
  /* doubling: the block is less than twice the data plus the least room asked */
  g_assert_cmpuint(b.cap, <, 2 * (total + 16384));
  const guint8 *p = (const guint8 *) kq_input_buffer_data(&b);
  for (gsize i = 0; i < total; i++)
    g_assert_cmpuint(p[i], ==, i % 251);
  kq_input_buffer_consume(&b, total);
  g_assert_null(b.data);
}

/* Asked for more than doubling gives (a request whose length is known), the block grows once
 * to exactly that, the bytes already read kept in front. */
static void
test_exact_growth_for_a_known_request(void)
{
  KqInputBuffer b = { 0 };
  gsize room;

  append(&b, "set q 0 0 500000\r\n");
  gsize len = kq_input_buffer_length(&b);
  kq_input_buffer_reserve(&b, 500002, &room);
  g_assert_cmpuint(b.cap, ==, len + 500002);
  g_assert_cmpuint(room, ==, 500002);
  g_assert_cmpuint(kq_input_buffer_room(&b), ==, 500002);
  g_assert_cmpmem(kq_input_buffer_data(&b), len, "set q 0 0 500000\r\n", len);
  /* a small ask after it still doubles */
  kq_input_buffer_commit(&b, 500002);
  kq_input_buffer_reserve(&b, 10, &room);
  g_assert_cmpuint(b.cap, ==, 2 * (len + 500002));
  kq_input_buffer_clear(&b);
}

/* A connection whose input is all handled holds nothing, and the next one to read on the same
 * loop (sharing its spare slot) gets the freed block back: small requests cost no malloc/free
 * each. */
static void
test_freed_block_is_reused(void)
{
  guint8 *spare = NULL;
  KqInputBuffer a = { .spare = &spare }, b = { .spare = &spare };
  gsize room;

  kq_input_buffer_reserve(&a, 16384, &room);
  kq_input_buffer_commit(&a, 10);
  guint8 *block = a.data;
  kq_input_buffer_consume(&a, 10);
  g_assert_null(a.data);
  g_assert_true(kq_input_buffer_reserve(&b, 16384, &room) == block);
  g_assert_cmpuint(room, ==, 16384);
  /* the spare was taken: another connection gets a block of its own */
  guint8 *other = kq_input_buffer_reserve(&a, 16384, &room);
  g_assert_true(other != block);
  kq_input_buffer_clear(&a);
  g_assert_true(spare == other);
  kq_input_buffer_clear(&b); /* the slot is taken: this block is freed */
  g_assert_true(spare == other);
  g_free(spare);
}

/* Without a slot every freed block goes back to malloc, and another slot's buffer never sees it. */
static void
test_slots_are_apart(void)
{
  guint8 *spare = NULL;
  KqInputBuffer a = { 0 }, b = { .spare = &spare };
  gsize room;

  kq_input_buffer_reserve(&a, 16384, &room);
  kq_input_buffer_commit(&a, 10);
  kq_input_buffer_consume(&a, 10);
  g_assert_null(spare);
  kq_input_buffer_reserve(&b, 16384, &room);
  kq_input_buffer_clear(&b);
  g_assert_nonnull(spare);
  kq_input_buffer_reserve(&a, 16384, &room);
  g_assert_nonnull(spare); /* a has no slot: it never takes b's spare */
  kq_input_buffer_clear(&a);
  g_free(spare);
}

/* A request whose data is the last thing read: its block becomes an item of that data, not a
 * copy, and is the item's alone (not the spare slot's) once the request is consumed. */
static void
test_block_taken_as_an_item(void)
{
  guint8 *spare = NULL;
  KqInputBuffer b = { .spare = &spare };
  const char *line = "set q 0 0 5\r\n", *request = "set q 0 0 5\r\nhello\r\n";
  gsize room;

  kq_input_buffer_reserve(&b, 16384, &room); /* a socket read's usual block */
  append(&b, request);
  const char *data = kq_input_buffer_data(&b) + strlen(line);
  const char *end = kq_input_buffer_data(&b) + strlen(request);
  g_assert_cmpuint(b.cap, ==, 16384); /* the usual size, which would go to the slot */
  g_autoptr(KqItem) item = kq_input_buffer_take_block(&b, data, 5, end);
  g_assert_nonnull(item);
  g_assert_true((const char *) item->data == data);
  g_assert_cmpmem(item->data, item->len, "hello", 5);
  /* the rest of the request is still there to read */
  g_assert_cmpmem(kq_input_buffer_data(&b), kq_input_buffer_length(&b), request,
                  strlen(request));
  kq_input_buffer_consume(&b, strlen(request));
  g_assert_null(b.data);
  g_assert_null(spare);
  g_assert_cmpuint(b.cap, ==, 0); /* cleared: nothing taken any more */
  g_assert_cmpmem(item->data, item->len, "hello", 5);
  /* the next request gets a block of its own */
  append(&b, "get q\r\n");
  g_assert_true(b.data != (const guint8 *) item->block);
  kq_input_buffer_clear(&b);
  g_free(spare);
}

/* Bytes read after the request (a pipelined one), or data outside the input: no item. */
static void
test_block_kept_when_more_follows(void)
{
  KqInputBuffer b = { 0 };
  const char *first = "set q 0 0 5\r\nhello\r\n";

  append(&b, first);
  append(&b, "get q\r\n");
  const char *data = kq_input_buffer_data(&b) + 13;
  g_assert_null(kq_input_buffer_take_block(&b, data, 5, kq_input_buffer_data(&b) + 20));
  g_assert_null(kq_input_buffer_take_block(&b, "hello", 5,
                                           kq_input_buffer_data(&b) + kq_input_buffer_length(&b)));
  g_assert_cmpuint(b.cap, !=, 0); /* not taken */
  kq_input_buffer_consume(&b, 20);
  g_assert_cmpmem(kq_input_buffer_data(&b), kq_input_buffer_length(&b), "get q\r\n", 7);
  kq_input_buffer_clear(&b);
}

/* The length of a "set q 0 0 N" request once its line is in, as a front-end would tell it. */
static gsize
set_request_length(const char *data, gsize len)
{
  const char *eol = g_strstr_len(data, (gssize) len, "\r\n");

  if (eol == NULL || strncmp(data, "set q 0 0 ", 10) != 0)
    return 0;
  return (gsize) (eol - data) + 2 + strtoul(data + 10, NULL, 10) + 2;
}

/* A set of `size` data bytes followed by "get q\r\n", written to a new socket pair: fds[0] is
 * the end to read. Returns the set's length. */
static gsize
socket_with_set_then_get(int fds[2], gsize size)
{
  g_autofree gchar *line = g_strdup_printf("set q 0 0 %zu\r\n", size);
  g_autofree gchar *request = g_malloc(strlen(line) + size + 2 + 7);
  gsize set_len = strlen(line) + size + 2;

  memcpy(request, line, strlen(line));
  memset(request + strlen(line), 'x', size);
  memcpy(request + strlen(line) + size, "\r\nget q\r\n", 9);
  g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), ==, 0);
  g_assert_cmpint(write(fds[1], request, set_len + 7), ==, (gssize) (set_len + 7));
  return set_len;
}

/* Reads of 16 KB at most, as a bulk connection's turns: the first full block makes the request's
 * length known, the block grows once to exactly that, and reading stops when it holds the whole
 * request. The pipelined get behind it stays in the socket: reading on would have grown the
 * block past the request (copying all of it) and kept it from becoming the item. */
static void
test_read_stops_at_a_whole_request(void)
{
  guint8 *spare = NULL;
  KqInputBuffer b = { .spare = &spare };
  int fds[2], end;
  gsize whole = 0, set_len = socket_with_set_then_get(fds, 60000), got = 0;

  while (kq_input_buffer_length(&b) < set_len) {
    gsize n = kq_input_buffer_read(&b, fds[0], 16384, &whole, set_request_length, &end);
    g_assert_cmpint(end, ==, KQ_INPUT_SOCKET_OPEN);
    g_assert_cmpuint(n, >, 0);
    g_assert_cmpuint(n, <=, 16384);
    got += n;
  }
  g_assert_cmpuint(whole, ==, set_len);
  g_assert_cmpuint(got, ==, set_len);
  g_assert_cmpuint(kq_input_buffer_length(&b), ==, set_len);
  g_assert_cmpuint(b.cap, ==, set_len); /* grown once, to the request's length */
  g_assert_cmpmem(kq_input_buffer_data(&b) + set_len - 4, 4, "xx\r\n", 4);

  /* handled: the next read brings the get */
  kq_input_buffer_consume(&b, set_len);
  whole = 0;
  g_assert_cmpuint(kq_input_buffer_read(&b, fds[0], 16384, &whole, set_request_length, &end),
                   ==, 7);
  g_assert_cmpmem(kq_input_buffer_data(&b), kq_input_buffer_length(&b), "get q\r\n", 7);
  /* the peer goes: end of stream */
  close(fds[1]);
  g_assert_cmpuint(kq_input_buffer_read(&b, fds[0], 16384, &whole, set_request_length, &end),
                   ==, 0);
  g_assert_cmpint(end, ==, 0);
  close(fds[0]);
  kq_input_buffer_clear(&b);
  g_free(spare);
}

/* A whole request already in the buffer and not handled (its client waits on a blocking get):
 * a read that has brought nothing yet goes on reading what follows. */
static void
test_read_goes_on_behind_an_unhandled_request(void)
{
  KqInputBuffer b = { 0 };
  int fds[2], end;
  gsize whole = 0, set_len = socket_with_set_then_get(fds, 60000);

  while (kq_input_buffer_length(&b) < set_len)
    kq_input_buffer_read(&b, fds[0], 16384, &whole, set_request_length, &end);
  g_assert_cmpuint(kq_input_buffer_read(&b, fds[0], 16384, &whole, set_request_length, &end),
                   ==, 7);
  g_assert_cmpuint(kq_input_buffer_length(&b), ==, set_len + 7);
  g_assert_cmpmem(kq_input_buffer_data(&b) + set_len, 7, "get q\r\n", 7);
  /* nothing more there */
  g_assert_cmpuint(kq_input_buffer_read(&b, fds[0], 16384, &whole, set_request_length, &end),
                   ==, 0);
  g_assert_cmpint(end, ==, KQ_INPUT_SOCKET_OPEN);
  close(fds[0]);
  close(fds[1]);
  kq_input_buffer_clear(&b);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/input-buffer/empty-holds-nothing", test_empty_holds_nothing);
  g_test_add_func("/input-buffer/order", test_keeps_order_across_growth_and_moves);
  g_test_add_func("/input-buffer/large-request", test_large_request_in_one_block);
  g_test_add_func("/input-buffer/exact-growth", test_exact_growth_for_a_known_request);
  g_test_add_func("/input-buffer/freed-block-reused", test_freed_block_is_reused);
  g_test_add_func("/input-buffer/slots-apart", test_slots_are_apart);
  g_test_add_func("/input-buffer/block-taken", test_block_taken_as_an_item);
  g_test_add_func("/input-buffer/block-kept", test_block_kept_when_more_follows);
  g_test_add_func("/input-buffer/read-stops-at-whole-request", test_read_stops_at_a_whole_request);
  g_test_add_func("/input-buffer/read-goes-on-behind-unhandled",
                  test_read_goes_on_behind_an_unhandled_request);
  return g_test_run();
}

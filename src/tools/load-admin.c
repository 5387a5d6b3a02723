/* Blocking admin requests (see load-admin.h). Every read and write times out. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "load-admin.h"

#define IO_TIMEOUT_S 5
#define MAX_REPLY (4 << 20)

static int dial(const struct sockaddr_in *addr, GError **error)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = { IO_TIMEOUT_S, 0 };
  if (fd >= 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) == 0)
      return fd;
  }
  g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "cannot connect to port %u: %s",
              ntohs(addr->sin_port), g_strerror(errno));
  if (fd >= 0)
    close(fd);
  return -1;
}

/* Sends the request in `out` and parses the reply with the wire until it is complete. */
static gboolean exchange(const LoadWire *wire, const struct sockaddr_in *addr, LoadReqKind kind,
                         const gchar *queue, struct evbuffer *out, LoadWireEvent *ev,
                         GError **error)
{
  int fd = dial(addr, error);
  if (fd < 0)
    return FALSE;
  struct evbuffer *in = evbuffer_new();
  LoadWireParser parser = { .queue = queue };
  LoadWireStatus st = LOAD_WIRE_MORE;
  gboolean ok = TRUE;
  while (ok && evbuffer_get_length(out) > 0)
    ok = evbuffer_write(out, fd) > 0;
  while (ok) {
    gsize before = evbuffer_get_length(in);
    st = wire->parse(&parser, in, kind, ev);
    if (st != LOAD_WIRE_MORE)
      break;
    if (evbuffer_get_length(in) != before && evbuffer_get_length(in) > 0)
      continue; /* the parser took a step (a stats line, say): it may take another */
    ok = evbuffer_get_length(in) < MAX_REPLY && evbuffer_read(in, fd, 65536) > 0;
  }
  close(fd);
  evbuffer_free(in);
  if (ok && st == LOAD_WIRE_DONE)
    return TRUE;
  if (st == LOAD_WIRE_ERROR)
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "%s", ev->message);
  else
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "no complete %s reply", wire->name);
  return FALSE;
}

gboolean load_admin_flush(const LoadWire *wire, const struct sockaddr_in *addr, const gchar *queue,
                          GError **error)
{
  struct evbuffer *out = evbuffer_new();
  LoadWireEvent ev = { 0 };
  wire->flush(out, queue);
  gboolean ok = exchange(wire, addr, LOAD_REQ_FLUSH, queue, out, &ev, error);
  evbuffer_free(out);
  return ok;
}

gboolean load_admin_queue_stats(const LoadWire *wire, const struct sockaddr_in *addr,
                                const gchar *queue, gint64 *items, gint64 *bytes, GError **error)
{
  struct evbuffer *out = evbuffer_new();
  LoadWireEvent ev = { .items = -1, .bytes = -1 };
  wire->stats(out, queue);
  gboolean ok = exchange(wire, addr, LOAD_REQ_STATS, queue, out, &ev, error);
  evbuffer_free(out);
  *items = ev.items;
  *bytes = ev.bytes;
  return ok;
}

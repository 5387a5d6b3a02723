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

/* Sends `request` and reads until the reply ends with `terminator` (at a line start). */
static gchar *exchange(const struct sockaddr_in *addr, const gchar *request,
                       const gchar *terminator, GError **error)
{
  int fd = dial(addr, error);
  if (fd < 0)
    return NULL;
  GString *reply = g_string_new(NULL);
  gsize len = strlen(request);
  gboolean ok = write(fd, request, len) == (ssize_t)len;
  gsize tlen = strlen(terminator);
  while (ok && reply->len < MAX_REPLY) {
    gchar buf[8192];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) {
      ok = FALSE;
      break;
    }
    g_string_append_len(reply, buf, n);
    if (reply->len >= tlen && strcmp(reply->str + reply->len - tlen, terminator) == 0 &&
        (reply->len == tlen || reply->str[reply->len - tlen - 1] == '\n'))
      break;
  }
  close(fd);
  if (!ok || reply->len >= MAX_REPLY) {
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "no complete reply to '%.*s'",
                (int)strcspn(request, "\r"), request);
    g_string_free(reply, TRUE);
    return NULL;
  }
  return g_string_free(reply, FALSE);
}

gboolean load_admin_flush(const struct sockaddr_in *addr, const gchar *queue, GError **error)
{
  gchar *req = g_strdup_printf("flush %s\r\n", queue);
  gchar *reply = exchange(addr, req, "END\r\n", error);
  g_free(req);
  g_free(reply);
  return reply != NULL;
}

gboolean load_admin_queue_stats(const struct sockaddr_in *addr, const gchar *queue,
                                gint64 *items, gint64 *bytes, GError **error)
{
  gchar *reply = exchange(addr, "stats\r\n", "END\r\n", error);
  if (!reply)
    return FALSE;
  gchar *k_items = g_strdup_printf("STAT queue_%s_items ", queue);
  gchar *k_bytes = g_strdup_printf("STAT queue_%s_bytes ", queue);
  *items = *bytes = -1;
  gchar **lines = g_strsplit(reply, "\r\n", -1);
  for (guint i = 0; lines[i]; i++) {
    if (g_str_has_prefix(lines[i], k_items))
      g_ascii_string_to_signed(lines[i] + strlen(k_items), 10, 0, G_MAXINT64, items, NULL);
    else if (g_str_has_prefix(lines[i], k_bytes))
      g_ascii_string_to_signed(lines[i] + strlen(k_bytes), 10, 0, G_MAXINT64, bytes, NULL);
  }
  g_strfreev(lines);
  g_free(k_items);
  g_free(k_bytes);
  g_free(reply);
  return TRUE;
}

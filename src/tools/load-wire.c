/* Helpers shared by the wire protocols of kestrel-load (see load-wire.h). */
#include "config.h"

#include <stdarg.h>

#include "load-wire.h"

LoadWireStatus load_wire_error(LoadWireEvent *ev, const gchar *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_vsnprintf(ev->message, sizeof ev->message, fmt, ap);
  va_end(ap);
  return LOAD_WIRE_ERROR;
}

void load_wire_drain(LoadWireParser *p, struct evbuffer *in)
{
  if (p->drain) {
    evbuffer_drain(in, p->drain);
    p->drain = 0;
  }
}

/* Not g_ascii_string_to_signed: with GLib 2.74 it fails now and then when several threads make
 * their first call at once (one sets up GLib's C locale; the others, waiting for it, come back
 * with errno set, which it takes for a conversion error), so a worker would see a valid reply
 * as an unexpected one. */
gboolean load_wire_parse_int(const gchar *s, gint64 min, gint64 max, gint64 *out)
{
  gboolean negative = s[0] == '-';
  const gchar *d = s + (negative ? 1 : 0);
  /* the magnitude's bound; -(min + 1) + 1 is |min| without overflowing at G_MININT64 */
  guint64 limit = negative ? (guint64)-(MIN(min, -1) + 1) + 1 : (guint64)MAX(max, 0);
  guint64 v = 0;
  if (*d == '\0' || (negative && min >= 0))
    return FALSE;
  for (; *d; d++) {
    guint digit = (guint)((guchar)*d - '0');
    if (digit > 9 || digit > limit || v > (limit - digit) / 10)
      return FALSE;
    v = v * 10 + digit;
  }
  gint64 n = !negative ? (gint64)v : v == 0 ? 0 : -(gint64)(v - 1) - 1;
  if (n < min || n > max)
    return FALSE;
  *out = n;
  return TRUE;
}

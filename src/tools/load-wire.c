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

/* The memcache front-end (SPEC 2): Kestrel's memcache commands on a libevent connection. */
#pragma once
#include "connection.h"

G_BEGIN_DECLS

/* Plugged into connections accepted on the memcache port. */
extern const KqFrontEnd kq_memcache_front_end;

/* Largest data block a set may announce; larger is refused before it is read. */
#define KQ_MEMCACHE_MAX_DATA ((gsize) 1 << 30)

G_END_DECLS

/* The text front-end (SPEC 3): Kestrel's line protocol on a libevent connection. */
#pragma once
#include "connection.h"

G_BEGIN_DECLS

/* Plugged into connections accepted on the text port. */
extern const KqFrontEnd kq_text_front_end;

G_END_DECLS

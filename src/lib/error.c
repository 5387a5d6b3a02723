/* The libkestrel error domain. */
#include <kestrel/error.h>

G_DEFINE_QUARK(kq-error-quark, kq_error)

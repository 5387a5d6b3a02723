/* Error domain of libkestrel: every failure that reaches a caller is a GError here. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

#define KQ_ERROR (kq_error_quark())
GQuark kq_error_quark(void);

typedef enum {
  KQ_ERROR_BAD_NAME,      /* queue name invalid (SPEC 1) */
  KQ_ERROR_FULL,          /* maxItems/maxSize reached */
  KQ_ERROR_TOO_LARGE,     /* item over maxItemSize */
  KQ_ERROR_IO,            /* journal write/fsync/rename failed */
  KQ_ERROR_CLOSED,        /* queue or collection is shutting down / deleted */
  KQ_ERROR_LOCKED,        /* queue folder is locked by another process */
  KQ_ERROR_BAD_CONFIG,    /* a setting has a bad value or an unknown name */
  KQ_ERROR_NO_SUCH_XID,   /* confirm/abort of an xid that is not open */
  KQ_ERROR_CORRUPT,       /* journal data that cannot be replayed */
  KQ_ERROR_NOT_JOURNAL,   /* a file named as a queue's journal holds no journal (left alone) */
} KqErrorCode;

G_END_DECLS

/* Runs one request frame: our hardened protocol reads the header, `get` is run by us (it may
 * have to wait), every other known method goes through the generated KqThriftKestrelProcessor,
 * unknown methods (Finagle's `__can__finagle__trace__v3__` probe) get UNKNOWN_METHOD, and a
 * request that cannot be decoded gets a TApplicationException before its connection closes. */
#pragma once
#include <glib-object.h>
#include <thrift/c_glib/thrift_application_exception.h>

#include "thrift-autoptr.h"
#include "thrift-handler.h"

G_BEGIN_DECLS

typedef struct _KqThriftConn KqThriftConn;

typedef enum {
  KQ_THRIFT_REPLY_NOW,       /* *reply holds the reply message (empty for a oneway call) */
  KQ_THRIFT_REPLY_LATER,     /* kq_thrift_conn_deliver() gets the reply later, on the loop */
  KQ_THRIFT_REPLY_AND_CLOSE, /* *reply holds an error reply; close the connection after it */
} KqThriftOutcome;

#define KQ_TYPE_THRIFT_PROCESSOR (kq_thrift_processor_get_type())
G_DECLARE_FINAL_TYPE(KqThriftProcessor, kq_thrift_processor, KQ, THRIFT_PROCESSOR,
                     KqThriftKestrelProcessor)

KqThriftProcessor *kq_thrift_processor_new(KqThriftHandler *handler);
KqThriftHandler *kq_thrift_processor_get_handler(KqThriftProcessor *self);

/* Handle one frame (without its length prefix) from `conn`. Loop thread only. */
KqThriftOutcome kq_thrift_processor_handle(KqThriftProcessor *self, KqThriftConn *conn,
                                           const guint8 *frame, gsize len, GByteArray **reply);

/* A TApplicationException reply message. */
GByteArray *kq_thrift_processor_error_reply(KqThriftProcessor *self, const gchar *method,
                                            gint32 seqid, ThriftApplicationExceptionError type,
                                            const gchar *message);

G_END_DECLS

/* The binary protocol as the Thrift front-end reads it: stock ThriftBinaryProtocol plus the
 * checks a remote client must not be able to get around (c_glib 0.17 lacks them): negative or
 * oversized string/binary/container lengths, unknown element types, nesting deeper than
 * KQ_THRIFT_MAX_DEPTH (stock skip recursion overflows the stack), and old-style unversioned
 * message headers (stock code leaves name/type/seqid unset for those). */
#pragma once
#include <glib-object.h>
#include "thrift-autoptr.h"

G_BEGIN_DECLS

/* Structs and containers nested deeper than this end the request. */
#define KQ_THRIFT_MAX_DEPTH 64
/* Longest method name accepted in a message header. */
#define KQ_THRIFT_MAX_NAME 256

#define KQ_TYPE_THRIFT_PROTOCOL (kq_thrift_protocol_get_type())
G_DECLARE_FINAL_TYPE(KqThriftProtocol, kq_thrift_protocol, KQ, THRIFT_PROTOCOL, ThriftBinaryProtocol)

/* A protocol over `transport` (a new reference is taken). */
KqThriftProtocol *kq_thrift_protocol_new(ThriftTransport *transport);

/* The length on the wire of `str`, a string (or a copy of one) this protocol read in the
 * current message: such a string may hold NUL bytes, where strlen would stop. When a string of
 * the message held a NUL byte and reads as `str` up to it, its full length; else strlen. */
gsize kq_thrift_protocol_string_length(KqThriftProtocol *self, const gchar *str);

G_END_DECLS

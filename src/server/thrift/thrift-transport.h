/* An in-memory Thrift transport over one frame: reads walk a cursor over borrowed bytes and fail
 * when the frame runs out (stock ThriftMemoryBuffer returns 0 there, and read_all then spins
 * forever); writes append to an owned buffer that becomes the reply frame. */
#pragma once
#include <glib-object.h>
#include "thrift-autoptr.h"

G_BEGIN_DECLS

#define KQ_TYPE_THRIFT_FRAME_TRANSPORT (kq_thrift_frame_transport_get_type())
G_DECLARE_FINAL_TYPE(KqThriftFrameTransport, kq_thrift_frame_transport, KQ, THRIFT_FRAME_TRANSPORT,
                     ThriftTransport)

KqThriftFrameTransport *kq_thrift_frame_transport_new(void);

/* Start reading `len` bytes at `data` (borrowed: must outlive the reads). */
void kq_thrift_frame_transport_set_input(KqThriftFrameTransport *self, const guint8 *data,
                                         gsize len);
/* Bytes of the input not read yet. */
gsize kq_thrift_frame_transport_remaining(KqThriftFrameTransport *self);

/* Everything written since the last take as one frame, ready to send: its length in 4 bytes,
 * then the bytes (an empty array when nothing was written). The transport starts a new
 * output. */
GByteArray *kq_thrift_frame_transport_take_output(KqThriftFrameTransport *self);
/* Drop what was written so far (a reply abandoned half way). */
void kq_thrift_frame_transport_reset_output(KqThriftFrameTransport *self);

G_END_DECLS

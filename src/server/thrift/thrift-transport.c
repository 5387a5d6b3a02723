/* The frame transport of the Thrift front-end: see thrift-transport.h. */
#include "config.h"

#include <string.h>

#include <thrift/c_glib/thrift.h>

#include "thrift-transport.h"

struct _KqThriftFrameTransport {
  ThriftTransport parent;
  const guint8 *in;
  gsize in_len;
  gsize in_pos;
  GByteArray *out;
};

G_DEFINE_TYPE(KqThriftFrameTransport, kq_thrift_frame_transport, THRIFT_TYPE_TRANSPORT)

static gboolean
frame_is_open(ThriftTransport *transport)
{
  return TRUE;
}

static gboolean
frame_open(ThriftTransport *transport, GError **error)
{
  return TRUE;
}

static gboolean
frame_close(ThriftTransport *transport, GError **error)
{
  return TRUE;
}

static gboolean
frame_peek(ThriftTransport *transport, GError **error)
{
  KqThriftFrameTransport *self = KQ_THRIFT_FRAME_TRANSPORT(transport);
  return self->in_pos < self->in_len;
}

/* Short reads never happen inside a frame: either the bytes are there or the request is cut. */
static gint32
frame_read_all(ThriftTransport *transport, gpointer buf, guint32 len, GError **error)
{
  KqThriftFrameTransport *self = KQ_THRIFT_FRAME_TRANSPORT(transport);

  if (len > G_MAXINT32 || len > self->in_len - self->in_pos) {
    g_set_error(error, THRIFT_TRANSPORT_ERROR, THRIFT_TRANSPORT_ERROR_RECEIVE,
                "request truncated: %u bytes wanted, %" G_GSIZE_FORMAT " left in the frame", len,
                self->in_len - self->in_pos);
    return -1;
  }
  if (len > 0)
    memcpy(buf, self->in + self->in_pos, len);
  self->in_pos += len;
  return (gint32)len;
}

static gboolean
frame_read_end(ThriftTransport *transport, GError **error)
{
  return TRUE;
}

static gboolean
frame_write(ThriftTransport *transport, const gpointer buf, const guint32 len, GError **error)
{
  KqThriftFrameTransport *self = KQ_THRIFT_FRAME_TRANSPORT(transport);
  g_byte_array_append(self->out, buf, len);
  return TRUE;
}

static gboolean
frame_write_end(ThriftTransport *transport, GError **error)
{
  return TRUE;
}

static gboolean
frame_flush(ThriftTransport *transport, GError **error)
{
  return TRUE;
}

/* Containers announce their size before their elements: refuse sizes the frame cannot hold. */
static gboolean
frame_check_available(ThriftTransport *transport, glong num_bytes, GError **error)
{
  KqThriftFrameTransport *self = KQ_THRIFT_FRAME_TRANSPORT(transport);

  if (num_bytes < 0 || (gsize)num_bytes > self->in_len - self->in_pos) {
    g_set_error(error, THRIFT_TRANSPORT_ERROR, THRIFT_TRANSPORT_ERROR_RECEIVE,
                "request claims %ld bytes, %" G_GSIZE_FORMAT " left in the frame", num_bytes,
                self->in_len - self->in_pos);
    return FALSE;
  }
  return TRUE;
}

/* The frame length is the only message size limit; these bookkeeping hooks have nothing to do. */
static gboolean
frame_message_size_noop(ThriftTransport *transport, glong size, GError **error)
{
  return TRUE;
}

static void
kq_thrift_frame_transport_finalize(GObject *object)
{
  KqThriftFrameTransport *self = KQ_THRIFT_FRAME_TRANSPORT(object);
  g_byte_array_unref(self->out);
  G_OBJECT_CLASS(kq_thrift_frame_transport_parent_class)->finalize(object);
}

static void
kq_thrift_frame_transport_class_init(KqThriftFrameTransportClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  ThriftTransportClass *transport_class = THRIFT_TRANSPORT_CLASS(klass);

  object_class->finalize = kq_thrift_frame_transport_finalize;
  transport_class->is_open = frame_is_open;
  transport_class->open = frame_open;
  transport_class->close = frame_close;
  transport_class->peek = frame_peek;
  transport_class->read = frame_read_all;
  transport_class->read_all = frame_read_all;
  transport_class->read_end = frame_read_end;
  transport_class->write = frame_write;
  transport_class->write_end = frame_write_end;
  transport_class->flush = frame_flush;
  transport_class->checkReadBytesAvailable = frame_check_available;
  transport_class->updateKnownMessageSize = frame_message_size_noop;
  transport_class->resetConsumedMessageSize = frame_message_size_noop;
  transport_class->countConsumedMessageBytes = frame_message_size_noop;
}

/* An output holding only the room for its frame's length. */
static GByteArray *
frame_output_new(void)
{
  return g_byte_array_set_size(g_byte_array_new(), 4);
}

static void
kq_thrift_frame_transport_init(KqThriftFrameTransport *self)
{
  self->out = frame_output_new();
}

KqThriftFrameTransport *
kq_thrift_frame_transport_new(void)
{
  return g_object_new(KQ_TYPE_THRIFT_FRAME_TRANSPORT, NULL);
}

void
kq_thrift_frame_transport_set_input(KqThriftFrameTransport *self, const guint8 *data, gsize len)
{
  self->in = data;
  self->in_len = data != NULL ? len : 0;
  self->in_pos = 0;
}

gsize
kq_thrift_frame_transport_remaining(KqThriftFrameTransport *self)
{
  return self->in_len - self->in_pos;
}

GByteArray *
kq_thrift_frame_transport_take_output(KqThriftFrameTransport *self)
{
  GByteArray *out = self->out;
  guint32 len = out->len - 4;

  self->out = frame_output_new();
  if (len == 0)
    return g_byte_array_set_size(out, 0);
  out->data[0] = (guint8)(len >> 24);
  out->data[1] = (guint8)(len >> 16);
  out->data[2] = (guint8)(len >> 8);
  out->data[3] = (guint8)len;
  return out;
}

void
kq_thrift_frame_transport_reset_output(KqThriftFrameTransport *self)
{
  g_byte_array_set_size(self->out, 4);
}

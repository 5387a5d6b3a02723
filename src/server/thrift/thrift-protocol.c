/* The hardened binary protocol of the Thrift front-end: see thrift-protocol.h. */
#include "config.h"

#include <string.h>

#include <thrift/c_glib/thrift.h>
#include <thrift/c_glib/protocol/thrift_protocol.h>

#include "thrift-protocol.h"

struct _KqThriftProtocol {
  ThriftBinaryProtocol parent;
  guint depth; /* structs and containers currently open while reading */
  /* Strings of the current message that hold a NUL byte (GBytes, as on the wire): what
   * strlen would cut short in the gchar * the generated code hands on. */
  GPtrArray *nul_strings;
};

G_DEFINE_TYPE(KqThriftProtocol, kq_thrift_protocol, THRIFT_TYPE_BINARY_PROTOCOL)

static gboolean
check_available(ThriftProtocol *protocol, gint64 bytes, GError **error)
{
  ThriftTransport *transport = protocol->transport;
  if (bytes > G_MAXLONG) {
    g_set_error(error, THRIFT_PROTOCOL_ERROR, THRIFT_PROTOCOL_ERROR_SIZE_LIMIT,
                "length %" G_GINT64_FORMAT " is too large", bytes);
    return FALSE;
  }
  return THRIFT_TRANSPORT_GET_CLASS(transport)->checkReadBytesAvailable(transport, (glong)bytes,
                                                                        error);
}

static gint32
enter(KqThriftProtocol *self, GError **error)
{
  if (self->depth >= KQ_THRIFT_MAX_DEPTH) {
    g_set_error(error, THRIFT_PROTOCOL_ERROR, THRIFT_PROTOCOL_ERROR_DEPTH_LIMIT,
                "structs and containers nested deeper than %d", KQ_THRIFT_MAX_DEPTH);
    return -1;
  }
  self->depth++;
  return 0;
}

static gint32
leave(ThriftProtocol *protocol, GError **error)
{
  KqThriftProtocol *self = KQ_THRIFT_PROTOCOL(protocol);
  if (self->depth > 0)
    self->depth--;
  return 0;
}

/* Smallest encoding of one element of `type`; 0 for a type that cannot be an element. */
static gint
element_min_size(ThriftType type)
{
  switch (type) {
  case T_BOOL:
  case T_BYTE:
  case T_STRUCT: /* at least its stop byte */
    return 1;
  case T_I16:
    return 2;
  case T_I32:
  case T_STRING:
    return 4;
  case T_I64:
  case T_DOUBLE:
    return 8;
  case T_SET:
  case T_LIST:
    return 5;
  case T_MAP:
    return 6;
  default:
    return 0;
  }
}

static gint32
read_length(ThriftProtocol *protocol, gint32 *len, GError **error)
{
  gint32 ret = thrift_protocol_read_i32(protocol, len, error);
  if (ret < 0)
    return -1;
  if (*len < 0) {
    g_set_error(error, THRIFT_PROTOCOL_ERROR, THRIFT_PROTOCOL_ERROR_NEGATIVE_SIZE,
                "negative length %d", *len);
    return -1;
  }
  return ret;
}

/* Element count plus a check that the frame can hold that many elements. */
static gint32
read_container_size(ThriftProtocol *protocol, gint min_element_size, guint32 *size, GError **error)
{
  gint32 count;
  gint32 ret = read_length(protocol, &count, error);
  if (ret < 0)
    return -1;
  if (count > 0 && !check_available(protocol, (gint64)count * min_element_size, error))
    return -1;
  *size = (guint32)count;
  return ret;
}

static gboolean
check_element_type(gint8 type, gboolean any, GError **error)
{
  if (any || element_min_size((ThriftType)type) > 0)
    return TRUE;
  g_set_error(error, THRIFT_PROTOCOL_ERROR, THRIFT_PROTOCOL_ERROR_INVALID_DATA,
              "invalid element type %d", type);
  return FALSE;
}

static gint32
kq_read_list_begin(ThriftProtocol *protocol, ThriftType *element_type, guint32 *size,
                   GError **error)
{
  KqThriftProtocol *self = KQ_THRIFT_PROTOCOL(protocol);
  gint8 type;
  gint32 xfer, ret;

  if (enter(self, error) < 0)
    return -1;
  if ((xfer = thrift_protocol_read_byte(protocol, &type, error)) < 0)
    return -1;
  if (!check_element_type(type, FALSE, error))
    return -1;
  if ((ret = read_container_size(protocol, element_min_size((ThriftType)type), size, error)) < 0)
    return -1;
  *element_type = (ThriftType)type;
  return xfer + ret;
}

static gint32
kq_read_map_begin(ThriftProtocol *protocol, ThriftType *key_type, ThriftType *value_type,
                  guint32 *size, GError **error)
{
  KqThriftProtocol *self = KQ_THRIFT_PROTOCOL(protocol);
  gint8 k, v;
  gint32 xfer = 0, ret;

  if (enter(self, error) < 0)
    return -1;
  if ((ret = thrift_protocol_read_byte(protocol, &k, error)) < 0)
    return -1;
  xfer += ret;
  if ((ret = thrift_protocol_read_byte(protocol, &v, error)) < 0)
    return -1;
  xfer += ret;
  if (!check_element_type(k, FALSE, error) || !check_element_type(v, FALSE, error))
    return -1;
  ret = read_container_size(protocol, element_min_size((ThriftType)k) +
                                          element_min_size((ThriftType)v), size, error);
  if (ret < 0)
    return -1;
  *key_type = (ThriftType)k;
  *value_type = (ThriftType)v;
  return xfer + ret;
}

static gint32
kq_read_struct_begin(ThriftProtocol *protocol, gchar **name, GError **error)
{
  *name = NULL;
  return enter(KQ_THRIFT_PROTOCOL(protocol), error);
}

static gint32
kq_read_field_begin(ThriftProtocol *protocol, gchar **name, ThriftType *field_type,
                    gint16 *field_id, GError **error)
{
  gint8 type;
  gint32 xfer, ret;

  *name = NULL;
  if ((xfer = thrift_protocol_read_byte(protocol, &type, error)) < 0)
    return -1;
  *field_type = (ThriftType)type;
  *field_id = 0;
  if (type == T_STOP)
    return xfer;
  if (element_min_size((ThriftType)type) == 0) {
    g_set_error(error, THRIFT_PROTOCOL_ERROR, THRIFT_PROTOCOL_ERROR_INVALID_DATA,
                "invalid field type %d", type);
    return -1;
  }
  if ((ret = thrift_protocol_read_i16(protocol, field_id, error)) < 0)
    return -1;
  return xfer + ret;
}

static gint32
kq_read_binary(ThriftProtocol *protocol, gpointer *buf, guint32 *len, GError **error)
{
  gint32 n, xfer, ret;

  *buf = NULL;
  *len = 0;
  if ((xfer = read_length(protocol, &n, error)) < 0)
    return -1;
  if (n == 0)
    return xfer;
  if (!check_available(protocol, n, error))
    return -1;
  *buf = g_malloc((gsize)n);
  if ((ret = thrift_transport_read_all(protocol->transport, *buf, (guint32)n, error)) < 0) {
    g_clear_pointer(buf, g_free);
    return -1;
  }
  *len = (guint32)n;
  return xfer + ret;
}

static gint32
kq_read_string(ThriftProtocol *protocol, gchar **str, GError **error)
{
  KqThriftProtocol *self = KQ_THRIFT_PROTOCOL(protocol);
  gint32 n, xfer, ret;

  *str = NULL;
  if ((xfer = read_length(protocol, &n, error)) < 0)
    return -1;
  if (!check_available(protocol, n, error))
    return -1;
  *str = g_malloc((gsize)n + 1);
  if (n > 0 && (ret = thrift_transport_read_all(protocol->transport, *str, (guint32)n, error)) < 0) {
    g_clear_pointer(str, g_free);
    return -1;
  }
  (*str)[n] = '\0';
  if (n > 0 && memchr(*str, '\0', (gsize)n) != NULL)
    g_ptr_array_add(self->nul_strings, g_bytes_new(*str, (gsize)n + 1));
  return xfer + n;
}

static gint32
kq_read_message_begin(ThriftProtocol *protocol, gchar **name, ThriftMessageType *message_type,
                      gint32 *seqid, GError **error)
{
  KqThriftProtocol *self = KQ_THRIFT_PROTOCOL(protocol);
  gint32 header, name_len, xfer = 0, ret;

  *name = NULL;
  *message_type = 0;
  *seqid = 0;
  self->depth = 0;
  if (self->nul_strings->len > 0)
    g_ptr_array_set_size(self->nul_strings, 0);

  if ((ret = thrift_protocol_read_i32(protocol, &header, error)) < 0)
    return -1;
  xfer += ret;
  if (header >= 0 || ((guint32)header & THRIFT_BINARY_PROTOCOL_VERSION_MASK) !=
                         THRIFT_BINARY_PROTOCOL_VERSION_1) {
    g_set_error(error, THRIFT_PROTOCOL_ERROR, THRIFT_PROTOCOL_ERROR_BAD_VERSION,
                "not a strict binary protocol message header (0x%08x)", (guint32)header);
    return -1;
  }
  *message_type = (ThriftMessageType)(header & 0xff);

  /* Peek at the name length first: a method name is short. */
  if ((ret = read_length(protocol, &name_len, error)) < 0)
    return -1;
  xfer += ret;
  if (name_len > KQ_THRIFT_MAX_NAME) {
    g_set_error(error, THRIFT_PROTOCOL_ERROR, THRIFT_PROTOCOL_ERROR_SIZE_LIMIT,
                "method name of %d bytes", name_len);
    return -1;
  }
  if (!check_available(protocol, name_len, error))
    return -1;
  *name = g_malloc((gsize)name_len + 1);
  if (name_len > 0 &&
      thrift_transport_read_all(protocol->transport, *name, (guint32)name_len, error) < 0) {
    g_clear_pointer(name, g_free);
    return -1;
  }
  (*name)[name_len] = '\0';
  xfer += name_len;

  if ((ret = thrift_protocol_read_i32(protocol, seqid, error)) < 0) {
    g_clear_pointer(name, g_free);
    return -1;
  }
  return xfer + ret;
}

static void
kq_thrift_protocol_finalize(GObject *object)
{
  KqThriftProtocol *self = KQ_THRIFT_PROTOCOL(object);

  g_ptr_array_unref(self->nul_strings);
  G_OBJECT_CLASS(kq_thrift_protocol_parent_class)->finalize(object);
}

static void
kq_thrift_protocol_class_init(KqThriftProtocolClass *klass)
{
  ThriftProtocolClass *protocol_class = THRIFT_PROTOCOL_CLASS(klass);

  G_OBJECT_CLASS(klass)->finalize = kq_thrift_protocol_finalize;

  protocol_class->read_message_begin = kq_read_message_begin;
  protocol_class->read_struct_begin = kq_read_struct_begin;
  protocol_class->read_struct_end = leave;
  protocol_class->read_field_begin = kq_read_field_begin;
  protocol_class->read_list_begin = kq_read_list_begin;
  protocol_class->read_list_end = leave;
  protocol_class->read_set_begin = kq_read_list_begin;
  protocol_class->read_set_end = leave;
  protocol_class->read_map_begin = kq_read_map_begin;
  protocol_class->read_map_end = leave;
  protocol_class->read_string = kq_read_string;
  protocol_class->read_binary = kq_read_binary;
}

static void
kq_thrift_protocol_init(KqThriftProtocol *self)
{
  self->nul_strings = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
}

KqThriftProtocol *
kq_thrift_protocol_new(ThriftTransport *transport)
{
  return g_object_new(KQ_TYPE_THRIFT_PROTOCOL, "transport", transport, NULL);
}

gsize
kq_thrift_protocol_string_length(KqThriftProtocol *self, const gchar *str)
{
  if (str == NULL)
    return 0;
  /* By content, not address: the generated dispatch hands on copies (g_object_get). */
  for (guint i = 0; i < self->nul_strings->len; i++) {
    gsize size;
    const gchar *wire = g_bytes_get_data(self->nul_strings->pdata[i], &size);
    if (strcmp(wire, str) == 0)
      return size - 1;
  }
  return strlen(str);
}

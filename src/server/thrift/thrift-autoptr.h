/* g_autoptr support for the c_glib parent classes we derive from (c_glib 0.17 declares none,
 * and G_DECLARE_FINAL_TYPE needs the parent's). Included once, before those declarations. */
#pragma once
#include <thrift/c_glib/protocol/thrift_binary_protocol.h>
#include <thrift/c_glib/transport/thrift_transport.h>

#include "kq_thrift_kestrel.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ThriftTransport, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ThriftBinaryProtocol, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KqThriftKestrelHandler, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KqThriftKestrelProcessor, g_object_unref)

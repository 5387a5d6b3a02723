/* Registration of every Thrift GType we use: see thrift-types.h. */
#include "config.h"

#include <thrift/c_glib/thrift.h>
#include <thrift/c_glib/thrift_application_exception.h>
#include <thrift/c_glib/processor/thrift_dispatch_processor.h>

#include "kq_thrift_kestrel.h"
#include "thrift-handler.h"
#include "thrift-processor.h"
#include "thrift-protocol.h"
#include "thrift-transport.h"
#include "thrift-types.h"

/* c_glib 0.17's ThriftApplicationException finalize does not chain up either (the generated
 * structs are fixed at build time), so every exception reply would leak its object's data list.
 * Wrap it: run the original, then GObject's own finalize unless the original already chained
 * (which a fixed c_glib would do: the hook on ThriftStruct's finalize notices). */
static GObjectFinalizeFunc exception_finalize_orig;
static GObjectFinalizeFunc struct_finalize_orig;
static _Thread_local gboolean exception_chained;

static void
struct_finalize_hook(GObject *object)
{
  exception_chained = TRUE;
  struct_finalize_orig(object);
}

static void
exception_finalize_fixed(GObject *object)
{
  gboolean outer = exception_chained;

  exception_chained = FALSE;
  exception_finalize_orig(object);
  if (!exception_chained)
    struct_finalize_orig(object);
  exception_chained = outer;
}

static void
fix_exception_finalize(void)
{
  GObjectClass *struct_class = g_type_class_ref(THRIFT_TYPE_STRUCT);
  GObjectClass *exception_class = g_type_class_ref(THRIFT_TYPE_APPLICATION_EXCEPTION);

  struct_finalize_orig = struct_class->finalize;
  struct_class->finalize = struct_finalize_hook;
  exception_finalize_orig = exception_class->finalize;
  exception_class->finalize = exception_finalize_fixed;
}

void
kq_thrift_types_init(void)
{
  static gsize done = 0;

  if (!g_once_init_enter(&done))
    return;
  g_type_ensure(THRIFT_TYPE_STRUCT);
  g_type_ensure(THRIFT_TYPE_APPLICATION_EXCEPTION);
  g_type_ensure(THRIFT_TYPE_TRANSPORT);
  g_type_ensure(THRIFT_TYPE_PROTOCOL);
  g_type_ensure(THRIFT_TYPE_BINARY_PROTOCOL);
  g_type_ensure(THRIFT_TYPE_PROCESSOR);
  g_type_ensure(THRIFT_TYPE_DISPATCH_PROCESSOR);
  g_type_ensure(kq_thrift_item_get_type());
  g_type_ensure(kq_thrift_queue_info_get_type());
  g_type_ensure(kq_thrift_kestrel_put_args_get_type());
  g_type_ensure(kq_thrift_kestrel_put_result_get_type());
  g_type_ensure(kq_thrift_kestrel_get_args_get_type());
  g_type_ensure(kq_thrift_kestrel_get_result_get_type());
  g_type_ensure(kq_thrift_kestrel_confirm_args_get_type());
  g_type_ensure(kq_thrift_kestrel_confirm_result_get_type());
  g_type_ensure(kq_thrift_kestrel_abort_args_get_type());
  g_type_ensure(kq_thrift_kestrel_abort_result_get_type());
  g_type_ensure(kq_thrift_kestrel_peek_args_get_type());
  g_type_ensure(kq_thrift_kestrel_peek_result_get_type());
  g_type_ensure(kq_thrift_kestrel_flush_queue_args_get_type());
  g_type_ensure(kq_thrift_kestrel_flush_queue_result_get_type());
  g_type_ensure(kq_thrift_kestrel_flush_all_queues_args_get_type());
  g_type_ensure(kq_thrift_kestrel_flush_all_queues_result_get_type());
  g_type_ensure(kq_thrift_kestrel_delete_queue_args_get_type());
  g_type_ensure(kq_thrift_kestrel_delete_queue_result_get_type());
  g_type_ensure(kq_thrift_kestrel_current_status_args_get_type());
  g_type_ensure(kq_thrift_kestrel_current_status_result_get_type());
  g_type_ensure(kq_thrift_kestrel_set_status_args_get_type());
  g_type_ensure(kq_thrift_kestrel_set_status_result_get_type());
  g_type_ensure(kq_thrift_kestrel_get_version_args_get_type());
  g_type_ensure(kq_thrift_kestrel_get_version_result_get_type());
  g_type_ensure(kq_thrift_kestrel_if_get_type());
  g_type_ensure(kq_thrift_kestrel_client_get_type());
  g_type_ensure(kq_thrift_kestrel_handler_get_type());
  g_type_ensure(kq_thrift_kestrel_processor_get_type());
  g_type_ensure(KQ_TYPE_THRIFT_FRAME_TRANSPORT);
  g_type_ensure(KQ_TYPE_THRIFT_PROTOCOL);
  g_type_ensure(KQ_TYPE_THRIFT_HANDLER);
  g_type_ensure(KQ_TYPE_THRIFT_PROCESSOR);
  fix_exception_finalize();
  g_once_init_leave(&done, 1);
}

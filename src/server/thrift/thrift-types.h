/* GType set-up of the Thrift front-end. Generated c_glib *_get_type() functions are not
 * thread-safe, so every type is registered once, on one thread, before the loop starts; and
 * ThriftApplicationException gets the finalize chain-up c_glib 0.17 forgot. */
#pragma once

/* Idempotent; call from the thread that starts the service. */
void kq_thrift_types_init(void);

/* ThreadSanitizer builds only (configure --enable-tsan). GLib implements GMutex and GCond on
 * Linux with raw futex calls, which ThreadSanitizer cannot see, so every lock would look like
 * no lock and every guarded field like a race. The link wraps GLib's lock calls (ld --wrap,
 * see include.am) and these wrappers tell ThreadSanitizer what each one does. */
#include <glib.h>
#include <sanitizer/tsan_interface.h>

void __real_g_mutex_lock(GMutex *mutex);
void __real_g_mutex_unlock(GMutex *mutex);
gboolean __real_g_mutex_trylock(GMutex *mutex);
void __real_g_cond_wait(GCond *cond, GMutex *mutex);
gboolean __real_g_cond_wait_until(GCond *cond, GMutex *mutex, gint64 end_time);

void __wrap_g_mutex_lock(GMutex *mutex);
void __wrap_g_mutex_unlock(GMutex *mutex);
gboolean __wrap_g_mutex_trylock(GMutex *mutex);
void __wrap_g_cond_wait(GCond *cond, GMutex *mutex);
gboolean __wrap_g_cond_wait_until(GCond *cond, GMutex *mutex, gint64 end_time);

void __wrap_g_mutex_lock(GMutex *mutex)
{
  __real_g_mutex_lock(mutex);
  __tsan_acquire(mutex);
}

void __wrap_g_mutex_unlock(GMutex *mutex)
{
  __tsan_release(mutex);
  __real_g_mutex_unlock(mutex);
}

gboolean __wrap_g_mutex_trylock(GMutex *mutex)
{
  gboolean locked = __real_g_mutex_trylock(mutex);
  if (locked)
    __tsan_acquire(mutex);
  return locked;
}

/* A wait gives the mutex up and takes it back before returning. */
void __wrap_g_cond_wait(GCond *cond, GMutex *mutex)
{
  __tsan_release(mutex);
  __real_g_cond_wait(cond, mutex);
  __tsan_acquire(mutex);
}

gboolean __wrap_g_cond_wait_until(GCond *cond, GMutex *mutex, gint64 end_time)
{
  __tsan_release(mutex);
  gboolean signalled = __real_g_cond_wait_until(cond, mutex, end_time);
  __tsan_acquire(mutex);
  return signalled;
}

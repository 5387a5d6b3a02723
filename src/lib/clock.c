/* The engine's wall clock, swappable so expiry can be tested without sleeping. */
#include <kestrel/clock.h>

static KqClockFunc clock_func;
static gpointer clock_data;

gint64 kq_clock_now_ms(void)
{
  if (G_UNLIKELY(clock_func != NULL))
    return clock_func(clock_data);
  return g_get_real_time() / 1000;
}

void kq_clock_set(KqClockFunc func, gpointer user_data)
{
  clock_func = func;
  clock_data = user_data;
}

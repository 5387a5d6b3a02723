/* Wall-clock source of the engine, replaceable so tests can move time without sleeping. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

/* Milliseconds since the Unix epoch. */
typedef gint64 (*KqClockFunc)(gpointer user_data);

/* Current time in ms from the installed clock (real time unless a test replaced it). */
gint64 kq_clock_now_ms(void);

/* Replace the process-wide clock; NULL restores real time. Not thread-safe: call at start-up. */
void kq_clock_set(KqClockFunc func, gpointer user_data);

G_END_DECLS

/* The timer thread: fires entries at their deadlines (blocking reads' timeouts). */
#pragma once
#include <glib.h>

typedef struct _KqTimer KqTimer;

/* An entry fires once at its deadline (monotonic µs) on the timer thread, outside any lock. */
typedef struct {
  gint64 deadline;
  guint64 seq;                 /* arrival order breaks deadline ties */
  void (*fire)(gpointer data);
  gpointer data;
  GSequenceIter *iter;         /* guarded by the timer lock */
} KqTimerEntry;

KqTimer *kq_timer_new(void);
/* Stop the thread (entries left are not fired) and free. */
void kq_timer_free(KqTimer *timer);
void kq_timer_add(KqTimer *timer, KqTimerEntry *entry);
/* TRUE when the entry was still scheduled (it will not fire). */
gboolean kq_timer_remove(KqTimer *timer, KqTimerEntry *entry);

/* Blocking-read waiters and the timer thread that fires their deadlines. */
#pragma once
#include <glib.h>
#include <kestrel/queue.h>

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

typedef enum { KQ_WAITER_PENDING, KQ_WAITER_DONE, KQ_WAITER_CANCELLED } KqWaiterState;

struct _KqWaiter {
  gint ref_count;
  KqQueue *queue;            /* reference held for the waiter's life */
  KqRemoveFlags flags;
  KqWaitFunc func;
  gpointer user_data;
  KqWaiterState state;       /* guarded by the queue lock */
  GList link;                /* in the queue's waiter list while pending */
  KqTimerEntry timer;
  gboolean timed;
  gint64 parked_us;          /* monotonic time it started waiting (timed waiters) */
};

KqWaiter *kq_waiter_new(KqQueue *queue, KqRemoveFlags flags, KqWaitFunc func,
                        gpointer user_data);
KqWaiter *kq_waiter_ref(KqWaiter *waiter);
void kq_waiter_unref(KqWaiter *waiter);

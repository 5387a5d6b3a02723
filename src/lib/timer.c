/* The timer thread: one sorted sequence of deadlines, one condition variable. */
#include "timer.h"

struct _KqTimer {
  GMutex lock;
  GCond cond;
  GSequence *entries;
  GThread *thread;
  guint64 next_seq;
  gboolean stopping;
};

static gint entry_compare(gconstpointer a, gconstpointer b, gpointer unused)
{
  const KqTimerEntry *x = a, *y = b;
  if (x->deadline != y->deadline)
    return x->deadline < y->deadline ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq ? 1 : 0;
}

static gpointer timer_thread(gpointer data)
{
  KqTimer *t = data;
  g_mutex_lock(&t->lock);
  while (!t->stopping) {
    GSequenceIter *first = g_sequence_get_begin_iter(t->entries);
    if (g_sequence_iter_is_end(first)) {
      g_cond_wait(&t->cond, &t->lock);
      continue;
    }
    KqTimerEntry *e = g_sequence_get(first);
    if (e->deadline > g_get_monotonic_time()) {
      g_cond_wait_until(&t->cond, &t->lock, e->deadline);
      continue;
    }
    g_sequence_remove(first);
    e->iter = NULL;
    g_mutex_unlock(&t->lock);
    e->fire(e->data);
    g_mutex_lock(&t->lock);
  }
  g_mutex_unlock(&t->lock);
  return NULL;
}

KqTimer *kq_timer_new(void)
{
  KqTimer *t = g_new0(KqTimer, 1);
  g_mutex_init(&t->lock);
  g_cond_init(&t->cond);
  t->entries = g_sequence_new(NULL);
  t->thread = g_thread_new("kq-timer", timer_thread, t);
  return t;
}

void kq_timer_free(KqTimer *t)
{
  if (t == NULL)
    return;
  g_mutex_lock(&t->lock);
  t->stopping = TRUE;
  g_cond_signal(&t->cond);
  g_mutex_unlock(&t->lock);
  g_thread_join(t->thread);
  g_sequence_free(t->entries);
  g_mutex_clear(&t->lock);
  g_cond_clear(&t->cond);
  g_free(t);
}

void kq_timer_add(KqTimer *t, KqTimerEntry *e)
{
  g_mutex_lock(&t->lock);
  e->seq = t->next_seq++;
  e->iter = g_sequence_insert_sorted(t->entries, e, entry_compare, NULL);
  if (g_sequence_iter_is_begin(e->iter))
    g_cond_signal(&t->cond);
  g_mutex_unlock(&t->lock);
}

gboolean kq_timer_remove(KqTimer *t, KqTimerEntry *e)
{
  g_mutex_lock(&t->lock);
  gboolean scheduled = e->iter != NULL;
  if (scheduled) {
    g_sequence_remove(e->iter);
    e->iter = NULL;
  }
  g_mutex_unlock(&t->lock);
  return scheduled;
}

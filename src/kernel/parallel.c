/*
 * kernel/parallel.c
 *		Loops over independent items on several threads (see parallel.h).
 *
 * Items are handed out in batches from one atomic counter, so a slow
 * thread (a busy core) takes fewer.  The calling thread runs items too and
 * is the only one that runs the check callback (it may call into
 * PostgreSQL); while it waits for the others at the end it wakes every
 * PARALLEL_POLL_MS to run it.  The other threads see a stop between items,
 * and in an abortable loop also inside one, every LINALG_CHECK_WORK of work
 * (a longjmp out of LinalgWork, which kernels call only between BLAS
 * calls).  They start with every signal blocked, so that PostgreSQL's
 * handlers run on the calling thread only.
 */
#include <signal.h>
#include <string.h>
#include <time.h>

#include "kernel/linalg.h"
#include "kernel/parallel.h"

/* How often the waiting calling thread runs the check callback */
#define PARALLEL_POLL_MS 10

/* The running loop, on the calling thread; NULL when none */
static ParallelLoop *active_loop = NULL;

/* This thread's place in a loop; NULL on the calling thread */
static _Thread_local ParallelWorker *this_worker = NULL;

/* Is this one of a loop's other threads? */
int
ParallelInWorker(void)
{
	return this_worker != NULL;
}

/*
 * Count work on another thread: in an abortable loop, unwind out of the
 * item once the loop is stopped
 */
void
ParallelWorkerWork(double work)
{
	ParallelWorker *w = this_worker;

	w->work += work;
	if (w->work < LINALG_CHECK_WORK)
		return;
	w->work = 0.0;
	if (w->loop->abortable && atomic_load_explicit(&w->loop->stop, memory_order_relaxed))
		longjmp(w->unwind, 1);
}

/*
 * Run batches of items until none is left or the loop is stopped; leaves
 * in w->cur .. w->end what a stop interrupted
 */
static void
RunBatches(ParallelLoop *p, ParallelWorker *w)
{
	for (;;)
	{
		int64_t		first;

		if (w->id != 0 && atomic_load_explicit(&p->stop, memory_order_relaxed))
			return;
		first = atomic_fetch_add(&p->next, p->batch);
		if (first >= p->n)
			return;
		w->end = first + p->batch < p->n ? first + p->batch : p->n;
		for (w->cur = first; w->cur < w->end; w->cur++)
		{
			if (w->id != 0 && atomic_load_explicit(&p->stop, memory_order_relaxed))
				return;
			p->fn(p->arg, w->id, w->cur);
		}
	}
}

/* Body of the other threads */
static int
WorkerMain(void *arg)
{
	ParallelWorker *w = (ParallelWorker *) arg;
	ParallelLoop *p = w->loop;

	this_worker = w;
	/* an unwind from a stopped item leaves w->cur .. w->end for the caller */
	if (setjmp(w->unwind) == 0)
		RunBatches(p, w);
	mtx_lock(&p->mu);
	p->running--;
	cnd_signal(&p->done);
	mtx_unlock(&p->mu);
	return 0;
}

/* Join the other threads of a loop (once) */
static void
JoinAll(ParallelLoop *p)
{
	if (p->joined)
		return;
	for (int t = 0; t < p->started; t++)
		thrd_join(p->threads[t], NULL);
	p->joined = 1;
	mtx_destroy(&p->mu);
	cnd_destroy(&p->done);
}

/*
 * Stop the running loop's other threads and wait for them (on the calling
 * thread: the check callback calls it before anything that may not
 * return); returns whether a loop was running.  A loop that goes on
 * afterwards finishes alone.
 */
int
ParallelStop(void)
{
	ParallelLoop *p = active_loop;

	if (p == NULL)
		return 0;
	active_loop = NULL;
	atomic_store(&p->stop, 1);
	JoinAll(p);
	return 1;
}

/* Wait until the other threads have finished, running the check callback meanwhile */
static void
WaitOthers(ParallelLoop *p)
{
	for (;;)
	{
		struct timespec until;
		int			left;

		if (p->joined)
			return;
		mtx_lock(&p->mu);
		if (p->running > 0)
		{
			timespec_get(&until, TIME_UTC);
			until.tv_nsec += PARALLEL_POLL_MS * 1000000L;
			if (until.tv_nsec >= 1000000000L)
			{
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			cnd_timedwait(&p->done, &p->mu, &until);
		}
		left = p->running;
		mtx_unlock(&p->mu);
		if (left == 0)
			return;
		/* may stop the loop (ParallelStop) and not return */
		LinalgWork(LINALG_CHECK_WORK);
	}
}

/* Run every item in order on this thread */
static void
RunSerial(ParallelLoop *p)
{
	for (int64_t i = 0; i < p->n; i++)
		p->fn(p->arg, 0, i);
}

/*
 * Start the other threads of a loop on its items and return at once: the
 * caller may do other work (PostgreSQL's included) until ParallelEnd, but
 * calls ParallelStop before anything that may not return.  A loop that
 * would run on one thread (one worker, one batch of items, or begun inside
 * another loop) starts nothing here and runs alone in ParallelEnd.
 */
void
ParallelBegin(ParallelLoop *p)
{
	int			want = p->nworkers;
	sigset_t	all,
				old;

	p->started = 0;
	p->joined = 1;
	p->serial = 1;
	if (want > PARALLEL_MAX_WORKERS)
		want = PARALLEL_MAX_WORKERS;
	if ((int64_t) want > (p->n + p->batch - 1) / p->batch)
		want = (int) ((p->n + p->batch - 1) / p->batch);
	if (want <= 1 || active_loop != NULL || this_worker != NULL)
		return;

	atomic_init(&p->next, 0);
	atomic_init(&p->stop, 0);
	p->running = 0;
	if (mtx_init(&p->mu, mtx_plain) != thrd_success)
		return;
	if (cnd_init(&p->done) != thrd_success)
	{
		mtx_destroy(&p->mu);
		return;
	}
	p->serial = 0;
	p->joined = 0;
	p->want = want;
	for (int t = 0; t < want; t++)
	{
		memset(&p->workers[t], 0, sizeof(ParallelWorker));
		p->workers[t].loop = p;
		p->workers[t].id = t;
	}

	/* the other threads inherit a mask that blocks every signal */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (int t = 1; t < want; t++)
	{
		mtx_lock(&p->mu);
		p->running++;
		mtx_unlock(&p->mu);
		if (thrd_create(&p->threads[p->started], WorkerMain, &p->workers[t]) != thrd_success)
		{
			mtx_lock(&p->mu);
			p->running--;
			mtx_unlock(&p->mu);
			break;
		}
		p->started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	active_loop = p;
}

/*
 * Finish a loop begun with ParallelBegin: run what is left on this thread
 * too, wait for the others, and rerun what a stop left half done; returns
 * the threads that took part.
 */
int
ParallelEnd(ParallelLoop *p)
{
	if (p->serial)
	{
		RunSerial(p);
		return 1;
	}
	RunBatches(p, &p->workers[0]);
	WaitOthers(p);
	if (active_loop == p)
		active_loop = NULL;
	JoinAll(p);

	/* after a stop that returned: what the other threads left */
	for (int t = 1; t < p->want; t++)
	{
		ParallelWorker *w = &p->workers[t];

		for (int64_t i = w->cur; i < w->end; i++)
			p->fn(p->arg, 0, i);
		w->cur = w->end = 0;
	}
	return p->started + 1;
}

/*
 * Run fn(arg, worker, item) for every item on up to loop->nworkers threads,
 * the caller's included; returns the threads that took part.  A loop run
 * from inside another, or with one worker, runs in item order on this
 * thread.
 */
int
ParallelRun(ParallelLoop *p)
{
	ParallelBegin(p);
	return ParallelEnd(p);
}

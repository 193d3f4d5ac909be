/*
 * kernel/parallel.h
 *		Loops over independent items run by several threads of one backend
 *		(C11 threads), the calling thread included.  No PostgreSQL in here,
 *		and none may run on the other threads: they only run kernel code on
 *		memory the caller allocated before the loop.
 *
 * Rules a loop's item function follows:
 *	- it writes only its item's outputs and its worker's scratch (worker is
 *	  0 for the calling thread, 1..nworkers-1 for the others), so the
 *	  results do not depend on which thread ran an item, nor on how many;
 *	- it counts its work with LinalgWork (linalg.h).  On the calling thread
 *	  that runs the check callback as usual; the callback calls ParallelStop
 *	  before anything that may not return (an error), which stops and joins
 *	  the other threads first;
 *	- with abortable set, an item may be left half done when the loop is
 *	  stopped (another thread unwinds out of LinalgWork) and is then run
 *	  again from the start by the calling thread: it must give the same
 *	  result when rerun (outputs written at its end, or reset at its start).
 *
 * ParallelRun is ParallelBegin then ParallelEnd.  Between the two the
 * calling thread may do its own work (read the next rows, write the last
 * results) while the others run items, which is how a serial step overlaps
 * a parallel one; it calls ParallelStop before anything that may not return.
 */
#ifndef PARALLEL_H
#define PARALLEL_H

#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <threads.h>

/*
 * Most threads of one loop.  The serial OpenBLAS build hands each running
 * level-3 call one of its 128 buffers (and aborts the process when none is
 * left), so this stays well below that.
 */
#define PARALLEL_MAX_WORKERS 64

typedef void (*ParallelItemFn) (void *arg, int worker, int64_t item);

/* One thread's place in a loop */
typedef struct ParallelWorker
{
	struct ParallelLoop *loop;
	int			id;
	int64_t		cur;			/* the item being run, and the end of its batch: */
	int64_t		end;			/* what is left when the thread was stopped */
	double		work;			/* work counted since the last stop check */
	jmp_buf		unwind;
} ParallelWorker;

typedef struct ParallelLoop
{
	/* set by the caller */
	int			nworkers;		/* threads, the caller's included; 1 runs in order, alone */
	int64_t		n;				/* items 0 .. n - 1 */
	int64_t		batch;			/* items a thread takes at a time (>= 1) */
	int			abortable;		/* items may be stopped half done and rerun (above) */
	ParallelItemFn fn;
	void	   *arg;
	/* the run's state */
	atomic_llong next;			/* first item not yet taken */
	atomic_int	stop;			/* the other threads stop at their next check */
	int			serial;			/* runs alone, in ParallelEnd */
	int			want;			/* threads asked for, the caller's included */
	int			started;		/* threads started besides the caller */
	int			joined;			/* they have been joined */
	int			running;		/* started threads not yet finished (under mu) */
	mtx_t		mu;
	cnd_t		done;
	thrd_t		threads[PARALLEL_MAX_WORKERS];
	ParallelWorker workers[PARALLEL_MAX_WORKERS];
} ParallelLoop;

extern int	ParallelRun(ParallelLoop *loop);
extern void ParallelBegin(ParallelLoop *loop);
extern int	ParallelEnd(ParallelLoop *loop);
extern int	ParallelStop(void);
extern int	ParallelInWorker(void);
extern void ParallelWorkerWork(double work);

#endif

/*
 * recsys.c
 *		Module entry point: settings and BLAS threading.
 */
#include "postgres.h"

#include <limits.h>
#include <unistd.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "blas_lock.h"
#include "embeddings/kind.h"
#include "kernel/linalg.h"
#include "kernel/parallel.h"
#include "mmoe/mmoe.h"
#include "store/model_store.h"
#include "store/progress.h"
#include "settings.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

int			recsys_max_dim = 4096;
int			recsys_blas_threads = 1;
int			recsys_training_memory = 1024 * 1024;
int			recsys_max_workers = -1;
bool		recsys_debug_memory = false;
static char *recsys_debug_memory_report = NULL;
int			recsys_progress_interval = 10;
bool		recsys_debug_progress = false;
static char *recsys_debug_progress_report = NULL;

/* Apply recsys.blas_threads to OpenBLAS whenever it is set */
static void
AssignBlasThreads(int newval, void *extra)
{
	LinalgSetThreads(newval);
}

/*
 * The kernels' check callback (linalg.h): every LINALG_CHECK_WORK of work,
 * on the backend's own thread.  An interrupt may raise an error, which must
 * not leave a parallel loop's other threads running on memory the error
 * frees: they are stopped and joined first (a loop whose interrupt returns
 * finishes on this thread).
 */
static void
CheckInterrupts(void *arg)
{
	/*
	 * a training's progress: the work done so far, a NOTICE when due; an
	 * error there (out of memory) stops the other threads first too
	 */
	PG_TRY();
	{
		ProgressTick();
	}
	PG_CATCH();
	{
		ParallelStop();
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (INTERRUPTS_PENDING_CONDITION())
		ParallelStop();
	CHECK_FOR_INTERRUPTS();
}

/*
 * Get the threads one call may use, this backend's included: recsys.max_workers,
 * or by default max_parallel_maintenance_workers + 1 (the leader works too,
 * as in a parallel CREATE INDEX) but no more than the online CPUs; always 1
 * when OpenBLAS's buffers are not under blas_lock.c's mutex.
 */
int
RecsysWorkers(void)
{
	int			n = recsys_max_workers;

	if (n < 0)
	{
		long		cpus = sysconf(_SC_NPROCESSORS_ONLN);

		n = max_parallel_maintenance_workers + 1;
		if (cpus > 0 && n > cpus)
			n = (int) cpus;
	}
	n = Max(1, Min(n, PARALLEL_MAX_WORKERS));
	if (n > 1 && !BlasLockActive())
		n = 1;
	return n;
}

/* Define the settings and pin BLAS threading when the library is loaded */
void
_PG_init(void)
{
	DefineCustomIntVariable("recsys.max_dim",
							"Largest vector length recsys accepts.",
							"Bounds the memory of k x k states (8 k^2 bytes, 128 MB at the default). Only superusers change it, so that no role can make one backend allocate gigabytes.",
							&recsys_max_dim,
							4096, 1, RECSYS_MAX_DIM_LIMIT,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("recsys.blas_threads",
							"Threads OpenBLAS may use inside one backend.",
							"Keep 1 and let parallel query spread the work; the serial OpenBLAS build ignores larger values.",
							&recsys_blas_threads,
							1, 1, 64,
							PGC_SUSET, 0,
							NULL, AssignBlasThreads, NULL);

	DefineCustomIntVariable("recsys.training_memory",
							"Memory the in-memory training engine may use.",
							"Interactions, indexes and factors of one train_embeddings call; als falls back to the aggregate engine when they do not fit.",
							&recsys_training_memory,
							1024 * 1024, 64, MAX_KILOBYTES,
							PGC_USERSET, GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("recsys.max_workers",
							"Threads one training or batch scoring call may use, the backend's own included.",
							"-1: max_parallel_maintenance_workers + 1, at most the number of CPUs. 0 and 1 use the backend's thread alone.",
							&recsys_max_workers,
							-1, -1, PARALLEL_MAX_WORKERS,
							PGC_USERSET, 0,
							NULL, NULL, NULL);

	/* test hooks, hidden: the memory of SPI loops, read back by the tests */
	DefineCustomBoolVariable("recsys.debug_memory",
							 "Reports the memory recsys's SPI loops hold into recsys.debug_memory_report.",
							 "For tests: the contexts' sizes after each epoch of a training and at the end of serving.",
							 &recsys_debug_memory,
							 false,
							 PGC_USERSET, GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("recsys.debug_memory_report",
							   "Memory reports of recsys.debug_memory: what=bytes, comma-separated.",
							   NULL,
							   &recsys_debug_memory_report,
							   "",
							   PGC_USERSET, GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("recsys.progress_interval",
							"Seconds between the progress NOTICEs of a training within an epoch.",
							"0 turns them off. Other sessions see running trainings in recsys.training_progress() when recsys is in shared_preload_libraries.",
							&recsys_progress_interval,
							10, 0, 86400,
							PGC_USERSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	/* test hooks, hidden: the phases a training reported, read back by the tests */
	DefineCustomBoolVariable("recsys.debug_progress",
							 "Records each phase a training reports into recsys.debug_progress_report.",
							 "For tests: phase names with the work done and the total at the phase's end.",
							 &recsys_debug_progress,
							 false,
							 PGC_USERSET, GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("recsys.debug_progress_report",
							   "Phases recorded by recsys.debug_progress, comma-separated.",
							   NULL,
							   &recsys_debug_progress_report,
							   "",
							   PGC_USERSET, GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);

	MarkGUCPrefixReserved("recsys");
	ProgressShmemInit();
	ModelStoreRegisterKind(&MmoeModelKind);
	ModelStoreRegisterKind(&EmbeddingModelKind);
	LinalgSetThreads(recsys_blas_threads);
	LinalgSetCheck(CheckInterrupts, NULL);
}

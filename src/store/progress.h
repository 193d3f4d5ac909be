/*
 * store/progress.h
 *		Progress of a running training: a NOTICE every
 *		recsys.progress_interval seconds within an epoch, and a slot in
 *		shared memory that recsys.training_progress() shows to other
 *		sessions when the library is in shared_preload_libraries.
 *
 * A training calls ProgressBegin once (its memory context's end clears
 * everything, also on error), ProgressPhase at each phase (reading, an
 * epoch's user or item side, writing), and ProgressSet as work gets done.
 * ProgressWatch lets a kernel's loop counter stand for the work done: it is
 * read when the kernels' work-based check callback fires (ProgressTick,
 * called from the check callback and from loops without kernels), which is
 * also the only place that reads the clock.
 */
#ifndef PROGRESS_H
#define PROGRESS_H

#include "postgres.h"

extern void ProgressShmemInit(void);
extern void ProgressBegin(const char *function, const char *model, const char *method,
						  int epochs, MemoryContext owner);
extern void ProgressPhase(const char *phase, int epoch, int64 total, const char *unit);
extern void ProgressSet(int64 done);
extern void ProgressWatch(const int32 *counter, int64 base);
extern void ProgressTick(void);
extern void ProgressEnd(void);

#endif

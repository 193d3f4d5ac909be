/*
 * store/progress.c
 *		Progress of a running training (see progress.h).
 *
 * The shared slots work as pg_stat_progress_* do: one slot per backend
 * (indexed by its backend number, so no lock is needed to find one),
 * written only by its backend between two increments of a change counter
 * (odd while a write is under way), read by others by copying until the
 * counter is even and unchanged.  A slot is cleared when the training's
 * memory context goes away (normal end, error, cancel) and when the
 * backend exits.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "catalog/pg_authid.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "settings.h"
#include "store/progress.h"

/* One training's progress, as other sessions see it */
typedef struct ProgressSlot
{
	uint32		changecount;	/* odd while its backend writes */
	int			pid;			/* 0: no training */
	Oid			dbid;
	Oid			userid;
	char		function[32];
	char		model[NAMEDATALEN];
	char		method[32];
	char		phase[32];
	char		unit[16];
	int			epoch;
	int			epochs;
	int64		done;
	int64		total;			/* 0: not known */
	TimestampTz started_at;
	TimestampTz phase_started_at;
	TimestampTz updated_at;
} ProgressSlot;

typedef struct ProgressShared
{
	int			nslots;
	ProgressSlot slots[FLEXIBLE_ARRAY_MEMBER];
} ProgressShared;

static ProgressShared *Shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* This backend's training: what the NOTICEs and the slot say */
static bool Active = false;
static ProgressSlot Local;
static ProgressSlot *Mine = NULL;	/* this backend's shared slot, or NULL */
static const int32 *Watched = NULL;
static int64 WatchBase = 0;
static TimestampTz LastNotice;
static MemoryContextCallback EndCallback;
static bool ExitCallbackSet = false;

/* Size of the shared slots */
static Size
SharedSize(void)
{
	return add_size(offsetof(ProgressShared, slots),
					mul_size(sizeof(ProgressSlot), MaxBackends));
}

/* Ask for the shared slots (shared_preload_libraries only) */
static void
ProgressShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(SharedSize());
}

/* Create or attach the shared slots */
static void
ProgressShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	Shared = ShmemInitStruct("recsys training progress", SharedSize(), &found);
	if (!found)
	{
		memset(Shared, 0, SharedSize());
		Shared->nslots = MaxBackends;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Install the shared memory hooks when loaded by shared_preload_libraries */
void
ProgressShmemInit(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ProgressShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ProgressShmemStartup;
}

/* Copy the local state into this backend's slot */
static void
Publish(void)
{
	if (Mine == NULL)
		return;
	Mine->changecount++;
	pg_write_barrier();
	memcpy((char *) Mine + offsetof(ProgressSlot, pid), (char *) &Local + offsetof(ProgressSlot, pid),
		   sizeof(ProgressSlot) - offsetof(ProgressSlot, pid));
	pg_write_barrier();
	Mine->changecount++;
}

/* Clear this backend's slot and forget the training */
static void
Clear(void)
{
	Active = false;
	Watched = NULL;
	if (Mine != NULL)
	{
		Mine->changecount++;
		pg_write_barrier();
		Mine->pid = 0;
		pg_write_barrier();
		Mine->changecount++;
	}
}

/* The training's memory context went away (its end, an error, a cancel) */
static void
ProgressEnded(void *arg)
{
	Clear();
}

/* The backend exits: no slot may name it afterwards */
static void
ProgressAtExit(int code, Datum arg)
{
	Clear();
}

/*
 * Start reporting a training: function (train_embeddings, train_mmoe),
 * model, method, epochs; it ends when owner is reset or deleted
 */
void
ProgressBegin(const char *function, const char *model, const char *method, int epochs,
			  MemoryContext owner)
{
	int			index = RecsysBackendIndex();

	memset(&Local, 0, sizeof(Local));
	Local.pid = MyProcPid;
	Local.dbid = MyDatabaseId;
	Local.userid = GetUserId();
	strlcpy(Local.function, function, sizeof(Local.function));
	strlcpy(Local.model, model, sizeof(Local.model));
	strlcpy(Local.method, method, sizeof(Local.method));
	strlcpy(Local.phase, "starting", sizeof(Local.phase));
	Local.epochs = epochs;
	Local.started_at = Local.phase_started_at = Local.updated_at = GetCurrentTimestamp();
	LastNotice = Local.started_at;
	Watched = NULL;
	Mine = Shared != NULL && index >= 0 && index < Shared->nslots ? &Shared->slots[index] : NULL;
	if (Mine != NULL && !ExitCallbackSet)
	{
		before_shmem_exit(ProgressAtExit, (Datum) 0);
		ExitCallbackSet = true;
	}
	EndCallback.func = ProgressEnded;
	EndCallback.arg = NULL;
	MemoryContextRegisterResetCallback(owner, &EndCallback);
	Active = true;
	Publish();
}

/* Append "[epoch N ]phase done/total" to recsys.debug_progress_report (tests) */
static void
DebugRecord(void)
{
	const char *old;
	char	   *entry;

	if (!recsys_debug_progress || strcmp(Local.phase, "starting") == 0)
		return;
	entry = psprintf("%s%s " INT64_FORMAT "/" INT64_FORMAT,
					 Local.epoch > 0 ? psprintf("epoch %d ", Local.epoch) : "", Local.phase,
					 Watched ? WatchBase + *Watched : Local.done, Local.total);
	old = GetConfigOption("recsys.debug_progress_report", false, false);
	SetConfigOption("recsys.debug_progress_report",
					psprintf("%s%s%s", old ? old : "", old && old[0] ? "," : "", entry),
					PGC_USERSET, PGC_S_SESSION);
}

/* End the training's reporting normally (an error's end is the context's) */
void
ProgressEnd(void)
{
	if (Active)
		DebugRecord();
	Clear();
}

/*
 * Begin a phase of the training (of an epoch when epoch > 0): total units
 * of work (0: not known), none done yet
 */
void
ProgressPhase(const char *phase, int epoch, int64 total, const char *unit)
{
	if (!Active)
		return;
	DebugRecord();
	strlcpy(Local.phase, phase, sizeof(Local.phase));
	strlcpy(Local.unit, unit, sizeof(Local.unit));
	Local.epoch = epoch;
	Local.done = 0;
	Local.total = total;
	Local.phase_started_at = Local.updated_at = GetCurrentTimestamp();
	Watched = NULL;
	Publish();
}

/* Record the work done in the phase (no clock, no NOTICE: see ProgressTick) */
void
ProgressSet(int64 done)
{
	if (!Active)
		return;
	Local.done = done;
	Watched = NULL;
}

/* Let base + *counter (a kernel's loop counter) be the work done from now on */
void
ProgressWatch(const int32 *counter, int64 base)
{
	if (!Active)
		return;
	Watched = counter;
	WatchBase = base;
}

/* Format seconds for a NOTICE */
static double
Seconds(TimestampTz from, TimestampTz to)
{
	return (double) (to - from) / USECS_PER_SEC;
}

/*
 * Publish the work done and, once recsys.progress_interval has passed since
 * the last report, report it in a NOTICE: done, total, elapsed, an estimate
 * of the phase's remaining time
 */
void
ProgressTick(void)
{
	TimestampTz now;

	if (!Active)
		return;
	if (Watched)
		Local.done = WatchBase + *Watched;
	now = GetCurrentTimestamp();
	Local.updated_at = now;
	Publish();
	if (recsys_progress_interval <= 0 ||
		now - LastNotice < (int64) recsys_progress_interval * USECS_PER_SEC)
		return;
	LastNotice = now;
	{
		double		elapsed = Seconds(Local.phase_started_at, now);
		char	   *where = Local.epoch > 0 ?
			psprintf("epoch %d/%d, %s", Local.epoch, Local.epochs, Local.phase) :
			pstrdup(Local.phase);

		if (Local.total > 0 && Local.done > 0)
			ereport(NOTICE,
					(errmsg("%s \"%s\": %s: " INT64_FORMAT " of " INT64_FORMAT " %s (%.0f%%) in %.1f s, about %.1f s left",
							Local.function, Local.model, where, Local.done, Local.total, Local.unit,
							100.0 * Local.done / Local.total, elapsed,
							elapsed * (Local.total - Local.done) / Local.done)));
		else if (Local.total > 0)
			ereport(NOTICE,
					(errmsg("%s \"%s\": %s: 0 of " INT64_FORMAT " %s in %.1f s",
							Local.function, Local.model, where, Local.total, Local.unit, elapsed)));
		else
			ereport(NOTICE,
					(errmsg("%s \"%s\": %s: " INT64_FORMAT " %s in %.1f s",
							Local.function, Local.model, where, Local.done, Local.unit, elapsed)));
		pfree(where);
	}
}

PG_FUNCTION_INFO_V1(training_progress);
/*
 * List the trainings running in the cluster, one row per backend, as
 * pg_stat_progress_* do: every row shows pid, database and role; the rest
 * only to roles with the privileges of the training's role or of
 * pg_read_all_stats
 */
Datum
training_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	if (Shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("recsys.training_progress() needs recsys in shared_preload_libraries"),
				 errdetail("Trainings publish their progress in shared memory, which only a library loaded at server start can have."),
				 errhint("Add recsys to shared_preload_libraries and restart the server. Without it, the training's own session still gets a NOTICE every recsys.progress_interval.")));
	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < Shared->nslots; i++)
	{
		volatile ProgressSlot *slot = &Shared->slots[i];
		ProgressSlot s;
		Datum		values[16];
		bool		nulls[16] = {false};
		bool		visible;

		for (;;)
		{
			uint32		before = slot->changecount;

			pg_read_barrier();
			memcpy(&s, (const void *) slot, sizeof(s));
			pg_read_barrier();
			if (before == slot->changecount && (before & 1) == 0)
				break;
			CHECK_FOR_INTERRUPTS();
		}
		if (s.pid == 0)
			continue;
		visible = has_privs_of_role(GetUserId(), s.userid) ||
			has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);
		values[0] = Int32GetDatum(s.pid);
		values[1] = ObjectIdGetDatum(s.dbid);
		values[2] = ObjectIdGetDatum(s.userid);
		if (!visible)
		{
			for (int c = 3; c < 16; c++)
				nulls[c] = true;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			continue;
		}
		values[3] = CStringGetTextDatum(s.function);
		values[4] = CStringGetTextDatum(s.model);
		values[5] = CStringGetTextDatum(s.method);
		values[6] = CStringGetTextDatum(s.phase);
		values[7] = Int32GetDatum(s.epoch);
		nulls[7] = s.epoch == 0;
		values[8] = Int32GetDatum(s.epochs);
		values[9] = Int64GetDatum(s.done);
		values[10] = Int64GetDatum(s.total);
		nulls[10] = s.total == 0;
		values[11] = CStringGetTextDatum(s.unit);
		nulls[11] = s.unit[0] == '\0';
		values[12] = TimestampTzGetDatum(s.started_at);
		values[13] = TimestampTzGetDatum(s.phase_started_at);
		values[14] = TimestampTzGetDatum(s.updated_at);
		/* the phase's remaining time at its rate so far */
		nulls[15] = s.total == 0 || s.done == 0;
		if (!nulls[15])
		{
			double		elapsed = Seconds(s.phase_started_at, s.updated_at);

			values[15] = Float8GetDatum(elapsed * (s.total - s.done) / s.done);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

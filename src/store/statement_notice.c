/*
 * store/statement_notice.c
 *		NOTICEs summed over a statement (see statement_notice.h).
 *
 * Each tally lives in the per-query memory context of its statement, with a
 * reset callback on that context that reports it: the context goes away
 * when the executor that runs the statement ends (ExecutorEnd, also for a
 * query run through SPI), which is exactly "the end of the statement", with
 * no executor hook.  Tallies not yet reported are listed so that a context
 * living longer than one statement (PL/pgSQL's shared simple-expression
 * state lives until commit) is reported at pre-commit, while the
 * transaction can still send a NOTICE; an abort only forgets them.
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"

#include "store/statement_notice.h"

typedef struct TallyEntry
{
	MemoryContextCallback cb;
	struct TallyEntry *next;
	MemoryContext cxt;
	StatementTallyReport report;
	bool		done;			/* reported, or forgotten by an abort */
	StatementTally t;
} TallyEntry;

/* Tallies whose statement has not ended, in this transaction */
static TallyEntry *PendingTallies = NULL;
static bool XactCallbackRegistered = false;

/* Take an entry off the pending list (no-op when it is not there) */
static void
Unlist(TallyEntry *e)
{
	for (TallyEntry **p = &PendingTallies; *p; p = &(*p)->next)
		if (*p == e)
		{
			*p = e->next;
			return;
		}
}

/* Report an entry once, when it has something to report */
static void
ReportEntry(TallyEntry *e)
{
	if (e->done)
		return;
	e->done = true;
	if (e->t.hits > 0)
		e->report(&e->t);
}

/*
 * The statement's context goes away: report, unless the transaction is
 * aborting (the statement failed: its error said what went wrong)
 */
static void
TallyContextGone(void *arg)
{
	TallyEntry *e = (TallyEntry *) arg;

	Unlist(e);
	if (IsTransactionState())
		ReportEntry(e);
	else
		e->done = true;
}

/* Report what is pending before commit; forget it on abort */
static void
TallyXactCallback(XactEvent event, void *arg)
{
	TallyEntry *list = PendingTallies;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			/* the list is emptied first: a report that fails aborts cleanly */
			PendingTallies = NULL;
			for (TallyEntry *e = list; e; e = e->next)
				ReportEntry(e);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			PendingTallies = NULL;
			for (TallyEntry *e = list; e; e = e->next)
				e->done = true;
			break;
		default:
			break;
	}
}

/*
 * Get the tally of this call's statement for (report, model, version),
 * creating it (zeroed) on the statement's first call
 */
StatementTally *
StatementTallyGet(FunctionCallInfo fcinfo, StatementTallyReport report,
				  const char *model, int version)
{
	MemoryContext cxt = fcinfo->flinfo ? fcinfo->flinfo->fn_mcxt : CurrentMemoryContext;
	TallyEntry *e;

	for (e = PendingTallies; e; e = e->next)
		if (e->cxt == cxt && e->report == report && e->t.version == version &&
			strcmp(e->t.model, model) == 0)
			return &e->t;
	if (!XactCallbackRegistered)
	{
		RegisterXactCallback(TallyXactCallback, NULL);
		XactCallbackRegistered = true;
	}
	e = MemoryContextAllocZero(cxt, sizeof(TallyEntry));
	e->cxt = cxt;
	e->report = report;
	strlcpy(e->t.model, model, sizeof(e->t.model));
	e->t.version = version;
	e->cb.func = TallyContextGone;
	e->cb.arg = e;
	MemoryContextRegisterResetCallback(cxt, &e->cb);
	e->next = PendingTallies;
	PendingTallies = e;
	return &e->t;
}

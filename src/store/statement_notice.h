/*
 * store/statement_notice.h
 *		NOTICEs summed over a statement: one report when the statement ends
 *		instead of one per call.
 *
 * A function called once per row (fold_in in a LATERAL join, recommend over
 * a list of users) would otherwise repeat its NOTICE for every call.  A
 * caller gets the tally of its statement (the query whose per-query memory
 * context holds the call's FmgrInfo), adds to it, and the report function
 * it passed runs once when that context goes away (the query ended), or at
 * pre-commit for a context that outlives its statement (PL/pgSQL's simple
 * expressions keep one until the transaction ends).  Nothing is reported
 * for a statement that failed.
 */
#ifndef STATEMENT_NOTICE_H
#define STATEMENT_NOTICE_H

#include "postgres.h"

#include "fmgr.h"

/* What one statement's calls added up to, per model version */
typedef struct StatementTally
{
	char		model[NAMEDATALEN];
	int			version;
	int64		calls;			/* calls that counted themselves */
	int64		hits;			/* calls with something to report */
	int64		count[3];		/* the caller's sums */
	int64		first;			/* the caller's note on the first hit */
} StatementTally;

typedef void (*StatementTallyReport) (const StatementTally *t);

extern StatementTally *StatementTallyGet(FunctionCallInfo fcinfo, StatementTallyReport report,
										 const char *model, int version);

#endif

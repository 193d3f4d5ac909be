/*
 * aggstate.h
 *		Helpers shared by the aggregates whose bytea states start with a
 *		common header: checking, copying and allocating states, and
 *		compensated sums.
 */
#ifndef AGGSTATE_H
#define AGGSTATE_H

#include "postgres.h"

#include <math.h>

#include "fmgr.h"

/* Neumaier-compensated sum: value = sum + comp */
typedef struct CompensatedSum
{
	double		sum;
	double		comp;
} CompensatedSum;

/* Add x to a compensated sum */
static inline void
CompensatedAdd(CompensatedSum *acc, double x)
{
	double		t = acc->sum + x;

	if (fabs(acc->sum) >= fabs(x))
		acc->comp += (acc->sum - t) + x;
	else
		acc->comp += (x - t) + acc->sum;
	acc->sum = t;
}

/* Add a second compensated sum into the first */
static inline void
CompensatedMerge(CompensatedSum *acc, const CompensatedSum *other)
{
	CompensatedAdd(acc, other->sum);
	acc->comp += other->comp;
}

/* Get the value of a compensated sum */
static inline double
CompensatedValue(const CompensatedSum *acc)
{
	return acc->sum + acc->comp;
}

/*
 * Aggregate states are bytea values that start with this header, so that one
 * set of helpers can check and copy them.
 */
typedef struct RecsysStateHeader
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	uint32		magic;			/* one per aggregate */
	uint16		version;
	uint16		flags;			/* aggregate-specific */
} RecsysStateHeader;

extern RecsysStateHeader *StateGetArg(FunctionCallInfo fcinfo, int argno, uint32 magic,
									  uint16 version, const char *what);
extern RecsysStateHeader *StateGetWritable(FunctionCallInfo fcinfo, int argno,
										   RecsysStateHeader *state);
extern RecsysStateHeader *StateAlloc(Size size, uint32 magic, uint16 version,
									 const char *what);
extern bool StateCombineTrivial(FunctionCallInfo fcinfo, RecsysStateHeader *state1,
								RecsysStateHeader *state2, Datum *result);
extern void StateInvalid(const char *what, const char *detail) pg_attribute_noreturn();

#endif

/*
 * store/aggstate.h
 *		Helpers shared by the aggregates whose bytea states start with a
 *		common header: getting, copying and allocating states.  The layouts,
 *		validators and kernels themselves are in aggkernel.h.
 */
#ifndef AGGSTATE_H
#define AGGSTATE_H

#include "postgres.h"

#include "fmgr.h"

#include "compat.h"

/* the state layouts, validators and kernels (no PostgreSQL in there) */
#include "kernel/aggkernel.h"

/*
 * An aggregate state type: the magic and version of its header, its name in
 * errors, and its validator (src/kernel/aggkernel.c): NULL when the size
 * bytes at state hold a valid state, else the reason; deep also checks every
 * value, which is O(n) and needed for a state that did not come from our own
 * transition (validators whose checks are all cheap ignore it)
 */
typedef struct StateType
{
	const char *what;
	uint32		magic;
	uint16		version;
	const char *(*check) (const void *state, size_t size, bool deep);
} StateType;

extern void *StateGetChecked(FunctionCallInfo fcinfo, int argno, const StateType *type, bool deep);
extern RecsysStateHeader *StateGetArg(FunctionCallInfo fcinfo, int argno, uint32 magic,
									  uint16 version, const char *what);
extern RecsysStateHeader *StateGetWritable(FunctionCallInfo fcinfo, int argno,
										   RecsysStateHeader *state);
extern RecsysStateHeader *StateAlloc(Size size, uint32 magic, uint16 version,
									 const char *what);
extern bool StateCombineTrivial(FunctionCallInfo fcinfo, RecsysStateHeader *state1,
								RecsysStateHeader *state2, Datum *result);
RecsysNoreturn extern void StateInvalid(const char *what, const char *detail);

#endif

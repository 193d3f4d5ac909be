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

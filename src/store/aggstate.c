/*
 * store/aggstate.c
 *		Checking, copying and allocating bytea aggregate states.
 *
 * A state that has to grow, or one that is not ours to modify, is rebuilt
 * in the current (per-call) memory context: the executor copies a returned
 * value that is not the old state into the aggregate context and frees the
 * old one.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/memutils.h"

#include "compat.h"
#include "store/aggstate.h"

/* Raise the error for a malformed aggregate state */
void
StateInvalid(const char *what, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("invalid %s state", what),
			 detail ? errdetail("%s", detail) : 0));
}

/*
 * Get argument argno as an aggregate state with the given magic and version,
 * detoasted and 8-byte aligned; the caller checks the rest of the layout
 */
RecsysStateHeader *
StateGetArg(FunctionCallInfo fcinfo, int argno, uint32 magic, uint16 version,
			const char *what)
{
	bytea	   *raw = PG_GETARG_BYTEA_P(argno);
	RecsysStateHeader *state = (RecsysStateHeader *) raw;

	if (VARSIZE(raw) < sizeof(RecsysStateHeader) || state->magic != magic)
		StateInvalid(what, NULL);
	if (state->version != version)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("unsupported %s state version %d", what, state->version)));
	if (((uintptr_t) state) % sizeof(double) != 0)
	{
		/* a state read from a tuple may be only int-aligned */
		RecsysStateHeader *copy = palloc(VARSIZE(state));

		memcpy(copy, state, VARSIZE(state));
		state = copy;
	}
	return state;
}

/*
 * Get argument argno as a state of the given type that its validator
 * accepts, detoasted and 8-byte aligned, or raise invalid_binary_representation
 * with the validator's reason: the one way an aggregate's support function
 * reads a state
 */
void *
StateGetChecked(FunctionCallInfo fcinfo, int argno, const StateType *type, bool deep)
{
	RecsysStateHeader *state = StateGetArg(fcinfo, argno, type->magic, type->version, type->what);
	const char *bad = type->check(state, VARSIZE(state), deep);

	if (bad)
		StateInvalid(type->what, bad);
	return state;
}

/*
 * Get a state the caller may modify: argument argno itself when called as an
 * aggregate (in-place update), else a copy in the current memory context, so
 * that a direct SQL call never writes into a value it does not own
 */
RecsysStateHeader *
StateGetWritable(FunctionCallInfo fcinfo, int argno, RecsysStateHeader *state)
{
	RecsysStateHeader *copy;

	if (AggCheckCallContext(fcinfo, NULL) &&
		(Pointer) state == DatumGetPointer(PG_GETARG_DATUM(argno)))
		return state;
	copy = palloc(VARSIZE(state));
	memcpy(copy, state, VARSIZE(state));
	return copy;
}

/* Allocate a zeroed state of size bytes in the current memory context */
RecsysStateHeader *
StateAlloc(Size size, uint32 magic, uint16 version, const char *what)
{
	RecsysStateHeader *state;

	if (!AllocSizeIsValid(size))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s state would exceed 1 GB", what)));
	state = (RecsysStateHeader *) palloc0(size);
	SET_VARSIZE(state, size);
	state->magic = magic;
	state->version = version;
	return state;
}

/*
 * Settle a combine call in which either state is NULL: returns true when the
 * result is decided (the other state, a copy of state2, or SQL NULL with
 * fcinfo->isnull set) and stores it in *result
 */
bool
StateCombineTrivial(FunctionCallInfo fcinfo, RecsysStateHeader *state1,
					RecsysStateHeader *state2, Datum *result)
{
	RecsysStateHeader *copy;

	if (state2 == NULL)
	{
		fcinfo->isnull = (state1 == NULL);
		*result = PointerGetDatum(state1);
		return true;
	}
	if (state1 != NULL)
		return false;
	/* a copy in the current context; the executor moves it into its own */
	copy = palloc(VARSIZE(state2));
	memcpy(copy, state2, VARSIZE(state2));
	*result = PointerGetDatum(copy);
	return true;
}

/*
 * compat.h
 *		Every use of an API that differs between PostgreSQL major versions.
 *
 * recsys is built and tested on PostgreSQL 15, 17 and 18 (see README.md);
 * the guards below are the only version-specific code.  The JSON part is
 * also used by the frontend (-DFRONTEND) build of safetensors.c in the fuzz
 * target, so it needs nothing from the backend.
 */
#ifndef RECSYS_COMPAT_H
#define RECSYS_COMPAT_H

#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include "common/jsonapi.h"

/* VARSIZE, SET_VARSIZE and VARDATA left postgres.h for varatt.h in 16 */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/*
 * Marks a function that never returns; written before the declaration.
 * 18 replaced the trailing pg_attribute_noreturn() with a leading
 * pg_noreturn; GCC and Clang take the older attribute in front as well.
 */
#if PG_VERSION_NUM >= 180000
#define RecsysNoreturn pg_noreturn
#else
#define RecsysNoreturn pg_attribute_noreturn()
#endif

/*
 * What a JSON semantic-action callback returns: nothing up to 15; from 16
 * the parser reads a JsonParseErrorType and stops on anything but
 * JSON_SUCCESS.  A callback ends with `return RECSYS_JSON_CONTINUE;`.
 */
#if PG_VERSION_NUM >= 160000
typedef JsonParseErrorType RecsysJsonResult;
#define RECSYS_JSON_CONTINUE JSON_SUCCESS
#else
typedef void RecsysJsonResult;
#define RECSYS_JSON_CONTINUE
#endif

/*
 * A lexer over json[0..len) in UTF-8, and its release (with the de-escaped
 * string buffer it may own).  17 takes an optional context to fill and a
 * size_t length, and frees its own parts with freeJsonLexContext.
 */
#if PG_VERSION_NUM >= 170000
#define RecsysJsonLexer(json, len, need_escapes) \
	makeJsonLexContextCstringLen(NULL, (json), (size_t) (len), PG_UTF8, (need_escapes))
#define RecsysFreeJsonLexer(lex) freeJsonLexContext(lex)
#else
#define RecsysJsonLexer(json, len, need_escapes) \
	makeJsonLexContextCstringLen((json), (int) (len), PG_UTF8, (need_escapes))
static inline void
RecsysFreeJsonLexer(JsonLexContext *lex)
{
	if (lex->strval)
	{
		pfree(lex->strval->data);
		pfree(lex->strval);
	}
	pfree(lex);
}
#endif

#ifndef FRONTEND
#include "storage/proc.h"

/* The local transaction id of this backend's current transaction */
#if PG_VERSION_NUM >= 170000
#define RecsysLocalXid() (MyProc->vxid.lxid)
#else
#define RecsysLocalXid() (MyProc->lxid)
#endif
#endif							/* !FRONTEND */

/* This backend's index among the MaxBackends backends (-1: none) */
#if PG_VERSION_NUM >= 170000
#define RecsysBackendIndex() ((int) MyProcNumber)
#else
#define RecsysBackendIndex() (MyBackendId - 1)
#endif

#endif

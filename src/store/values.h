/*
 * store/values.h
 *		Values of a caller's columns, read by their built-in type: the
 *		integer and number types that RecsysColumnType (spi_safe.c) admits,
 *		read as C's int64 and double the way SQL's casts to bigint and
 *		float8 would.  Inline: every loader and encoder calls them per row.
 */
#ifndef STORE_VALUES_H
#define STORE_VALUES_H

#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/fmgrprotos.h"

/* Get a smallint, integer or bigint value as int64 */
static inline int64
RecsysIntValue(Datum d, Oid type)
{
	switch (type)
	{
		case INT2OID:
			return DatumGetInt16(d);
		case INT4OID:
			return DatumGetInt32(d);
		case INT8OID:
			return DatumGetInt64(d);
	}
	elog(ERROR, "unexpected integer type %u", type);
	return 0;
}

/* Get a value of an integer type, real, double precision or numeric as double */
static inline double
RecsysNumberValue(Datum d, Oid type)
{
	switch (type)
	{
		case INT2OID:
			return DatumGetInt16(d);
		case INT4OID:
			return DatumGetInt32(d);
		case INT8OID:
			return (double) DatumGetInt64(d);
		case FLOAT4OID:
			return DatumGetFloat4(d);
		case FLOAT8OID:
			return DatumGetFloat8(d);
		case NUMERICOID:
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
	}
	elog(ERROR, "unexpected number type %u", type);
	return 0.0;
}

#endif

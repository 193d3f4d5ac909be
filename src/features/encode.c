/*
 * features/encode.c
 *		Apply a fitted feature spec to rows: check the columns of a relation
 *		or tuple descriptor against the spec (by exact built-in type OID,
 *		before any row is read: a caller's own type could carry a cast or
 *		operator that runs as the caller), and turn one row's values into
 *		dense floats, categorical ids and multi-categorical id lists.
 *
 * Nothing here looks anything up per row: a binding (attribute numbers and
 * types) is made once per tuple descriptor, and vocabularies are hash
 * tables built when the model was loaded.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"

#include "features/internal.h"
#include "features/spec.h"
#include "store/spi_safe.h"
#include "store/values.h"

/* The types each kind reads (exact OIDs), for RecsysColumnType */
static const Oid NumericTypes[] = {INT2OID, INT4OID, INT8OID, FLOAT4OID, FLOAT8OID, NUMERICOID};
static const Oid CategoricalTypes[] = {TEXTOID, VARCHAROID, INT2OID, INT4OID, INT8OID, BOOLOID};
static const Oid MultiTypes[] = {TEXTARRAYOID, VARCHARARRAYOID, INT2ARRAYOID, INT4ARRAYOID,
INT8ARRAYOID, BOOLARRAYOID};
static const Oid VectorTypes[] = {FLOAT4ARRAYOID, FLOAT8ARRAYOID};

static const Oid *const KindTypes[] = {NumericTypes, CategoricalTypes, MultiTypes, VectorTypes};
static const int KindNTypes[] = {lengthof(NumericTypes), lengthof(CategoricalTypes),
lengthof(MultiTypes), lengthof(VectorTypes)};

/* Tell whether a type is one a column of this kind may have */
static bool
TypeAllowed(FeatureKind kind, Oid type)
{
	for (int i = 0; i < KindNTypes[kind]; i++)
		if (KindTypes[kind][i] == type)
			return true;
	return false;
}

/* The types each kind reads, for messages */
static const char *const AllowedNames[] = {
	"smallint, integer, bigint, real, double precision or numeric",
	"text, varchar, smallint, integer, bigint or boolean",
	"text[], varchar[], smallint[], integer[], bigint[] or boolean[]",
	"real[] or double precision[]"
};

/* Get the kind of vocabulary values an allowed categorical (or array) type gives */
FeatureValueType
FeatureTypeValues(Oid type)
{
	switch (type)
	{
		case TEXTOID:
		case VARCHAROID:
		case TEXTARRAYOID:
		case VARCHARARRAYOID:
			return FEATURE_VALUES_TEXT;
		case BOOLOID:
		case BOOLARRAYOID:
			return FEATURE_VALUES_BOOL;
		default:
			return FEATURE_VALUES_INT;
	}
}

/* Raise an error unless type is one the column may have (and, fitted, gives its vocabulary's values) */
static void
CheckType(const FeatureSpec *spec, const FeatureColumn *c, Oid type, const char *what)
{
	static const char *const vtypes[] = {"text", "integer", "boolean"};

	if (!TypeAllowed(c->kind, type))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of %s has type %s, but %s features read %s",
						c->column, what, format_type_be(type), FeatureKindName(c->kind),
						AllowedNames[c->kind]),
				 errdetail("Types are checked exactly: a domain or another type is not read, even when it has a cast."),
				 errhint("Select the column as one of those types in a view, or cast it in the query that builds the table.")));
	if (spec->fitted && (c->kind == FEATURE_KIND_CATEGORICAL || c->kind == FEATURE_KIND_MULTI) &&
		FeatureTypeValues(type) != c->vtype)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of %s has type %s, but its vocabulary was fitted on %s values",
						c->column, what, format_type_be(type), vtypes[c->vtype])));
}

/* Raise the error for a column the spec names and the relation or row lacks */
static void
MissingColumn(const FeatureColumn *c, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("column \"%s\" of %s does not exist", c->column, what),
			 errdetail("The feature spec reads it as a %s feature.", FeatureKindName(c->kind))));
}

/*
 * Check every column of a spec against a relation with the store's shared
 * check (src/store/spi_safe.c: a real column, of an exact built-in type its
 * kind reads, the relation locked until the transaction ends), and a fitted
 * vocabulary's value type.  Run before any row is read.
 */
void
FeatureCheckRelation(const FeatureSpec *spec, Oid relid)
{
	char	   *what = psprintf("relation %s", RecsysRelationSqlName(relid));

	for (int i = 0; i < spec->ncolumns; i++)
	{
		const FeatureColumn *c = &spec->columns[i];
		Oid			type = RecsysColumnType(relid, c->column,
											psprintf("%s feature", FeatureKindName(c->kind)),
											KindTypes[c->kind], KindNTypes[c->kind]);

		CheckType(spec, c, type, what);
	}
}

/* Get the select list of a spec's columns in spec order: quoted names, no casts */
char *
FeatureSelectList(const FeatureSpec *spec)
{
	StringInfoData s;

	initStringInfo(&s);
	for (int i = 0; i < spec->ncolumns; i++)
		appendStringInfo(&s, "%s%s", i ? ", " : "", quote_identifier(spec->columns[i].column));
	return s.data;
}

/* How a step reads a categorical or vector value: the column's type */
typedef enum FeatureReader
{
	READ_INT2,
	READ_INT4,
	READ_INT8,
	READ_TEXT,					/* text, varchar */
	READ_BOOL,
	READ_FLOAT4_ARRAY,
	READ_OTHER					/* the generic readers (arrays of multi_categorical, float8[]) */
} FeatureReader;

/*
 * What encoding does with one column of a bound spec, compiled from the
 * spec and the column's type when the binding is made: a row then reads a
 * few bytes per column instead of the spec's column entries, and the
 * numeric transforms have their divisors ready
 */
typedef struct FeatureStep
{
	FeatureKind kind;
	FeatureReader reader;
	int			att;			/* index of the value: attnum - 1 */
	int			column;			/* spec column */
	int			out;			/* dense offset, id slot or bag */
	Oid			type;
	/* numeric: (x' - offset) / divisor, x' = log1p(x) under log1p_standardize */
	FeatureTransform transform;
	double		offset;
	double		divisor;		/* 0 (minmax with max = min): the output is 0 */
	float		null_out;
	/* vector */
	int			length;
	/* categorical: a frozen vocabulary's by-value index, when it has one */
	const int32 *direct;
	int64		low;
	uint64		span;
	int32		oov_id;
	int32		null_id;
} FeatureStep;

/* Get the reader of a column type */
static FeatureReader
ReaderOf(FeatureKind kind, Oid type)
{
	switch (type)
	{
		case INT2OID:
			return READ_INT2;
		case INT4OID:
			return READ_INT4;
		case INT8OID:
			return READ_INT8;
		case TEXTOID:
		case VARCHAROID:
			return READ_TEXT;
		case BOOLOID:
			return READ_BOOL;
		case FLOAT4ARRAYOID:
			return kind == FEATURE_KIND_VECTOR ? READ_FLOAT4_ARRAY : READ_OTHER;
	}
	return READ_OTHER;
}

/* Compile the steps of a binding (its attnum and atttype set) */
static void
CompileSteps(FeatureBinding *b)
{
	const FeatureSpec *spec = b->spec;

	b->steps = palloc0(sizeof(FeatureStep) * Max(spec->ncolumns, 1));
	for (int i = 0; i < spec->ncolumns; i++)
	{
		const FeatureColumn *c = &spec->columns[i];
		FeatureStep *st = &b->steps[i];

		st->kind = c->kind;
		st->reader = ReaderOf(c->kind, b->atttype[i]);
		st->att = b->attnum[i] - 1;
		st->column = i;
		st->out = c->index;
		st->type = b->atttype[i];
		st->length = c->length;
		if (c->kind == FEATURE_KIND_NUMERIC)
		{
			/* the operands of FeatureNumericApply, computed as it computes them */
			st->transform = c->num.transform;
			st->null_out = c->num.null_out;
			if (c->num.transform == FEATURE_MINMAX)
			{
				st->offset = c->num.min;
				st->divisor = c->num.max > c->num.min ? c->num.max - c->num.min : 0.0;
			}
			else
			{
				st->offset = c->num.mean;
				st->divisor = c->num.std > 0.0 ? c->num.std : 1.0;
			}
		}
		if (c->kind == FEATURE_KIND_CATEGORICAL && c->vocab != NULL &&
			st->reader != READ_TEXT)
			st->direct = FeatureVocabDirect(c->vocab, &st->low, &st->span);
		if (st->direct)
		{
			st->oov_id = FeatureVocabCount(c->vocab);
			st->null_id = st->oov_id + 1;
		}
	}
}

/* Make an empty binding */
static FeatureBinding *
NewBinding(const FeatureSpec *spec, int natts)
{
	FeatureBinding *b = palloc(sizeof(FeatureBinding));

	b->spec = spec;
	b->natts = natts;
	b->attnum = palloc(sizeof(AttrNumber) * spec->ncolumns);
	b->atttype = palloc(sizeof(Oid) * spec->ncolumns);
	return b;
}

/*
 * Bind a spec to a list of named values (names[i] NULL: a dropped column,
 * never matched) of the given types: missing columns and wrong types are
 * errors naming the column.  what names the row in messages.
 */
FeatureBinding *
FeatureBindList(const FeatureSpec *spec, int n, const char *const *names, const Oid *types,
				const char *what)
{
	FeatureBinding *b = NewBinding(spec, n);

	for (int i = 0; i < spec->ncolumns; i++)
	{
		const FeatureColumn *c = &spec->columns[i];
		int			att = -1;

		for (int a = 0; a < n && att < 0; a++)
			if (names[a] != NULL && strcmp(names[a], c->column) == 0)
				att = a;
		if (att < 0)
			MissingColumn(c, what);
		CheckType(spec, c, types[att], what);
		b->attnum[i] = att + 1;
		b->atttype[i] = types[att];
	}
	CompileSteps(b);
	return b;
}

/*
 * Bind a spec to a tuple descriptor by column name (a row value of any
 * composite type), as FeatureBindList does
 */
FeatureBinding *
FeatureBindNames(const FeatureSpec *spec, TupleDesc desc, const char *what)
{
	const char **names = palloc(sizeof(char *) * Max(desc->natts, 1));
	Oid		   *types = palloc(sizeof(Oid) * Max(desc->natts, 1));
	FeatureBinding *b;

	for (int a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, a);

		names[a] = attr->attisdropped ? NULL : NameStr(attr->attname);
		types[a] = attr->atttypid;
	}
	b = FeatureBindList(spec, desc->natts, names, types, what);
	pfree(names);
	pfree(types);
	return b;
}

/*
 * Bind a spec to the columns first, first + 1, ... (1-based) of a tuple
 * descriptor, as a query over FeatureSelectList gives them
 */
FeatureBinding *
FeatureBindPositions(const FeatureSpec *spec, TupleDesc desc, int first, const char *what)
{
	FeatureBinding *b = NewBinding(spec, desc->natts);

	if (first < 1 || first - 1 + spec->ncolumns > desc->natts)
		elog(ERROR, "feature columns %d.. are not in a tuple of %d columns", first, desc->natts);
	for (int i = 0; i < spec->ncolumns; i++)
	{
		Oid			type = TupleDescAttr(desc, first - 1 + i)->atttypid;

		CheckType(spec, &spec->columns[i], type, what);
		b->attnum[i] = first + i;
		b->atttype[i] = type;
	}
	CompileSteps(b);
	return b;
}

/* Raise the error for a raw value its column's transform does not take */
static void
InvalidNumber(const FeatureColumn *c, double x)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("numeric feature \"%s\" has the value %g", c->column, x),
			 errdetail(c->num.transform == FEATURE_LOG1P_STANDARDIZE
					   ? "Values must be finite and more than -1 under log1p_standardize."
					   : "Values must be finite (NULL is allowed).")));
}

/* Get a numeric column's value as float8, checked for its transform */
double
FeatureReadNumber(const FeatureColumn *c, Oid type, Datum d)
{
	double		x = RecsysNumberValue(d, type);

	if (!FeatureValueValid(c->num.transform, x))
		InvalidNumber(c, x);
	return x;
}

/* Get a categorical value as a vocabulary key: an int64, or text bytes */
void
FeatureReadKey(Oid type, Datum d, int64 *ival, const char **s, int *len)
{
	*s = NULL;
	*len = 0;
	*ival = 0;
	switch (type)
	{
		case TEXTOID:
		case VARCHAROID:
			{
				text	   *t = (text *) DatumGetPointer(d);

				/* a call only for a value stored apart or compressed: most are neither */
				if (VARATT_IS_EXTERNAL(t) || VARATT_IS_COMPRESSED(t))
					t = DatumGetTextPP(d);

				*s = VARDATA_ANY(t);
				*len = VARSIZE_ANY_EXHDR(t);
				break;
			}
		case BOOLOID:
			*ival = DatumGetBool(d) ? 1 : 0;
			break;
		default:
			*ival = RecsysIntValue(d, type);
	}
}

/* Get the element type of an allowed array type, and its storage */
static Oid
ElementType(Oid type, int16 *len, bool *byval, char *align)
{
	switch (type)
	{
		case TEXTARRAYOID:
			*len = -1, *byval = false, *align = TYPALIGN_INT;
			return TEXTOID;
		case VARCHARARRAYOID:
			*len = -1, *byval = false, *align = TYPALIGN_INT;
			return VARCHAROID;
		case INT2ARRAYOID:
			*len = 2, *byval = true, *align = TYPALIGN_SHORT;
			return INT2OID;
		case INT4ARRAYOID:
			*len = 4, *byval = true, *align = TYPALIGN_INT;
			return INT4OID;
		case INT8ARRAYOID:
			*len = 8, *byval = FLOAT8PASSBYVAL, *align = TYPALIGN_DOUBLE;
			return INT8OID;
		case BOOLARRAYOID:
			*len = 1, *byval = true, *align = TYPALIGN_CHAR;
			return BOOLOID;
		case FLOAT4ARRAYOID:
			*len = 4, *byval = true, *align = TYPALIGN_INT;
			return FLOAT4OID;
		case FLOAT8ARRAYOID:
			*len = 8, *byval = FLOAT8PASSBYVAL, *align = TYPALIGN_DOUBLE;
			return FLOAT8OID;
	}
	elog(ERROR, "unexpected array feature type %u", type);
	return InvalidOid;
}

/* Get the elements of a multi_categorical value (any shape, read in storage order) */
int
FeatureReadArray(const FeatureColumn *c, Oid type, Datum d, Datum **elems, bool **nulls)
{
	ArrayType  *a = DatumGetArrayTypeP(d);
	int16		len;
	bool		byval;
	char		align;
	Oid			elem = ElementType(type, &len, &byval, &align);
	int			n;

	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("multi_categorical feature \"%s\" has a %d-dimensional array", c->column, ARR_NDIM(a)),
				 errdetail("Arrays of ids must be one-dimensional.")));
	deconstruct_array(a, elem, len, byval, align, elems, nulls, &n);
	return n;
}

/*
 * Get the floats of a vector value, copied or converted into buf (buflen
 * floats); errors name the column
 */
const float *
FeatureReadVector(const FeatureColumn *c, Oid type, Datum d, int *len, float *buf, int buflen)
{
	struct varlena *p = (struct varlena *) DatumGetPointer(d);
	union
	{
		ArrayType	a;
		char		bytes[VARHDRSZ + VARATT_SHORT_MAX];
		double		align;
	}			local;
	ArrayType  *a;
	int			n;
	const float *out;

	/*
	 * A short array (most vectors of a table row) gets the 4-byte header
	 * the array macros need in a local copy, as the detoaster would make it
	 * in a palloc'd one: rows pay no allocation.
	 */
	if (VARATT_IS_SHORT(p))
	{
		Size		size = VARSIZE_SHORT(p) - VARHDRSZ_SHORT;

		SET_VARSIZE(&local.a, size + VARHDRSZ);
		memcpy(VARDATA(&local.a), VARDATA_SHORT(p), size);
		a = &local.a;
	}
	else
		a = DatumGetArrayTypeP(d);
	n = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));

	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("vector feature \"%s\" has a %d-dimensional array", c->column, ARR_NDIM(a))));
	if (ARR_HASNULL(a) && array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("vector feature \"%s\" has NULL elements", c->column)));
	*len = n;
	if (c->length > 0 && n != c->length)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("vector feature \"%s\" has %d elements, but the spec's length is %d",
						c->column, n, c->length)));
	if (n > buflen)
		elog(ERROR, "vector buffer too small");
	if (type == FLOAT4ARRAYOID)
		memcpy(buf, ARR_DATA_PTR(a), sizeof(float) * n);
	else
	{
		const double *x = (const double *) ARR_DATA_PTR(a);

		for (int i = 0; i < n; i++)
			buf[i] = (float) x[i];
	}
	out = buf;
	for (int i = 0; i < n; i++)
		if (!isfinite(out[i]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("vector feature \"%s\" has NaN or infinite elements (as float4)", c->column)));
	return out;
}

/* Make room for more ids in a list (in the list's context: where it was first grown) */
void
FeatureIdListReserve(FeatureIdList *l, int64 more)
{
	int64		need = l->len + more;
	int64		cap;

	if (need <= l->cap)
		return;
	cap = Max(l->cap * 2, Max(need, 64));
	l->ids = l->ids ? repalloc_huge(l->ids, sizeof(int32) * cap)
		: MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int32) * cap);
	l->cap = cap;
}

/* Get the id of a value in a fitted vocabulary: its id, or the OOV id */
static inline int32
VocabId(const FeatureColumn *c, Oid type, Datum d)
{
	int64		ival;
	const char *s;
	int			len;
	int32		id;

	FeatureReadKey(type, d, &ival, &s, &len);
	id = FeatureVocabLookup(c->vocab, ival, s, len);
	return id >= 0 ? id : FeatureVocabCount(c->vocab);
}

/*
 * The values of a row, as the caller holds them: arrays indexed by
 * attribute number - 1, or a function call's arguments
 */
typedef struct RowValues
{
	const Datum *values;
	const bool *nulls;
	const NullableDatum *args;
} RowValues;

static void EncodeRow(const FeatureBinding *b, RowValues row, float *dense, int32 *ids,
					  int64 *bag_start, int32 *bag_len, FeatureIdList *bag_ids,
					  FeatureProbes *probes, bool copy);

/*
 * Encode one row of values (indexed by attribute number - 1) with a fitted
 * spec: dense[dense_dim], ids[ncategorical], and for multi_categorical
 * column k its ids appended to bag_ids, from bag_start[k], bag_len[k] long.
 * Unseen values get the OOV id, NULLs the NULL id (a NULL array one NULL
 * id), NULL numerics the spec's NULL value, NULL vectors zeros.
 */
void
FeatureEncode(const FeatureBinding *b, const Datum *values, const bool *nulls, float *dense,
			  int32 *ids, int64 *bag_start, int32 *bag_len, FeatureIdList *bag_ids)
{
	FeatureProbes probes;
	RowValues	row = {values, nulls, NULL};

	EncodeRow(b, row, dense, ids, bag_start, bag_len, bag_ids, &probes, false);
	FeatureResolve(b->spec, &probes);
}

/*
 * Encode one row as FeatureEncode does, its values given as a function
 * call's arguments (a binding's attribute number k is args[k - 1]): read
 * where the executor put them, with no copy
 */
void
FeatureEncodeArgs(const FeatureBinding *b, const NullableDatum *args, float *dense, int32 *ids,
				  int64 *bag_start, int32 *bag_len, FeatureIdList *bag_ids)
{
	FeatureProbes probes;
	RowValues	row = {NULL, NULL, args};

	EncodeRow(b, row, dense, ids, bag_start, bag_len, bag_ids, &probes, false);
	FeatureResolve(b->spec, &probes);
}

/*
 * Encode a row as FeatureEncode does, except the lookups of its categorical
 * values, which are only probed (their vocabulary slots requested from
 * memory) and left in *pending, for FeatureResolve once the caller has done
 * other work, e.g. encoded the next row: a caller with rows to spare gives
 * the cache misses of lookups in large vocabularies a row's time to arrive
 */
void
FeatureEncodeDeferred(const FeatureBinding *b, const Datum *values, const bool *nulls,
					  float *dense, int32 *ids, int64 *bag_start, int32 *bag_len,
					  FeatureIdList *bag_ids, FeatureProbes *pending)
{
	RowValues	row = {values, nulls, NULL};

	EncodeRow(b, row, dense, ids, bag_start, bag_len, bag_ids, pending, true);
}

/* Look up the probed categorical values of a row into its ids */
void
FeatureResolve(const FeatureSpec *spec, FeatureProbes *pending)
{
	for (int k = 0; k < pending->n; k++)
	{
		const FeatureKey *key = &pending->keys[k];
		const FeatureColumn *c = &spec->columns[key->column];
		int32		id = FeatureVocabLookupHashed(c->vocab, key->hash, key->ival, key->s, key->len);

		pending->ids[c->index] = id >= 0 ? id : FeatureVocabCount(c->vocab);
	}
	pending->n = 0;
}

/* Get the value of attribute index a of a row, and whether it is NULL */
static pg_attribute_always_inline Datum
RowValue(RowValues row, int a, bool *isnull)
{
	if (row.args)
	{
		*isnull = row.args[a].isnull;
		return row.args[a].value;
	}
	*isnull = row.nulls[a];
	return row.values[a];
}

/* Get a categorical value as a vocabulary key (FeatureReadKey by a step's reader) */
static pg_attribute_always_inline void
StepKey(const FeatureStep *st, Datum d, int64 *ival, const char **s, int *len)
{
	switch (st->reader)
	{
		case READ_INT4:
			*ival = DatumGetInt32(d), *s = NULL, *len = 0;
			break;
		case READ_INT8:
			*ival = DatumGetInt64(d), *s = NULL, *len = 0;
			break;
		case READ_BOOL:
			*ival = DatumGetBool(d) ? 1 : 0, *s = NULL, *len = 0;
			break;
		default:
			FeatureReadKey(st->type, d, ival, s, len);
	}
}

/*
 * Get a numeric column's transformed value (FeatureReadNumber and
 * FeatureNumericApply, by a step: the same operations in the same order)
 */
static pg_attribute_always_inline float
StepNumber(const FeatureSpec *spec, const FeatureStep *st, Datum d)
{
	double		x = RecsysNumberValue(d, st->type);

	if (unlikely(!FeatureValueValid(st->transform, x)))
		InvalidNumber(&spec->columns[st->column], x);
	if (st->transform == FEATURE_MINMAX)
		return st->divisor != 0.0 ? (float) ((x - st->offset) / st->divisor) : 0.0f;
	if (st->transform == FEATURE_LOG1P_STANDARDIZE)
		x = log1p(x);
	return (float) ((x - st->offset) / st->divisor);
}

/*
 * Copy a vector column's floats to out: a short (1-byte header) real[] of
 * one dimension without NULLs is read where it lies, its floats at the
 * offset they have behind a 4-byte header less the 3 bytes the short header
 * saves; anything else goes through FeatureReadVector
 */
static pg_attribute_always_inline void
StepVector(const FeatureSpec *spec, const FeatureStep *st, Datum d, float *out)
{
	const char *p = (const char *) DatumGetPointer(d);

/* the address of byte off (off >= VARHDRSZ) of the array as it is behind a 4-byte header */
#define SHORT_ARRAY_AT(off) (p + VARHDRSZ_SHORT + (off) - VARHDRSZ)
	if (st->reader == READ_FLOAT4_ARRAY && VARATT_IS_SHORT(p) && st->length > 0)
	{
		Size		size = VARSIZE_SHORT(p) - VARHDRSZ_SHORT + VARHDRSZ;
		int32		ndim;
		int32		dataoffset;
		int32		dim;

		if (size >= ARR_OVERHEAD_NONULLS(1))
		{
			memcpy(&ndim, SHORT_ARRAY_AT(offsetof(ArrayType, ndim)), sizeof(int32));
			memcpy(&dataoffset, SHORT_ARRAY_AT(offsetof(ArrayType, dataoffset)), sizeof(int32));
			memcpy(&dim, SHORT_ARRAY_AT(sizeof(ArrayType)), sizeof(int32));
			if (ndim == 1 && dataoffset == 0 && dim == st->length &&
				size == ARR_OVERHEAD_NONULLS(1) + sizeof(float) * (Size) dim)
			{
				const char *src = SHORT_ARRAY_AT(ARR_OVERHEAD_NONULLS(1));
				bool		finite = true;

				/* float by float: a memcpy of a length known only here is a slow rep movsb */
				for (int i = 0; i < dim; i++)
				{
					float		v;

					memcpy(&v, src + sizeof(float) * i, sizeof(float));
					out[i] = v;
					finite &= isfinite(v) != 0;
				}
				if (finite)
					return;
			}
		}
	}
#undef SHORT_ARRAY_AT
	{
		int			len;
		const float *v = FeatureReadVector(&spec->columns[st->column], st->type, d, &len, out,
										   st->length);

		if (v != out)
			memcpy(out, v, sizeof(float) * len);
	}
}

/*
 * Encode one row (see FeatureEncode) by the binding's steps, its text
 * categorical values probed into *probes and not looked up; copy: text
 * values are copied into the probes (values longer than
 * FEATURE_PROBED_BYTES are looked up at once)
 */
static pg_attribute_always_inline void
EncodeRowImpl(const FeatureBinding *b, RowValues row, float *dense, int32 *ids, int64 *bag_start,
			  int32 *bag_len, FeatureIdList *bag_ids, FeatureProbes *probes, bool copy)
{
	const FeatureSpec *spec = b->spec;
	const FeatureStep *steps = b->steps;
	int			ncolumns = spec->ncolumns;

	/*
	 * The categorical values first: each is hashed and its vocabulary slot
	 * requested, so that the cache misses of the lookups (vocabularies far
	 * larger than the caches) overlap each other and the numeric work; a
	 * vocabulary indexed by value is looked up at once
	 */
	probes->n = 0;
	probes->ids = ids;
	for (int i = 0; i < ncolumns; i++)
	{
		const FeatureStep *st = &steps[i];
		const FeatureColumn *c;
		FeatureKey *k;
		bool		isnull;
		Datum		d;

		if (st->kind != FEATURE_KIND_CATEGORICAL)
			continue;
		d = RowValue(row, st->att, &isnull);
		if (st->direct)
		{
			int64		ival;
			const char *s;
			int			len;
			uint64		u;

			if (isnull)
			{
				ids[st->out] = st->null_id;
				continue;
			}
			StepKey(st, d, &ival, &s, &len);
			u = (uint64) ival - (uint64) st->low;
			ids[st->out] = u < st->span && st->direct[u] >= 0 ? st->direct[u] : st->oov_id;
			continue;
		}
		c = &spec->columns[i];
		if (isnull)
		{
			ids[st->out] = FeatureVocabCount(c->vocab) + 1;
			continue;
		}
		if (probes->n == FEATURE_PROBED_KEYS)
		{
			ids[st->out] = VocabId(c, st->type, d);
			continue;
		}
		k = &probes->keys[probes->n];
		StepKey(st, d, &k->ival, &k->s, &k->len);
		if (copy && k->s != NULL)
		{
			if (k->len > FEATURE_PROBED_BYTES)
			{
				ids[st->out] = VocabId(c, st->type, d);
				continue;
			}
			memcpy(probes->bytes + probes->n * FEATURE_PROBED_BYTES, k->s, k->len);
			k->s = probes->bytes + probes->n * FEATURE_PROBED_BYTES;
		}
		k->column = i;
		k->hash = FeatureVocabProbe(c->vocab, k->ival, k->s, k->len);
		probes->n++;
	}
	for (int i = 0; i < ncolumns; i++)
	{
		const FeatureStep *st = &steps[i];
		bool		isnull;
		Datum		d;

		if (st->kind == FEATURE_KIND_CATEGORICAL)
			continue;
		d = RowValue(row, st->att, &isnull);
		switch (st->kind)
		{
			case FEATURE_KIND_NUMERIC:
				dense[st->out] = isnull ? st->null_out : StepNumber(spec, st, d);
				break;
			case FEATURE_KIND_VECTOR:
				if (isnull)
					memset(dense + st->out, 0, sizeof(float) * st->length);
				else
					StepVector(spec, st, d, dense + st->out);
				break;
			case FEATURE_KIND_MULTI:
				{
					const FeatureColumn *c = &spec->columns[i];
					int32		null_id = FeatureVocabCount(c->vocab) + 1;

					bag_start[st->out] = bag_ids->len;
					if (isnull)
					{
						FeatureIdListReserve(bag_ids, 1);
						bag_ids->ids[bag_ids->len++] = null_id;
						bag_len[st->out] = 1;
					}
					else
					{
						Datum	   *elems;
						bool	   *enulls;
						int			n = FeatureReadArray(c, st->type, d, &elems, &enulls);
						Oid			etype = st->type == TEXTARRAYOID ? TEXTOID : st->type == VARCHARARRAYOID ? VARCHAROID
							: st->type == INT2ARRAYOID ? INT2OID : st->type == INT4ARRAYOID ? INT4OID
							: st->type == INT8ARRAYOID ? INT8OID : BOOLOID;

						FeatureIdListReserve(bag_ids, n);
						for (int k = 0; k < n; k++)
							bag_ids->ids[bag_ids->len++] = enulls[k] ? null_id : VocabId(c, etype, elems[k]);
						bag_len[st->out] = n;
						pfree(elems);
						pfree(enulls);
					}
					break;
				}
			case FEATURE_KIND_CATEGORICAL:
				break;
		}
	}
}

/* EncodeRowImpl made twice: for value arrays and for a call's arguments */
static void
EncodeRow(const FeatureBinding *b, RowValues row, float *dense, int32 *ids, int64 *bag_start,
		  int32 *bag_len, FeatureIdList *bag_ids, FeatureProbes *probes, bool copy)
{
	if (row.args)
	{
		RowValues	args = {NULL, NULL, row.args};

		EncodeRowImpl(b, args, dense, ids, bag_start, bag_len, bag_ids, probes, copy);
	}
	else
	{
		RowValues	arrays = {row.values, row.nulls, NULL};

		EncodeRowImpl(b, arrays, dense, ids, bag_start, bag_len, bag_ids, probes, copy);
	}
}

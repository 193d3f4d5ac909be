/*
 * features/spec.h
 *		Feature specs: how the columns of a table become a model's inputs.
 *		One module for every model kind that reads table rows (MMoE today,
 *		two-tower towers next), so that training and serving apply the same
 *		transform and cannot skew.
 *
 * A spec (jsonb, the "features" key of a model config) names columns by
 * kind:
 *	{"numeric": [...], "categorical": [...], "multi_categorical": [...],
 *	 "vector": [...]}
 * each entry a column name or {"column": name, options}.  Fitting (one scan
 * of the training relation, fit.c) adds statistics and vocabularies and a
 * "fitted" key; a fitted spec is applied to a row in C (encode.c) with no
 * SPI or catalog access per row.  The format is documented in
 * doc/features.md.
 *
 * A row becomes:
 *	dense	float[dense_dim]: numeric columns (transformed), then vector
 *			columns (as they are), in spec order
 *	ids		int32[ncategorical]: one vocabulary id per categorical column
 *	bags	one id list per multi_categorical column
 * Vocabulary ids: 0 .. n-1 for the kept values (most frequent first, ties
 * by value), n for any other value (out of vocabulary), n + 1 for NULL; a
 * vocabulary has n + 2 ids.
 */
#ifndef FEATURES_SPEC_H
#define FEATURES_SPEC_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "fmgr.h"
#include "utils/jsonb.h"

#include "kernel/features.h"

typedef enum FeatureKind
{
	FEATURE_KIND_NUMERIC,
	FEATURE_KIND_CATEGORICAL,
	FEATURE_KIND_MULTI,
	FEATURE_KIND_VECTOR
} FeatureKind;

/* What a vocabulary's values are (from the column type at fitting) */
typedef enum FeatureValueType
{
	FEATURE_VALUES_TEXT,		/* text, varchar (text[], varchar[]) */
	FEATURE_VALUES_INT,			/* smallint, int, bigint (and their arrays) */
	FEATURE_VALUES_BOOL			/* boolean */
} FeatureValueType;

/* Most columns a spec names, and bounds of options */
#define FEATURE_MAX_COLUMNS 1024
#define FEATURE_MAX_VOCAB 10000000
#define FEATURE_DEFAULT_MAX_SIZE 100000
#define FEATURE_DEFAULT_DIM 8

struct FeatureVocab;

/* One entry of a spec */
typedef struct FeatureColumn
{
	FeatureKind kind;
	char	   *column;
	int			index;			/* dense offset (numeric, vector), id slot
								 * (categorical) or bag number (multi) */

	/* numeric */
	FeatureNumeric num;
	bool		has_null_value; /* option null_value: a raw value for NULL */
	double		null_value;

	/* categorical and multi_categorical */
	int			min_count;
	int			max_size;
	int			dim;
	FeatureValueType vtype;
	struct FeatureVocab *vocab; /* the kept values, id = position */

	/* vector */
	int			length;

	/* fitted counts (reported in the spec) */
	int64		count;			/* non-NULL values (elements for multi) */
	int64		nulls;
	int64		oov;			/* values of the training rows sent to the OOV id */
} FeatureColumn;

typedef struct FeatureSpec
{
	bool		fitted;
	int64		rows;			/* training rows it was fitted on */
	int			ncolumns;
	FeatureColumn *columns;		/* numeric, categorical, multi, vector: spec order */
	int			nnumeric;
	int			ncategorical;
	int			nmulti;
	int			nvector;
	int			dense_dim;		/* numeric + sum of vector lengths (fitted) */
} FeatureSpec;

struct FeatureStep;

/*
 * Where the columns of a spec are in a tuple, checked against their types,
 * and what encoding a row does with each (steps: one per spec column, in
 * spec order, made from the rest by the Bind functions)
 */
typedef struct FeatureBinding
{
	const FeatureSpec *spec;
	int			natts;			/* of the tuple descriptor it was made for */
	AttrNumber *attnum;			/* per spec column, 1-based */
	Oid		   *atttype;
	struct FeatureStep *steps;
} FeatureBinding;

/* A growing list of int32 ids (the multi_categorical ids of rows) */
typedef struct FeatureIdList
{
	int32	   *ids;
	int64		len;
	int64		cap;
} FeatureIdList;

/* Rows encoded by a fitted spec (FeatureBuilderFinish) */
typedef struct FeatureRows
{
	int64		n;
	float	   *dense;			/* [n, dense_dim] */
	int32	   *ids;			/* [n, ncategorical] */
	int64	   *bag_start;		/* [n, nmulti] first id in bag_ids */
	int32	   *bag_len;		/* [n, nmulti] */
	int32	   *bag_ids;
	int64		nbag_ids;
} FeatureRows;

/* Categorical values of a row probed before they are looked up (FeatureEncodeDeferred) */
#define FEATURE_PROBED_KEYS 16
#define FEATURE_PROBED_BYTES 32

/* A categorical value of a row, read and hashed */
typedef struct FeatureKey
{
	int			column;			/* spec column */
	int64		ival;
	const char *s;
	int			len;
	uint32		hash;
} FeatureKey;

/*
 * The categorical values of one row whose lookups are still to be done:
 * their ids go to ids[spec index] when FeatureResolve runs; text values are
 * copied into bytes, so the row's values may be gone by then
 */
typedef struct FeatureProbes
{
	int			n;
	int32	   *ids;
	FeatureKey	keys[FEATURE_PROBED_KEYS];
	char		bytes[FEATURE_PROBED_KEYS * FEATURE_PROBED_BYTES];
} FeatureProbes;

typedef struct FeatureBuilder FeatureBuilder;

/* spec.c */
extern FeatureSpec *FeatureSpecParse(const JsonbValue *v, bool allow_unfitted);
extern char *FeatureSpecJson(const FeatureSpec *spec);
extern int	FeatureVocabSize(const FeatureColumn *c);
extern const char *FeatureKindName(FeatureKind kind);

/* vocab.c */
extern struct FeatureVocab *FeatureVocabCreate(FeatureValueType type, int64 expected);
extern int32 FeatureVocabLookup(const struct FeatureVocab *v, int64 ival, const char *s, int len);
extern uint32 FeatureVocabProbe(const struct FeatureVocab *v, int64 ival, const char *s, int len);
extern int32 FeatureVocabLookupHashed(const struct FeatureVocab *v, uint32 h, int64 ival,
									  const char *s, int len);
extern int32 FeatureVocabAdd(struct FeatureVocab *v, int64 ival, const char *s, int len);
extern int32 FeatureVocabCount(const struct FeatureVocab *v);
extern void FeatureVocabIncrement(struct FeatureVocab *v, int32 id, int64 by);
extern int64 FeatureVocabOccurrences(const struct FeatureVocab *v, int32 id);
extern void FeatureVocabValue(const struct FeatureVocab *v, int32 id, int64 *ival, const char **s, int *len);
extern int32 *FeatureVocabFinish(struct FeatureVocab **v, int min_count, int max_size, int64 *oov);
extern Size FeatureVocabBytes(const struct FeatureVocab *v);
extern const int32 *FeatureVocabDirect(const struct FeatureVocab *v, int64 *low, uint64 *span);
extern void FeatureVocabFreeze(struct FeatureVocab *v);

/* encode.c */
extern void FeatureCheckRelation(const FeatureSpec *spec, Oid relid);
extern char *FeatureSelectList(const FeatureSpec *spec);
extern FeatureBinding *FeatureBindList(const FeatureSpec *spec, int n, const char *const *names,
									   const Oid *types, const char *what);
extern FeatureBinding *FeatureBindNames(const FeatureSpec *spec, TupleDesc desc, const char *what);
extern FeatureBinding *FeatureBindPositions(const FeatureSpec *spec, TupleDesc desc, int first,
											const char *what);
extern void FeatureEncode(const FeatureBinding *b, const Datum *values, const bool *nulls,
						  float *dense, int32 *ids, int64 *bag_start, int32 *bag_len,
						  FeatureIdList *bag_ids);
extern void FeatureEncodeArgs(const FeatureBinding *b, const NullableDatum *args, float *dense,
							  int32 *ids, int64 *bag_start, int32 *bag_len, FeatureIdList *bag_ids);
extern void FeatureEncodeDeferred(const FeatureBinding *b, const Datum *values, const bool *nulls,
								  float *dense, int32 *ids, int64 *bag_start, int32 *bag_len,
								  FeatureIdList *bag_ids, FeatureProbes *pending);
extern void FeatureResolve(const FeatureSpec *spec, FeatureProbes *pending);
extern void FeatureIdListReserve(FeatureIdList *l, int64 more);

/* fit.c */
extern FeatureBuilder *FeatureBuilderStart(FeatureSpec *spec, const FeatureBinding *b,
										   double budget_bytes, const char *relname);
extern void FeatureBuilderReserve(FeatureBuilder *fb, double other_bytes);
extern void FeatureBuilderAdd(FeatureBuilder *fb, const Datum *values, const bool *nulls);
extern FeatureRows *FeatureBuilderFinish(FeatureBuilder *fb);

#endif

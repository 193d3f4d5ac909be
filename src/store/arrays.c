/*
 * store/arrays.c
 *		SQL array <-> C vector conversion and validation.
 *
 * Vectors are 1-D real[] or double precision[] arrays without NULL elements,
 * NaN or Infinity, of length 1..recsys.max_dim.  Element data is read
 * straight from the array (no deconstruct_array), which matters at a few
 * nanoseconds per row.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/memutils.h"

#include "store/arrays.h"
#include "settings.h"

/* Raise the error for a non-finite element */
static void
ReportNonFinite(double x)
{
	if (isnan(x))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("NaN not allowed in vector")));
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("infinite value not allowed in vector")));
}

/* Check that a double is finite, naming what it is on error */
void
CheckFiniteDouble(double x, const char *what)
{
	if (isnan(x))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must not be NaN", what)));
	if (isinf(x))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must be finite", what)));
}

/*
 * Raise the error for a NULL element of an array named what, giving the
 * subscripts of the first one (the array is known to contain a NULL)
 */
void
ReportArrayNull(ArrayType *a, const char *what)
{
	bits8	   *bitmap = ARR_NULLBITMAP(a);
	int			n = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	int			i = 0;

	while (i < n && bitmap != NULL && (bitmap[i / 8] & (1 << (i % 8))) != 0)
		i++;
	if (ARR_NDIM(a) == 1)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not contain nulls", what),
				 errdetail("Element %d (%s[%d]) is NULL.", i + 1, what, ARR_LBOUND(a)[0] + i)));
	if (ARR_NDIM(a) == 2)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not contain nulls", what),
				 errdetail("Row %d, element %d (%s[%d][%d]) is NULL.",
						   i / ARR_DIMS(a)[1] + 1, i % ARR_DIMS(a)[1] + 1, what,
						   ARR_LBOUND(a)[0] + i / ARR_DIMS(a)[1], ARR_LBOUND(a)[1] + i % ARR_DIMS(a)[1])));
	ereport(ERROR,
			(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
			 errmsg("%s must not contain nulls", what),
			 errdetail("Element %d in storage order is NULL.", i + 1)));
}

/*
 * Check the element type, NULLs and length of a 1-D vector; get its length.
 * what names the argument in errors ("features", "v").
 */
int
VectorDimOf(ArrayType *a, const char *what)
{
	int			dim;

	if (ARR_ELEMTYPE(a) != FLOAT4OID && ARR_ELEMTYPE(a) != FLOAT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s must be real[] or double precision[]", what)));
	if (ARR_NDIM(a) != 1)
	{
		if (ARR_NDIM(a) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("%s must have at least 1 dimension", what)));
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must be a 1-D array, not %d-D", what, ARR_NDIM(a))));
	}
	if (ARR_HASNULL(a) && array_contains_nulls(a))
		ReportArrayNull(a, what);
	dim = ARR_DIMS(a)[0];
	if (dim < 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must have at least 1 dimension", what)));
	if (dim > recsys_max_dim)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s has %d dimensions, more than recsys.max_dim (%d)",
						what, dim, recsys_max_dim)));
	return dim;
}

/* VectorDimOf for a vector without an argument name of its own */
int
VectorDim(ArrayType *a)
{
	return VectorDimOf(a, "vector");
}

/*
 * Get an in-place view of a vector datum, with the checks of VectorDim.
 * Packed (short-header) arrays are read where they are; anything else
 * compressed or external is detoasted first.
 */
void
GetVectorData(Datum d, const char *what, VectorData *v)
{
	struct varlena *raw = (struct varlena *) DatumGetPointer(d);
	const char *p;
	int32		ndim;
	int32		dataoffset;
	int32		dim;

	if (!VARATT_IS_SHORT(raw))
	{
		ArrayType  *a = DatumGetArrayTypeP(d);

		v->dim = VectorDimOf(a, what);
		v->elemtype = ARR_ELEMTYPE(a);
		v->data = (const char *) ARR_DATA_PTR(a);
		return;
	}

	/* the ArrayType fields follow the 1-byte header, unaligned */
	p = VARDATA_SHORT(raw);
	memcpy(&ndim, p + offsetof(ArrayType, ndim) - VARHDRSZ, sizeof(int32));
	memcpy(&dataoffset, p + offsetof(ArrayType, dataoffset) - VARHDRSZ, sizeof(int32));
	memcpy(&v->elemtype, p + offsetof(ArrayType, elemtype) - VARHDRSZ, sizeof(Oid));
	if (ndim != 1 || dataoffset != 0 ||
		(v->elemtype != FLOAT4OID && v->elemtype != FLOAT8OID))
	{
		/* rare shapes (NULL bitmap, wrong type or rank): the full checks report them */
		ArrayType  *a = DatumGetArrayTypeP(d);

		v->dim = VectorDimOf(a, what);
		v->elemtype = ARR_ELEMTYPE(a);
		v->data = (const char *) ARR_DATA_PTR(a);
		return;
	}
	memcpy(&dim, p + sizeof(ArrayType) - VARHDRSZ, sizeof(int32));
	if (dim < 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must have at least 1 dimension", what)));
	if (dim > recsys_max_dim)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s has %d dimensions, more than recsys.max_dim (%d)",
						what, dim, recsys_max_dim)));
	if (VARSIZE_SHORT(raw) - VARHDRSZ_SHORT + VARHDRSZ !=
		ARR_OVERHEAD_NONULLS(1) + (Size) dim * (v->elemtype == FLOAT4OID ? sizeof(float) : sizeof(double)))
		elog(ERROR, "packed array has an inconsistent size");
	v->dim = dim;
	v->data = p + ARR_OVERHEAD_NONULLS(1) - VARHDRSZ;
}

/* Copy a vector view into doubles multiplied by scale, rejecting NaN and Infinity */
void
VectorDataToScaledDoubles(const VectorData *v, double scale, double *out)
{
	int			n = v->dim;
	bool		bad = false;

	if (v->elemtype == FLOAT4OID)
	{
		for (int i = 0; i < n; i++)
		{
			float		x;

			memcpy(&x, v->data + i * sizeof(float), sizeof(float));
			bad |= !isfinite(x);
			out[i] = (double) x * scale;
		}
	}
	else
	{
		for (int i = 0; i < n; i++)
		{
			double		x;

			memcpy(&x, v->data + i * sizeof(double), sizeof(double));
			bad |= !isfinite(x);
			out[i] = x * scale;
		}
	}
	if (unlikely(bad))
	{
		for (int i = 0; i < n; i++)
		{
			double		x;

			if (v->elemtype == FLOAT4OID)
			{
				float		f;

				memcpy(&f, v->data + i * sizeof(float), sizeof(float));
				x = f;
			}
			else
				memcpy(&x, v->data + i * sizeof(double), sizeof(double));
			if (!isfinite(x))
				ReportNonFinite(x);
		}
	}
}

/* Check that two lengths agree */
void
CheckSameDims(int a, int b)
{
	if (a != b)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("different vector dimensions %d and %d", a, b)));
}

/* Copy a checked vector (see VectorDim) into doubles, multiplied by scale */
void
VectorToScaledDoubles(ArrayType *a, double scale, double *out)
{
	int			n = ARR_DIMS(a)[0];
	bool		bad = false;

	if (ARR_ELEMTYPE(a) == FLOAT4OID)
	{
		const float *x = (const float *) ARR_DATA_PTR(a);

		for (int i = 0; i < n; i++)
		{
			bad |= !isfinite(x[i]);
			out[i] = (double) x[i] * scale;
		}
	}
	else
	{
		const double *x = (const double *) ARR_DATA_PTR(a);

		for (int i = 0; i < n; i++)
		{
			bad |= !isfinite(x[i]);
			out[i] = x[i] * scale;
		}
	}
	if (unlikely(bad))
	{
		for (int i = 0; i < n; i++)
		{
			double		x = ARR_ELEMTYPE(a) == FLOAT4OID ?
				((const float *) ARR_DATA_PTR(a))[i] : ((const double *) ARR_DATA_PTR(a))[i];

			if (!isfinite(x))
				ReportNonFinite(x);
		}
	}
}

/* Copy a checked vector (see VectorDim) into doubles */
void
VectorToDoubles(ArrayType *a, double *out)
{
	VectorToScaledDoubles(a, 1.0, out);
}

/*
 * Copy n elements of float4 or float8 data into floats, rejecting NaN,
 * infinity and doubles out of float range
 */
static void
ElementsToFloats(Oid elemtype, const void *data, size_t n, float *out)
{
	if (elemtype == FLOAT4OID)
	{
		const float *x = (const float *) data;
		bool		bad = false;

		for (size_t i = 0; i < n; i++)
		{
			bad |= !isfinite(x[i]);
			out[i] = x[i];
		}
		if (unlikely(bad))
			for (size_t i = 0; i < n; i++)
				if (!isfinite(x[i]))
					ReportNonFinite(x[i]);
	}
	else
	{
		const double *x = (const double *) data;

		for (size_t i = 0; i < n; i++)
		{
			if (!isfinite(x[i]))
				ReportNonFinite(x[i]);
			if (fabs(x[i]) > FLT_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("vector element %g out of range for real", x[i])));
			out[i] = (float) x[i];
		}
	}
}

/* Copy a checked vector (see VectorDim) into floats */
void
VectorToFloats(ArrayType *a, float *out)
{
	ElementsToFloats(ARR_ELEMTYPE(a), ARR_DATA_PTR(a), ARR_DIMS(a)[0], out);
}

/* Get a checked vector as a palloc'd double array; what names it in errors */
double *
VectorGetDoubles(ArrayType *a, const char *what, int *dim)
{
	double	   *out;

	*dim = VectorDimOf(a, what);
	out = palloc(sizeof(double) * *dim);
	VectorToDoubles(a, out);
	return out;
}

/*
 * Get a 2-D double precision[] matrix (no NULLs, finite) as palloc'd
 * row-major doubles.
 */
double *
MatrixGetDoubles(ArrayType *a, int *rows, int *cols)
{
	double	   *out;
	const double *x;
	size_t		n;

	if (ARR_ELEMTYPE(a) != FLOAT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("matrix must be double precision[]")));
	if (ARR_NDIM(a) != 2)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("matrix must be a 2-D array, not %d-D", ARR_NDIM(a))));
	if (ARR_HASNULL(a) && array_contains_nulls(a))
		ReportArrayNull(a, "matrix");
	*rows = ARR_DIMS(a)[0];
	*cols = ARR_DIMS(a)[1];
	if (*rows > recsys_max_dim || *cols > recsys_max_dim)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("matrix of %d x %d is larger than recsys.max_dim (%d)",
						*rows, *cols, recsys_max_dim)));
	n = (size_t) *rows * *cols;
	x = (const double *) ARR_DATA_PTR(a);
	out = palloc(sizeof(double) * Max(n, 1));
	for (size_t i = 0; i < n; i++)
	{
		if (!isfinite(x[i]))
		{
			if (isnan(x[i]))
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("NaN not allowed in matrix")));
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("infinite value not allowed in matrix")));
		}
		out[i] = x[i];
	}
	return out;
}

/*
 * Build a float array (real[] or double precision[]) of ndim dimensions
 * (1 or 2) from contiguous row-major data
 */
static ArrayType *
BuildFloatArray(Oid elemtype, int ndim, const int *dims, const void *data)
{
	Size		elemsize = elemtype == FLOAT4OID ? sizeof(float) : sizeof(double);
	Size		nelems = ndim == 1 ? (Size) dims[0] : (Size) dims[0] * dims[1];
	Size		nbytes = ARR_OVERHEAD_NONULLS(ndim) + elemsize * nelems;
	ArrayType  *a;

	if (!AllocSizeIsValid(nbytes))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("array of %zu elements is too large", nelems)));
	a = (ArrayType *) palloc0(nbytes);
	SET_VARSIZE(a, nbytes);
	a->ndim = ndim;
	a->dataoffset = 0;
	a->elemtype = elemtype;
	for (int d = 0; d < ndim; d++)
	{
		ARR_DIMS(a)[d] = dims[d];
		ARR_LBOUND(a)[d] = 1;
	}
	memcpy(ARR_DATA_PTR(a), data, elemsize * nelems);
	return a;
}

/* Build a 1-D double precision[] */
ArrayType *
DoublesToArray(const double *x, int n)
{
	return BuildFloatArray(FLOAT8OID, 1, &n, x);
}

/* Build a 1-D real[] */
ArrayType *
FloatsToArray(const float *x, int n)
{
	return BuildFloatArray(FLOAT4OID, 1, &n, x);
}

/* Build a 2-D double precision[] from row-major doubles */
ArrayType *
DoublesToMatrix(const double *x, int rows, int cols)
{
	int			dims[2] = {rows, cols};

	return BuildFloatArray(FLOAT8OID, 2, dims, x);
}

/* Raise the error for an int[] argument that is not 1-D */
static void
CheckIntVectorShape(ArrayType *a, const char *what)
{
	if (ARR_ELEMTYPE(a) != INT4OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s must be integer[]", what)));
	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must be a 1-D array, not %d-D", what, ARR_NDIM(a))));
}

/*
 * Get a 1-D integer[] without NULLs (named what in errors) as palloc'd
 * int32s; an empty array gives length 0.
 */
int32 *
IntVectorGet(ArrayType *a, const char *what, int *n)
{
	int32	   *out;

	CheckIntVectorShape(a, what);
	if (ARR_HASNULL(a) && array_contains_nulls(a))
		ReportArrayNull(a, what);
	*n = ARR_NDIM(a) == 0 ? 0 : ARR_DIMS(a)[0];
	out = palloc(sizeof(int32) * Max(*n, 1));
	if (*n > 0)
		memcpy(out, ARR_DATA_PTR(a), sizeof(int32) * *n);
	return out;
}

/*
 * Get a 1-D integer[] whose NULL elements stand for missing values: fills
 * values and isnull (palloc'd) and returns the length.
 */
int
IntVectorGetNullable(ArrayType *a, const char *what, int32 **values, bool **isnull)
{
	Datum	   *d;
	int			n;

	CheckIntVectorShape(a, what);
	deconstruct_array(a, INT4OID, sizeof(int32), true, TYPALIGN_INT, &d, isnull, &n);
	*values = palloc(sizeof(int32) * Max(n, 1));
	for (int i = 0; i < n; i++)
		(*values)[i] = (*isnull)[i] ? 0 : DatumGetInt32(d[i]);
	pfree(d);
	return n;
}

/* Check that a batch (named what in errors) is 2-D without NULLs; get its shape */
static void
CheckBatchShape(ArrayType *a, const char *what, int *rows, int *cols)
{
	if (ARR_NDIM(a) != 2)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must be a 2-D array (one row per vector), not %d-D",
						what, ARR_NDIM(a))));
	if (ARR_HASNULL(a) && array_contains_nulls(a))
		ReportArrayNull(a, what);
	*rows = ARR_DIMS(a)[0];
	*cols = ARR_DIMS(a)[1];
}

/*
 * Check a 2-D batch of vectors (real[][] or double precision[][], no NULLs,
 * named what in errors) and get its numbers of rows and columns.  Rows are
 * not limited; columns are limited by recsys.max_dim.
 */
void
BatchDims(ArrayType *a, const char *what, int *rows, int *cols)
{
	if (ARR_ELEMTYPE(a) != FLOAT4OID && ARR_ELEMTYPE(a) != FLOAT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s must be real[][] or double precision[][]", what)));
	CheckBatchShape(a, what, rows, cols);
	if (*cols > recsys_max_dim)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s rows have %d dimensions, more than recsys.max_dim (%d)",
						what, *cols, recsys_max_dim)));
}

/*
 * Copy rows [first, first + nrows) of a batch checked by BatchDims into
 * floats, rejecting NaN, infinity and doubles out of float range.
 */
void
BatchRowsToFloats(ArrayType *a, int first, int nrows, float *out)
{
	int			cols = ARR_DIMS(a)[1];
	size_t		elemsize = ARR_ELEMTYPE(a) == FLOAT4OID ? sizeof(float) : sizeof(double);

	ElementsToFloats(ARR_ELEMTYPE(a), ARR_DATA_PTR(a) + elemsize * (size_t) first * cols,
					 (size_t) nrows * cols, out);
}

/*
 * Get a 2-D integer[][] without NULLs (named what in errors): its rows and
 * columns, and a pointer to its row-major data (not copied).
 */
const int32 *
IntMatrixData(ArrayType *a, const char *what, int *rows, int *cols)
{
	if (ARR_ELEMTYPE(a) != INT4OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s must be integer[][]", what)));
	CheckBatchShape(a, what, rows, cols);
	return (const int32 *) ARR_DATA_PTR(a);
}

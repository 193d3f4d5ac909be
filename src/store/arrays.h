/*
 * store/arrays.h
 *		The one place that turns SQL arrays into C vectors and back, and
 *		rejects what is not a vector (NULL elements, NaN, Infinity, wrong
 *		shape, too long).
 */
#ifndef ARRAYS_H
#define ARRAYS_H

#include "postgres.h"

#include "utils/array.h"

#include "compat.h"

/*
 * A vector read in place from an array datum, which may have a 1-byte
 * (packed) varlena header: short arrays on disk do, and detoasting them
 * would copy every row.  data may be unaligned.
 */
typedef struct VectorData
{
	int			dim;
	Oid			elemtype;		/* FLOAT4OID or FLOAT8OID */
	const char *data;
} VectorData;

extern void GetVectorData(Datum d, const char *what, VectorData *v);
extern void VectorDataToScaledDoubles(const VectorData *v, double scale, double *out);

RecsysNoreturn extern void ReportArrayNull(ArrayType *a, const char *what);
extern int	VectorDimOf(ArrayType *a, const char *what);
extern int	VectorDim(ArrayType *a);
extern void CheckSameDims(int a, int b);
extern void VectorToDoubles(ArrayType *a, double *out);
extern void VectorToScaledDoubles(ArrayType *a, double scale, double *out);
extern void VectorToFloats(ArrayType *a, float *out);
extern double *VectorGetDoubles(ArrayType *a, const char *what, int *dim);
extern double *MatrixGetDoubles(ArrayType *a, int *rows, int *cols);
extern void CheckFiniteDouble(double x, const char *what);

extern ArrayType *DoublesToArray(const double *x, int n);
extern ArrayType *FloatsToArray(const float *x, int n);
extern ArrayType *DoublesToMatrix(const double *x, int rows, int cols);

extern int32 *IntVectorGet(ArrayType *a, const char *what, int *n);
extern int	IntVectorGetNullable(ArrayType *a, const char *what, int32 **values,
								 bool **isnull);
extern void BatchDims(ArrayType *a, const char *what, int *rows, int *cols);
extern void BatchRowsToFloats(ArrayType *a, int first, int nrows, float *out);
extern const int32 *IntMatrixData(ArrayType *a, const char *what, int *rows, int *cols);

#endif

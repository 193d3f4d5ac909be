/*
 * losses/products.c
 *		Plain vector and matrix products: dot and Frobenius.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/array.h"

#include "store/arrays.h"
#include "kernel/linalg.h"

PG_FUNCTION_INFO_V1(vector_dot);
/* Get the inner product of two vectors, in double precision */
Datum
vector_dot(PG_FUNCTION_ARGS)
{
	ArrayType  *a = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *b = PG_GETARG_ARRAYTYPE_P(1);
	int			da;
	int			db;
	double	   *x;
	double	   *y;

	da = VectorDimOf(a, "a");
	db = VectorDimOf(b, "b");
	CheckSameDims(da, db);
	x = VectorGetDoubles(a, "a", &da);
	y = VectorGetDoubles(b, "b", &db);
	PG_RETURN_FLOAT8(LinalgDot(da, x, y));
}

PG_FUNCTION_INFO_V1(matrix_frobenius);
/* Get the Frobenius inner product <A, B>_F = sum_ij A_ij B_ij */
Datum
matrix_frobenius(PG_FUNCTION_ARGS)
{
	int			ra,
				ca,
				rb,
				cb;
	double	   *a = MatrixGetDoubles(PG_GETARG_ARRAYTYPE_P(0), &ra, &ca);
	double	   *b = MatrixGetDoubles(PG_GETARG_ARRAYTYPE_P(1), &rb, &cb);

	if (ra != rb || ca != cb)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("different matrix dimensions %d x %d and %d x %d", ra, ca, rb, cb)));
	PG_RETURN_FLOAT8(LinalgDot(ra * ca, a, b));
}

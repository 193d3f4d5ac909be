/*
 * embeddings/init.c
 *		Seeded initial vectors of the embedding trainers, and
 *		recsys.embedding_init that shows them in SQL.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "utils/array.h"

#include "embeddings/init.h"
#include "kernel/rng.h"
#include "settings.h"
#include "store/arrays.h"

/* Get a uniform double in (0, 1) from a hash value */
static inline double
HashUniform(uint64 h)
{
	return ((double) (h >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/*
 * Fill out[0..dim-1] with N(0, (scale / sqrt(dim))^2) values that depend on
 * (seed, id) only: the same entity starts from the same vector whatever the
 * order rows are read in.
 */
void
EmbeddingInitVector(int64 seed, int64 id, int dim, double scale, float *out)
{
	uint64		base = RngHash64(RngHash64((uint64) seed) ^ (uint64) id);
	double		sd = scale / sqrt((double) dim);

	for (int j = 0; j < dim; j++)
	{
		double		u1 = HashUniform(RngHash64(base + 2 * (uint64) j));
		double		u2 = HashUniform(RngHash64(base + 2 * (uint64) j + 1));

		out[j] = (float) (sd * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
	}
}

PG_FUNCTION_INFO_V1(embedding_init);
/* Get the deterministic initial vector of an entity as real[] */
Datum
embedding_init(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);
	int32		dim = PG_GETARG_INT32(1);
	int64		seed = PG_GETARG_INT64(2);
	double		scale = PG_GETARG_FLOAT8(3);
	float	   *v;

	if (dim < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dim must be at least 1")));
	if (dim > recsys_max_dim)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("dim %d is more than recsys.max_dim (%d)", dim, recsys_max_dim)));
	CheckFiniteDouble(scale, "init_scale");
	if (scale < 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("init_scale must not be negative")));
	v = palloc(sizeof(float) * dim);
	EmbeddingInitVector(seed, id, dim, scale, v);
	PG_RETURN_ARRAYTYPE_P(FloatsToArray(v, dim));
}

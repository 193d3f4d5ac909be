/*
 * removed.c
 *		C symbols that a released install script still names but that later
 *		versions removed.
 *
 * CREATE EXTENSION recsys VERSION '0.1.0' (the first step of an update
 * from 0.1.0 that is replayed, and of pg_upgrade) must find every symbol
 * its script declares in the current library.  A removed entry point keeps
 * its symbol only to refuse every call: it reads none of its arguments, so
 * no argument layout of an old declaration can be misread.
 */
#include "postgres.h"

#include "fmgr.h"

PG_FUNCTION_INFO_V1(sgd_train);
/* Refuse 0.1.0's internal recsys.sgd_train: 0.2.0 trains without an SQL entry point */
Datum
sgd_train(PG_FUNCTION_ARGS)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("recsys.sgd_train was removed in recsys 0.2.0"),
			 errhint("Run ALTER EXTENSION recsys UPDATE, then call recsys.train_embeddings.")));
	PG_RETURN_NULL();
}

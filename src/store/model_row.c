/*
 * store/model_row.c
 *		The models row of a new version, for the trainers that build its
 *		config and metrics as JSON text (train_embeddings, its ease method,
 *		train_two_tower): inserted once the model is trained, or, for a
 *		trainer that must insert it before its work (the distributed engine:
 *		Citus allows no write to a referenced reference table after a
 *		parallel operation), completed with the final config, weights and
 *		metrics.  Runs in the caller's SPI connection.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "store/model_row.h"

/*
 * Insert the models row (name, version, kind, config, weights, metrics) of a
 * new version, or with update set the config, weights and metrics of the row
 * inserted first; weights may be NULL (a model whose vectors are all it has)
 */
void
ModelRowWrite(const char *model, int32 version, const char *kind, const char *config,
			  bytea *weights, const char *metrics, bool update)
{
	Oid			types[6] = {TEXTOID, INT4OID, TEXTOID, BYTEAOID, TEXTOID, TEXTOID};
	Datum		args[6] = {CStringGetTextDatum(model), Int32GetDatum(version), CStringGetTextDatum(config),
	PointerGetDatum(weights), CStringGetTextDatum(metrics), CStringGetTextDatum(kind)};
	const char *nulls = weights == NULL ? "   n  " : "      ";
	int			rc;

	if (update)
	{
		rc = SPI_execute_with_args("UPDATE recsys.models SET config = CAST($3 AS pg_catalog.jsonb), weights = $4,"
								   " metrics = CAST($5 AS pg_catalog.jsonb)"
								   " WHERE name OPERATOR(pg_catalog.=) $1 AND version OPERATOR(pg_catalog.=) $2",
								   5, types, args, nulls, false, 0);
		if (rc != SPI_OK_UPDATE || SPI_processed != 1)
			elog(ERROR, "storing model \"%s\" failed", model);
		return;
	}
	rc = SPI_execute_with_args("INSERT INTO recsys.models (name, version, kind, config, weights, metrics)"
							   " VALUES ($1, $2, $6, CAST($3 AS pg_catalog.jsonb), $4,"
							   " CAST($5 AS pg_catalog.jsonb))",
							   6, types, args, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "storing model \"%s\" failed", model);
}

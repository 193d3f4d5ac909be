/*
 * store/model_kind.h
 *		What a kind of model implements for the model store: a loader from
 *		one row of recsys.models to its in-memory form (store/model_store.h
 *		is what the store's callers need).
 */
#ifndef MODEL_KIND_H
#define MODEL_KIND_H

#include "postgres.h"

#include "utils/jsonb.h"

#include "store/model_store.h"

/* What a loader gets: one row of recsys.models */
typedef struct ModelStoreRow
{
	const char *name;
	int			version;
	Jsonb	   *config;			/* never NULL */
	bytea	   *weights;		/* NULL when the row has none */
} ModelStoreRow;

/*
 * A kind of model.  load runs with CurrentMemoryContext set to the new
 * entry's context (everything it allocates lives as long as the entry) and
 * inside an SPI connection, so it may read further tables through SPI.
 */
struct ModelKind
{
	const char *name;			/* recsys.models.kind */
	void	   *(*load) (const ModelStoreRow *row);
	const char *const *tables;	/* further tables it reads (NULL-terminated), or NULL */
};

#endif

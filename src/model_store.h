/*
 * model_store.h
 *		Stored MMoE models: reading rows of recsys.models and a per-backend
 *		cache of parsed models.
 *
 * A caller keeps a ModelRef in memory that lives as long as its use of the
 * model (fn_extra, allocated in fn_mcxt).  ModelStoreAcquire resolves the
 * model name to a row once per statement (the active snapshot identifies the
 * statement), reuses the parsed model when the row (xmin, ctid) is the one
 * cached, and otherwise parses the row into a fresh cache entry.  The ref
 * pins its entry until the holder memory context goes away, so a model that
 * a running query uses is never freed under it, even if a newer version
 * evicts it from the cache.
 */
#ifndef MODEL_STORE_H
#define MODEL_STORE_H

#include "postgres.h"

#include "mmoe.h"

/* Most cache entries kept when no query pins them */
#define MODEL_CACHE_MAX_ENTRIES 16

typedef struct ModelCacheEntry ModelCacheEntry;

/* What identifies the statement a lookup was made for */
typedef struct ModelSnapshotKey
{
	uint32		lxid;
	TransactionId xmin;
	TransactionId xmax;
	CommandId	curcid;
	uint32		xcnt;
	uint64		completions;
} ModelSnapshotKey;

typedef struct ModelRef
{
	ModelCacheEntry *entry;		/* pinned entry, or NULL */
	char	   *name;			/* the request the entry answers */
	int			namelen;
	int			version;		/* 0 = newest */
	ModelSnapshotKey snap;
	bool		valid;
	bool		callback_set;
	MemoryContext holder;
	MemoryContextCallback callback;
} ModelRef;

extern const MmoeModel *ModelStoreAcquire(ModelRef *ref, MemoryContext holder,
										  text *name, int version, uint64 *load_id);

#endif

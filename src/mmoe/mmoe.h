/*
 * mmoe/mmoe.h
 *		Multi-gate mixture-of-experts models (Ma et al., KDD 2018) with the
 *		YouTube ranker's additions: categorical embeddings, noisy top-k gates
 *		(served without noise), latent cross and a shallow display-position
 *		tower.  The PostgreSQL side of kernel/mmoe_model.h.
 *
 * A model is built from a validated config (jsonb, mmoe/config.c) and a
 * safetensors file whose tensors follow PyTorch's nn.Linear layout
 * (mmoe/load.c, both declared in mmoe/load.h); the model store caches it
 * (MmoeModelKind) and the SQL functions (mmoe/sql.c) score rows with the
 * plain C kernel (kernel/mmoe_forward.c).
 */
#ifndef MMOE_H
#define MMOE_H

#include "postgres.h"

#include "access/htup.h"
#include "fmgr.h"
#include "utils/array.h"

#include "features/spec.h"
#include "kernel/mmoe_model.h"

/* The model store's kind for MMoE models (registered by _PG_init) */
struct ModelKind;
extern const struct ModelKind MmoeModelKind;

/* mmoe/load.c; building a model from its config and weights: mmoe/load.h */
extern MmoeScratch *MmoeScratchCreate(const MmoeModel *model, int maxrows);

/* One row's inputs as SQL values (NULL pointer = NULL input) */
typedef struct MmoeRowInput
{
	ArrayType  *features;		/* NULL only when encoded */
	bool		encoded;		/* features, ids and bags are already in the scratch row */
	ArrayType  *categorical;
	ArrayType  *context;
	bool		takes_context;	/* the caller has a context input */
	bool		takes_display_position; /* the caller has a display_position input */
	bool		display_position_null;
	int32		display_position;
} MmoeRowInput;

/* mmoe/sql.c */
extern const MmoeModel *MmoeAcquire(FunctionCallInfo fcinfo, text *model, int version,
									int maxrows, MmoeScratch **scratch, uint64 *model_id,
									int *found_version);
extern int	MmoeVersionArg(FunctionCallInfo fcinfo, int arg);
extern void MmoeSetIds(const MmoeModel *model, MmoeScratch *s, int r, const int32 *ids);
extern void MmoeSetRow(const MmoeModel *model, MmoeScratch *s, int r, const MmoeRowInput *in);
extern void **MmoeCallRowCache(FunctionCallInfo fcinfo);

/* Buffers for the multi_categorical ids of one row */
typedef struct MmoeBagInput
{
	int64	   *start;			/* [nbags] */
	int32	   *len;			/* [nbags] */
	FeatureIdList ids;
} MmoeBagInput;

/* mmoe/rows.c */
extern void MmoeRequireFeatures(const MmoeModel *m);
extern void MmoeRejectBags(const MmoeModel *m);
extern void MmoeBagInputInit(const MmoeModel *m, MmoeBagInput *b);
extern void MmoeEncodeValues(const MmoeModel *m, const FeatureBinding *b, const Datum *values,
							 const bool *nulls, float *dense, int32 *ids, float *bagx,
							 MmoeBagInput *bags, FeatureProbes *pending);
extern void MmoeEncodeRow(const MmoeModel *m, uint64 load_id, void **cache, MemoryContext mcxt,
						  HeapTupleHeader row, float *dense, int32 *ids, float *bagx);
extern void MmoeEncodeColumns(const MmoeModel *m, uint64 load_id, void **cache,
							  MemoryContext mcxt, FunctionCallInfo fcinfo, int names_arg,
							  Oid row_type, int first, float *dense, int32 *ids, float *bagx);

#endif

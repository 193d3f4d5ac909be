/*
 * embeddings/kind.h
 *		Embeddings models: the "embeddings" kind of the model store (item
 *		matrix and Gramian of a stored version, as serving uses them).  The
 *		trainers' initial vectors are in embeddings/init.h.
 */
#ifndef EMBEDDINGS_H
#define EMBEDDINGS_H

#include "postgres.h"

#include "kernel/foldin.h"
#include "store/model_store.h"

/* Tensor of models.weights that holds the item Gramian Y^T Y (F64 [dim, dim]) */
#define EMBEDDING_GRAMIAN_TENSOR "item_gramian"

/* A loaded embeddings model version (lives in its model-store entry) */
typedef struct EmbeddingModel
{
	char	   *name;
	int			version;
	int			dim;			/* 0 when the version has no item vectors */
	int			n_items;
	int64	   *item_ids;		/* ascending */
	bool		dense_ids;		/* item_ids[i] = item_ids[0] + i: rows by subtraction */
	float	   *items;			/* n_items x dim, row-major */
	double	   *gramian;		/* dim x dim */
	bool		gramian_stored; /* read from weights rather than computed */
	bool		has_objective;	/* config names gramian_weight and l2 */
	bool		ease;			/* method ease: items holds B (row t = item t's row, dim = n_items) */
	bool		two_tower;		/* trained by train_two_tower: no fold-in */
	void	   *towers;			/* its towers (TwoTowerServed, twotower/serving.c) */
	FoldInModel fold;			/* the above, as the kernels take it */
} EmbeddingModel;

extern const ModelKind EmbeddingModelKind;

extern int	EmbeddingItemRow(const EmbeddingModel *m, int64 id);

#endif

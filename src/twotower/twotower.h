/*
 * twotower/twotower.h
 *		What the two-tower SQL modules share: feature tables read into tower
 *		inputs (inputs.c, the only file that calls src/features/), and the
 *		stored model (train.c writes it, serving.c reads it).
 */
#ifndef TWOTOWER_SQL_H
#define TWOTOWER_SQL_H

#include "postgres.h"

#include "access/htup.h"

#include "features/spec.h"
#include "kernel/twotower.h"

/* A feature table read with a spec: one row per entity */
typedef struct TwoTowerTable
{
	Oid			relid;
	FeatureSpec *spec;
	int64		n;
	int64	   *ids;			/* entity id of each row */
	int64	   *sorted;			/* (id, row) pairs by id */
	FeatureRows *rows;
} TwoTowerTable;

/* One tower of a stored model, built for serving (serving.c) */
typedef struct ServedTower
{
	FeatureSpec *spec;
	TtTower		tower;			/* activations for one row */
	double	   *params;
} ServedTower;

/* Both towers of a stored version, kept with its embeddings model in the store's cache */
typedef struct TwoTowerServed
{
	ServedTower side[2];		/* user 0, item 1 */
} TwoTowerServed;

extern FeatureSpec *TwoTowerEmptySpec(void);
extern void TwoTowerShapeInputs(const FeatureSpec *spec, int id_vocab, int id_dim,
								TtTowerConfig *cfg);
extern const char *TwoTowerBagName(const FeatureSpec *spec, int bag);
extern Oid	TwoTowerCheckTable(Oid relid, const char *id_column, const FeatureSpec *spec,
							  const char *what);
extern void TwoTowerLoadTable(TwoTowerTable *t, Oid relid, const char *id_column,
							  FeatureSpec *spec, double budget, double reserved, const char *what);
extern int64 TwoTowerFindRow(const TwoTowerTable *t, int64 id);
extern TtInputs *TwoTowerInputs(const TwoTowerTable *t, const int64 *rows, int64 n,
								const int32 *id_index, bool with_id);
extern TtInputs *TwoTowerRowInputs(const FeatureSpec *spec, HeapTupleHeader row, bool with_id,
								   const char *what);

/* serving.c */
struct ModelStoreRow;
extern TwoTowerServed *TwoTowerLoadServed(const struct ModelStoreRow *row);

#endif

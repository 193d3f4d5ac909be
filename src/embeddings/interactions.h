/*
 * embeddings/interactions.h
 *		The one reader of training interactions: checks the columns of the
 *		source relation, reads it once (a direct scan of a plain table, else an SPI cursor),
 *		checks every row (NULLs, NaN/infinite/negative weights, counted and
 *		named), adds up repeated pairs, drops pairs of zero weight and maps
 *		ids to dense indexes (ascending ids), into compressed rows by user and
 *		by item.  Used by every training method and engine.
 */
#ifndef INTERACTIONS_H
#define INTERACTIONS_H

#include "postgres.h"

/* Where the interactions come from */
typedef struct InteractionSource
{
	Oid			relid;
	const char *user_column;
	const char *item_column;
	const char *weight_column;	/* NULL: every row weighs 1 */
} InteractionSource;

/* The loaded interactions (all arrays palloc'd in one context) */
typedef struct Interactions
{
	int64		n_rows;			/* rows of the source */
	int64		nnz;			/* distinct pairs of positive weight */
	int32		n_users;
	int32		n_items;
	int64	   *user_ids;		/* ascending; index = position */
	int64	   *item_ids;
	int64	   *user_ptr;		/* n_users + 1 */
	int32	   *user_items;		/* nnz, ascending within a user */
	float	   *user_conf;
	int64	   *item_ptr;		/* n_items + 1 */
	int32	   *item_users;		/* nnz, ascending within an item */
	float	   *item_conf;
} Interactions;

/* Most distinct users or items (dense int32 indexes) */
#define INTERACTIONS_MAX_ENTITIES ((int64) 0x7FFFFFFE)

/* Counts of bad rows found in a source */
typedef struct RowChecks
{
	int64		null_user;
	int64		null_item;
	int64		null_weight;
	int64		bad_weight;
	int64		neg_weight;
} RowChecks;

extern void InteractionsReportBadRows(const InteractionSource *src, const RowChecks *c, int64 kept);
extern void InteractionsCheckSource(const InteractionSource *src);
extern bool InteractionsLoad(const InteractionSource *src, Interactions *out, Size budget,
							 Size per_entity, Size *needed);

#endif

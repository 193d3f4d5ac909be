/*
 * embeddings/ease_train.h
 *		train_embeddings(method => 'ease'): EASE's closed form from the
 *		interactions, stored as an embeddings model version.
 */
#ifndef EASE_TRAIN_H
#define EASE_TRAIN_H

#include "postgres.h"

#include "fmgr.h"

#include "embeddings/interactions.h"

/* What train_embeddings hands the EASE trainer (checked and resolved) */
typedef struct EaseTrainArgs
{
	const char *model;
	int32		version;		/* taken (and the name locked) by the caller */
	const InteractionSource *src;
	const char *source_name;	/* schema-qualified, quoted */
	double		lambda;			/* options.l2 */
	const char *options_json;	/* the resolved options */
	Size		budget;			/* recsys.training_memory in bytes */
	ReturnSetInfo *rsinfo;		/* train_embeddings' result: one row */
} EaseTrainArgs;

extern void EaseTrain(const EaseTrainArgs *a);

#endif

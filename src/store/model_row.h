/*
 * store/model_row.h
 *		The models row of a new version, written by the trainers.
 */
#ifndef MODEL_ROW_H
#define MODEL_ROW_H

#include "postgres.h"

extern void ModelRowWrite(const char *model, int32 version, const char *kind, const char *config,
						  bytea *weights, const char *metrics, bool update);

#endif

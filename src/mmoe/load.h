/*
 * mmoe/load.h
 *		An MMoE model from its stored form: the skeleton its config describes
 *		(mmoe/config.c) and the tensors of its safetensors weights
 *		(mmoe/load.c).  For the modules that import, load or train models;
 *		scoring needs only mmoe/mmoe.h.
 */
#ifndef MMOE_LOAD_H
#define MMOE_LOAD_H

#include "postgres.h"

#include "utils/jsonb.h"

#include "kernel/mmoe_model.h"
#include "store/safetensors.h"

/* mmoe/config.c */
extern MmoeModel *MmoeConfigToModel(Jsonb *config);
extern MmoeModel *MmoeConfigToSkeleton(Jsonb *config, bool allow_unfitted);

/* mmoe/load.c */
extern void MmoeParseFile(const unsigned char *data, uint64 len, SafetensorsFile *file);
extern void MmoeLoadTensors(MmoeModel *model, const SafetensorsFile *file);
extern MmoeModel *MmoeModelLoad(Jsonb *config, const unsigned char *data, uint64 len);

#endif

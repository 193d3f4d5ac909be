/*
 * store/lookup_memory.h
 *		Memory for tables read at random positions, row after row: the
 *		indexes of frozen vocabularies and the embedding tables of loaded
 *		models.
 */
#ifndef STORE_LOOKUP_MEMORY_H
#define STORE_LOOKUP_MEMORY_H

#include "postgres.h"

extern void *LookupTableAlloc(MemoryContext cxt, Size size);

#endif

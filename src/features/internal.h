/*
 * features/internal.h
 *		What the files of src/features/ share and nothing else uses: value
 *		readers for the column types a spec allows.
 */
#ifndef FEATURES_INTERNAL_H
#define FEATURES_INTERNAL_H

#include "features/spec.h"

extern FeatureValueType FeatureTypeValues(Oid type);
extern double FeatureReadNumber(const FeatureColumn *c, Oid type, Datum d);
extern void FeatureReadKey(Oid type, Datum d, int64 *ival, const char **s, int *len);
extern int	FeatureReadArray(const FeatureColumn *c, Oid type, Datum d, Datum **elems, bool **nulls);
extern const float *FeatureReadVector(const FeatureColumn *c, Oid type, Datum d, int *len,
									  float *buf, int buflen);
extern void FeatureColumnSetNullOut(FeatureColumn *c);

#endif

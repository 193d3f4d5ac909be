/*
 * store/safetensors.h
 *		Reading and writing the safetensors format: an 8-byte little-endian
 *		header length N, N bytes of JSON header (tensor name -> dtype, shape,
 *		data_offsets; optional "__metadata__" of string values), then the raw
 *		little-endian tensor data.
 *
 * The parser builds in the backend and in frontend programs linked with
 * libpgcommon/libpgport (the libFuzzer target in test/fuzz), so it never
 * raises errors itself: it returns false and fills a SafetensorsError that
 * the caller turns into an ereport.  The JSON header is parsed with
 * PostgreSQL's own JSON parser (common/jsonapi.h).
 */
#ifndef SAFETENSORS_H
#define SAFETENSORS_H

/* Largest JSON header accepted (the limit of the reference implementation) */
#define SAFETENSORS_MAX_HEADER 100000000
/* Most dimensions a tensor may have */
#define SAFETENSORS_MAX_NDIM 8
/* Longest tensor name or metadata key, in bytes */
#define SAFETENSORS_MAX_NAME 1024

/* Every dtype of the format; only the floating ones can be read as floats */
typedef enum SafetensorsDtype
{
	ST_BOOL,
	ST_U8,
	ST_I8,
	ST_F8_E5M2,
	ST_F8_E4M3,
	ST_I16,
	ST_U16,
	ST_F16,
	ST_BF16,
	ST_I32,
	ST_U32,
	ST_F32,
	ST_F64,
	ST_I64,
	ST_U64,
	ST_NUM_DTYPES
} SafetensorsDtype;

typedef struct SafetensorsTensor
{
	char	   *name;
	SafetensorsDtype dtype;
	int			ndim;
	uint64		shape[SAFETENSORS_MAX_NDIM];
	uint64		nelem;			/* product of shape (1 for a scalar) */
	uint64		begin;			/* byte offsets into the data area */
	uint64		end;
} SafetensorsTensor;

typedef struct SafetensorsFile
{
	const unsigned char *data;	/* start of the data area (not owned) */
	uint64		data_len;
	uint64		header_len;
	int			ntensors;
	SafetensorsTensor *tensors; /* sorted by name */
	int			nmeta;
	char	  **meta_keys;		/* sorted by key */
	char	  **meta_values;
} SafetensorsFile;

typedef enum SafetensorsStatus
{
	ST_OK,
	ST_BAD_FORMAT,				/* malformed or inconsistent bytes */
	ST_TOO_LARGE				/* well formed but past our limits */
} SafetensorsStatus;

typedef struct SafetensorsError
{
	SafetensorsStatus status;
	char		message[320];
	char		detail[320];
	char		hint[320];
} SafetensorsError;

extern bool SafetensorsParse(const unsigned char *buf, uint64 len,
							 SafetensorsFile *file, SafetensorsError *err);
extern void SafetensorsFree(SafetensorsFile *file);
extern const SafetensorsTensor *SafetensorsFind(const SafetensorsFile *file,
												const char *name);
extern const char *SafetensorsGetMeta(const SafetensorsFile *file, const char *key);
extern const char *SafetensorsDtypeName(SafetensorsDtype dtype);
extern int	SafetensorsDtypeSize(SafetensorsDtype dtype);
extern bool SafetensorsDtypeIsFloat(SafetensorsDtype dtype);
extern uint64 SafetensorsToFloats(const SafetensorsFile *file,
								  const SafetensorsTensor *t, float *out);
extern void SafetensorsPrintable(const char *name, char *out, int outlen);

#ifndef FRONTEND
extern bytea *SafetensorsWrite(const SafetensorsFile *file, int nmeta,
							   const char *const *keys, const char *const *values);
#endif

#endif

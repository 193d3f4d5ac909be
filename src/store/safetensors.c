/*
 * store/safetensors.c
 *		Parse, check and write safetensors files.
 *
 * Nothing here trusts the input: the header length, every offset, every
 * shape product (with overflow checks), overlaps and gaps between tensors
 * and the total length are checked before any tensor byte is read.  The
 * JSON header goes through PostgreSQL's pg_parse_json with semantic-action
 * callbacks; the callbacks only record the first problem (they cannot stop
 * the parser), and a pre-scan bounds the nesting depth so that the
 * recursive-descent parser cannot exhaust the stack in frontend builds,
 * which have no check_stack_depth().
 *
 * Compiled twice: into the extension, and with -DFRONTEND into the fuzz
 * target (see test/fuzz/run.sh).
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include <ctype.h>
#include <float.h>
#include <math.h>

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "port/pg_bswap.h"

#ifndef FRONTEND
#include "lib/stringinfo.h"
#include "utils/json.h"
#include "utils/memutils.h"
#endif

#include "compat.h"
#include "store/safetensors.h"

/* Nesting of a valid header: {"name": {"shape": [1]}} */
#define ST_MAX_DEPTH 3

static const struct
{
	const char *name;
	int			size;
	bool		is_float;
}			DtypeInfo[ST_NUM_DTYPES] =
{
	[ST_BOOL] = {"BOOL", 1, false},
	[ST_U8] = {"U8", 1, false},
	[ST_I8] = {"I8", 1, false},
	[ST_F8_E5M2] = {"F8_E5M2", 1, false},
	[ST_F8_E4M3] = {"F8_E4M3", 1, false},
	[ST_I16] = {"I16", 2, false},
	[ST_U16] = {"U16", 2, false},
	[ST_F16] = {"F16", 2, true},
	[ST_BF16] = {"BF16", 2, true},
	[ST_I32] = {"I32", 4, false},
	[ST_U32] = {"U32", 4, false},
	[ST_F32] = {"F32", 4, true},
	[ST_F64] = {"F64", 8, true},
	[ST_I64] = {"I64", 8, false},
	[ST_U64] = {"U64", 8, false},
};

/* What the JSON callbacks are inside of */
typedef enum
{
	IN_NOTHING,
	IN_TENSOR,
	IN_METADATA
} TopKind;

/* Fields of one tensor entry, as bits of ParseState.seen */
#define SEEN_DTYPE 1
#define SEEN_SHAPE 2
#define SEEN_OFFSETS 4

typedef struct ParseState
{
	SafetensorsError *err;
	bool		failed;
	int			depth;			/* containers open around the next token */
	char	   *key;			/* current top-level key (owned) */
	char	   *field;			/* current key one level down (owned) */
	TopKind		top;
	bool		seen_metadata;
	int			array;			/* SEEN_SHAPE or SEEN_OFFSETS while inside one */
	int			seen;
	int			noffsets;
	SafetensorsTensor cur;
	SafetensorsFile *file;
	int			tensors_cap;
	int			meta_cap;
} ParseState;

/* Copy a name into out, replacing bytes that are not printable ASCII and truncating */
void
SafetensorsPrintable(const char *name, char *out, int outlen)
{
	int			n = 0;

	for (const char *p = name; *p && n < outlen - 1; p++)
	{
		if (n >= 64)
		{
			if (outlen - 1 - n >= 3)
			{
				memcpy(out + n, "...", 3);
				n += 3;
			}
			break;
		}
		out[n++] = (*p >= 32 && *p < 127) ? *p : '?';
	}
	out[n] = '\0';
}

/* Record the first error (later ones are consequences) */
static void
Fail(ParseState *st, SafetensorsStatus status, const char *fmt,...)
pg_attribute_printf(3, 4);

static void
Fail(ParseState *st, SafetensorsStatus status, const char *fmt,...)
{
	va_list		args;

	if (st->failed)
		return;
	st->failed = true;
	st->err->status = status;
	va_start(args, fmt);
	vsnprintf(st->err->message, sizeof(st->err->message), fmt, args);
	va_end(args);
}

/* Record the error for a __metadata__ value that is not a string, naming its key */
static void
FailMetaValue(ParseState *st, const char *key)
{
	char		shown[80];

	if (st->failed)
		return;
	SafetensorsPrintable(key ? key : "", shown, sizeof(shown));
	Fail(st, ST_BAD_FORMAT, "safetensors __metadata__ value \"%s\" must be a JSON string", shown);
	snprintf(st->err->hint, sizeof(st->err->hint), "%s",
			 "Metadata values are strings: serialize a JSON value first, as in metadata={\"recsys\": json.dumps(config)}.");
}

/* Record an error about the current tensor, naming it */
static void
FailTensor(ParseState *st, const char *what)
{
	char		shown[80];

	SafetensorsPrintable(st->key ? st->key : "", shown, sizeof(shown));
	Fail(st, ST_BAD_FORMAT, "safetensors tensor \"%s\": %s", shown, what);
}

/* Parse a non-negative JSON integer without sign, fraction or exponent */
static bool
ParseUint64(const char *s, uint64 *out)
{
	uint64		v = 0;

	if (*s == '\0' || (s[0] == '0' && s[1] != '\0'))
		return false;
	for (; *s; s++)
	{
		if (*s < '0' || *s > '9')
			return false;
		if (v > (PG_UINT64_MAX - (uint64) (*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64) (*s - '0');
	}
	*out = v;
	return true;
}

/* JSON callback: an object begins */
static RecsysJsonResult
OnObjectStart(void *state)
{
	ParseState *st = (ParseState *) state;

	if (st->failed)
		return RECSYS_JSON_CONTINUE;
	if (st->depth == 1)
	{
		if (strcmp(st->key, "__metadata__") == 0)
			st->top = IN_METADATA;
		else
		{
			st->top = IN_TENSOR;
			memset(&st->cur, 0, sizeof(st->cur));
			st->seen = 0;
			st->noffsets = 0;
		}
	}
	else if (st->depth == 2)
	{
		if (st->top == IN_METADATA)
			FailMetaValue(st, st->field);
		else
			FailTensor(st, "unexpected object inside the tensor entry");
	}
	else if (st->depth > 2)
		FailTensor(st, "unexpected object inside the tensor entry");
	st->depth++;
	return RECSYS_JSON_CONTINUE;
}

/* Get what is wrong with the finished tensor entry st->cur, or NULL */
static const char *
TensorEntryProblem(ParseState *st, char *buf, size_t buflen)
{
	SafetensorsTensor *t = &st->cur;
	int			size = DtypeInfo[t->dtype].size;

	if ((st->seen & SEEN_DTYPE) == 0)
		return "missing \"dtype\"";
	if ((st->seen & SEEN_SHAPE) == 0)
		return "missing \"shape\"";
	if ((st->seen & SEEN_OFFSETS) == 0)
		return "missing \"data_offsets\"";
	if (st->noffsets != 2)
		return "\"data_offsets\" must have exactly 2 elements";
	if (t->begin > t->end)
		return "\"data_offsets\" begin is after end";
	t->nelem = 1;
	for (int i = 0; i < t->ndim; i++)
	{
		if (t->shape[i] != 0 && t->nelem > PG_UINT64_MAX / t->shape[i])
			return "shape product overflows";
		t->nelem *= t->shape[i];
	}
	if (t->nelem > PG_UINT64_MAX / size)
		return "byte size overflows";
	if (t->nelem * size != t->end - t->begin)
	{
		snprintf(buf, buflen,
				 "shape and dtype need " UINT64_FORMAT " bytes but data_offsets span " UINT64_FORMAT,
				 t->nelem * size, t->end - t->begin);
		return buf;
	}
	if (t->end > st->file->data_len)
		return "data_offsets point past the end of the data";
	return NULL;
}

/* JSON callback: an object ends */
static RecsysJsonResult
OnObjectEnd(void *state)
{
	ParseState *st = (ParseState *) state;
	const char *problem;
	char		buf[200];

	if (st->failed)
		return RECSYS_JSON_CONTINUE;
	st->depth--;
	if (st->depth != 1 || st->top != IN_TENSOR)
		return RECSYS_JSON_CONTINUE;

	/* A complete tensor entry: check it and keep it */
	problem = TensorEntryProblem(st, buf, sizeof(buf));
	if (problem)
	{
		FailTensor(st, problem);
		return RECSYS_JSON_CONTINUE;
	}
	if (st->file->ntensors == st->tensors_cap)
	{
		st->tensors_cap = st->tensors_cap ? st->tensors_cap * 2 : 16;
		st->file->tensors = st->file->tensors
			? repalloc(st->file->tensors, sizeof(SafetensorsTensor) * st->tensors_cap)
			: palloc(sizeof(SafetensorsTensor) * st->tensors_cap);
	}
	st->cur.name = st->key;
	st->key = NULL;
	st->file->tensors[st->file->ntensors++] = st->cur;
	return RECSYS_JSON_CONTINUE;
}

/* JSON callback: an array begins */
static RecsysJsonResult
OnArrayStart(void *state)
{
	ParseState *st = (ParseState *) state;

	if (st->failed)
		return RECSYS_JSON_CONTINUE;
	if (st->depth == 0)
		Fail(st, ST_BAD_FORMAT, "safetensors header must be a JSON object");
	else if (st->depth == 1)
	{
		if (strcmp(st->key, "__metadata__") == 0)
			Fail(st, ST_BAD_FORMAT, "safetensors __metadata__ must be an object");
		else
			FailTensor(st, "entry must be an object");
	}
	else if (st->depth == 2 && st->top == IN_METADATA)
		FailMetaValue(st, st->field);
	else if (st->depth == 2 && strcmp(st->field, "shape") == 0)
		st->array = SEEN_SHAPE;
	else if (st->depth == 2 && strcmp(st->field, "data_offsets") == 0)
		st->array = SEEN_OFFSETS;
	else if (st->depth == 2)
		FailTensor(st, "\"dtype\" must be a string");
	else
		FailTensor(st, "unexpected nested array");
	st->depth++;
	return RECSYS_JSON_CONTINUE;
}

/* JSON callback: an array ends */
static RecsysJsonResult
OnArrayEnd(void *state)
{
	ParseState *st = (ParseState *) state;

	if (st->failed)
		return RECSYS_JSON_CONTINUE;
	st->depth--;
	st->array = 0;
	return RECSYS_JSON_CONTINUE;
}

/* JSON callback: a key begins; we own fname */
static RecsysJsonResult
OnFieldStart(void *state, char *fname, bool isnull)
{
	ParseState *st = (ParseState *) state;
	char		shown[80];

	if (st->failed)
	{
		pfree(fname);
		return RECSYS_JSON_CONTINUE;
	}
	if (strlen(fname) > SAFETENSORS_MAX_NAME)
	{
		SafetensorsPrintable(fname, shown, sizeof(shown));
		pfree(fname);
		Fail(st, ST_TOO_LARGE, "safetensors name \"%s\" is longer than %d bytes",
			 shown, SAFETENSORS_MAX_NAME);
		return RECSYS_JSON_CONTINUE;
	}
	if (st->depth == 1)
	{
		Assert(st->key == NULL);
		st->key = fname;
		st->top = IN_NOTHING;
		if (strcmp(fname, "__metadata__") == 0)
		{
			if (st->seen_metadata)
				Fail(st, ST_BAD_FORMAT, "safetensors header has two __metadata__ entries");
			st->seen_metadata = true;
		}
		else if (fname[0] == '\0')
			Fail(st, ST_BAD_FORMAT, "safetensors tensor name must not be empty");
		return RECSYS_JSON_CONTINUE;
	}
	Assert(st->depth == 2 && st->field == NULL);
	st->field = fname;
	if (st->top == IN_TENSOR)
	{
		int			bit = 0;

		if (strcmp(fname, "dtype") == 0)
			bit = SEEN_DTYPE;
		else if (strcmp(fname, "shape") == 0)
			bit = SEEN_SHAPE;
		else if (strcmp(fname, "data_offsets") == 0)
			bit = SEEN_OFFSETS;
		if (bit == 0)
		{
			char		msg[160];

			SafetensorsPrintable(fname, shown, sizeof(shown));
			snprintf(msg, sizeof(msg), "unknown field \"%s\"", shown);
			FailTensor(st, msg);
		}
		else if (st->seen & bit)
		{
			char		msg[160];

			snprintf(msg, sizeof(msg), "field \"%s\" appears twice", fname);
			FailTensor(st, msg);
		}
		st->seen |= bit;
	}
	return RECSYS_JSON_CONTINUE;
}

/* JSON callback: a key's value has been parsed */
static RecsysJsonResult
OnFieldEnd(void *state, char *fname, bool isnull)
{
	ParseState *st = (ParseState *) state;

	/* after a failure depth is not tracked; SafetensorsParse frees key and field */
	if (st->failed)
		return RECSYS_JSON_CONTINUE;
	if (st->depth == 1 && st->key)
	{
		pfree(st->key);
		st->key = NULL;
	}
	else if (st->depth == 2 && st->field)
	{
		pfree(st->field);
		st->field = NULL;
	}
	return RECSYS_JSON_CONTINUE;
}

/* Add a metadata entry */
static void
AddMeta(ParseState *st, char *key, char *value)
{
	SafetensorsFile *f = st->file;

	if (f->nmeta == st->meta_cap)
	{
		st->meta_cap = st->meta_cap ? st->meta_cap * 2 : 8;
		f->meta_keys = f->meta_keys
			? repalloc(f->meta_keys, sizeof(char *) * st->meta_cap)
			: palloc(sizeof(char *) * st->meta_cap);
		f->meta_values = f->meta_values
			? repalloc(f->meta_values, sizeof(char *) * st->meta_cap)
			: palloc(sizeof(char *) * st->meta_cap);
	}
	f->meta_keys[f->nmeta] = key;
	f->meta_values[f->nmeta] = value;
	f->nmeta++;
}

/* JSON callback: a scalar value; we own token */
static RecsysJsonResult
OnScalar(void *state, char *token, JsonTokenType type)
{
	ParseState *st = (ParseState *) state;
	uint64		v;

	if (st->failed)
		goto done;
	if (st->depth == 0)
	{
		Fail(st, ST_BAD_FORMAT, "safetensors header must be a JSON object");
		goto done;
	}
	if (st->depth == 1)
	{
		if (strcmp(st->key, "__metadata__") == 0)
			Fail(st, ST_BAD_FORMAT, "safetensors __metadata__ must be an object");
		else
			FailTensor(st, "entry must be an object");
		goto done;
	}
	if (st->depth == 2 && st->top == IN_METADATA)
	{
		if (type != JSON_TOKEN_STRING)
		{
			FailMetaValue(st, st->field);
			goto done;
		}
		AddMeta(st, st->field, token);
		st->field = NULL;
		return RECSYS_JSON_CONTINUE;
	}
	if (st->depth == 2)
	{
		if (strcmp(st->field, "dtype") != 0)
		{
			FailTensor(st, strcmp(st->field, "shape") == 0
					   ? "\"shape\" must be an array"
					   : "\"data_offsets\" must be an array");
			goto done;
		}
		if (type != JSON_TOKEN_STRING)
		{
			FailTensor(st, "\"dtype\" must be a string");
			goto done;
		}
		for (int i = 0; i < ST_NUM_DTYPES; i++)
			if (strcmp(token, DtypeInfo[i].name) == 0)
			{
				st->cur.dtype = (SafetensorsDtype) i;
				goto done;
			}
		{
			char		msg[160];
			char		shown[80];

			SafetensorsPrintable(token, shown, sizeof(shown));
			snprintf(msg, sizeof(msg), "unknown dtype \"%s\"", shown);
			FailTensor(st, msg);
		}
		goto done;
	}

	/* depth 3: an element of shape or data_offsets */
	if (type != JSON_TOKEN_NUMBER || !ParseUint64(token, &v))
	{
		FailTensor(st, st->array == SEEN_SHAPE
				   ? "\"shape\" elements must be non-negative integers"
				   : "\"data_offsets\" elements must be non-negative integers");
		goto done;
	}
	if (st->array == SEEN_SHAPE)
	{
		if (st->cur.ndim == SAFETENSORS_MAX_NDIM)
		{
			char		shown[80];

			SafetensorsPrintable(st->key, shown, sizeof(shown));
			Fail(st, ST_TOO_LARGE, "safetensors tensor \"%s\" has more than %d dimensions",
				 shown, SAFETENSORS_MAX_NDIM);
			goto done;
		}
		st->cur.shape[st->cur.ndim++] = v;
	}
	else
	{
		if (st->noffsets == 2)
		{
			FailTensor(st, "\"data_offsets\" must have exactly 2 elements");
			goto done;
		}
		if (st->noffsets++ == 0)
			st->cur.begin = v;
		else
			st->cur.end = v;
	}
done:
	if (token)
		pfree(token);
	return RECSYS_JSON_CONTINUE;
}

/* Order tensors by name */
static int
CompareTensorNames(const void *a, const void *b)
{
	return strcmp(((const SafetensorsTensor *) a)->name,
				  ((const SafetensorsTensor *) b)->name);
}

/* Order tensor pointers by data offsets */
static int
CompareTensorOffsets(const void *a, const void *b)
{
	const SafetensorsTensor *x = *(const SafetensorsTensor *const *) a;
	const SafetensorsTensor *y = *(const SafetensorsTensor *const *) b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return 0;
}

/* Order metadata indexes by key */
static int
CompareMetaKeys(const void *a, const void *b, void *arg)
{
	char	  **keys = (char **) arg;

	return strcmp(keys[*(const int *) a], keys[*(const int *) b]);
}

/*
 * Tell whether buf starts like a torch.save file: a ZIP archive (the format
 * since PyTorch 1.6) or a pickle stream of protocol 2 or later (older files).
 * A valid safetensors file can start with the same bytes, so this only
 * explains bytes already found invalid.
 */
static bool
LooksLikeTorchSave(const unsigned char *buf, uint64 len)
{
	if (len >= 4 && memcmp(buf, "PK\x03\x04", 4) == 0)
		return true;
	return len >= 2 && buf[0] == 0x80 && buf[1] >= 2 && buf[1] <= 5;
}

/*
 * Tell what text encoding of a file buf holds when it is nothing but the
 * characters of one: "hex" (hex digits, with or without the leading \x of
 * bytea's text form) or "base64" (its alphabet, padding and line breaks).
 * Such bytes come from a client that sent the encoded text of the file as
 * the bytea value, or a cast of text that was never decoded.  NULL when
 * the bytes are not all text of either kind.
 */
static const char *
TextEncodingOf(const unsigned char *buf, uint64 len)
{
	bool		hex = true;
	bool		base64 = true;
	uint64		i = 0;

	if (len >= 2 && buf[0] == '\\' && (buf[1] == 'x' || buf[1] == 'X'))
		i = 2;
	else if (len >= 4 && buf[0] == '\\' && buf[1] == '\\' && (buf[2] == 'x' || buf[2] == 'X'))
		i = 3;					/* an escaped backslash: '\\x..' in escape syntax */
	for (uint64 j = i; j < len && (hex || base64); j++)
	{
		unsigned char c = buf[j];
		bool		space = c == '\n' || c == '\r' || c == ' ' || c == '\t';

		hex &= isxdigit(c) || space;
		base64 &= i == 0 && (isalnum(c) || c == '+' || c == '/' || c == '=' ||
							 c == '-' || c == '_' || space);
	}
	if (hex)
		return "hex";
	return base64 ? "base64" : NULL;
}

/*
 * Record the error for bytes that are not a safetensors file at all; detail
 * says why, unless the bytes are recognizably a torch.save file or the
 * text of an encoded file
 */
static void
NotSafetensors(ParseState *st, const unsigned char *buf, uint64 len, const char *detail)
{
	const char *encoding = TextEncodingOf(buf, len);

	Fail(st, ST_BAD_FORMAT, "not a safetensors file");
	if (encoding != NULL)
	{
		int			shown = 0;

		while (shown < 12 && shown < len && !isspace(buf[shown]))
			shown++;
		snprintf(st->err->detail, sizeof(st->err->detail),
				 "The " UINT64_FORMAT " bytes are all %s text (they start with \"%.*s\"): the encoded text of a file was passed instead of its bytes.",
				 len, encoding, shown, (const char *) buf);
		snprintf(st->err->hint, sizeof(st->err->hint), "%s",
				 "Pass the file's bytes: decode(text, 'base64') or decode(text, 'hex') in SQL; in psql, \\set weights `base64 -w0 file.safetensors` and decode(:'weights', 'base64'), or pg_read_binary_file(path) on the server; from a driver, a binary parameter (psycopg: a bytes value).");
		return;
	}
	snprintf(st->err->detail, sizeof(st->err->detail), "%s",
			 LooksLikeTorchSave(buf, len)
			 ? "The data starts like a file written by torch.save (a ZIP archive or a pickle)."
			 : detail);
	snprintf(st->err->hint, sizeof(st->err->hint), "%s",
			 "Write the weights with safetensors (safetensors.torch.save_file(model.state_dict(), path)), not torch.save.");
}

/*
 * Get the deepest nesting of [ and { outside strings, stopping early once it
 * passes limit; when it passes limit inside a __metadata__ value, copy that
 * value's key into meta_key (else leave it empty).  This is not a JSON
 * parser: it only keeps pg_parse_json's recursion bounded.
 */
static int
NestingDepth(const char *s, int len, int limit, char *meta_key, int meta_key_len)
{
	int			depth = 0;
	int			max = 0;
	bool		in_string = false;
	int			str_start = 0;
	bool		top_is_meta = false;	/* the last top-level string is "__metadata__" */
	int			sub_start = -1;		/* the last string one level down */
	int			sub_len = 0;

	for (int i = 0; i < len; i++)
	{
		char		c = s[i];

		if (in_string)
		{
			if (c == '\\')
				i++;
			else if (c == '"')
			{
				in_string = false;
				if (depth == 1)
					top_is_meta = i - str_start == 12 && memcmp(s + str_start, "__metadata__", 12) == 0;
				else if (depth == 2)
				{
					sub_start = str_start;
					sub_len = i - str_start;
				}
			}
		}
		else if (c == '"')
		{
			in_string = true;
			str_start = i + 1;
		}
		else if (c == '{' || c == '[')
		{
			if (++depth > max)
				max = depth;
			if (max > limit)
				break;
		}
		else if (c == '}' || c == ']')
			depth--;
	}
	if (max > limit && top_is_meta && sub_start >= 0)
		snprintf(meta_key, meta_key_len, "%.*s", Min(sub_len, meta_key_len - 1), s + sub_start);
	else
		meta_key[0] = '\0';
	return max;
}

/* Check the 8-byte length and the header bytes (size, opening brace, UTF-8, nesting); set the data area */
static bool
CheckFrame(ParseState *st, const unsigned char *buf, uint64 len, char **header_out)
{
	SafetensorsError *err = st->err;
	SafetensorsFile *file = st->file;
	uint64		n;
	char	   *header;
	char		meta_key[80];

	if (len < 8)
	{
		Fail(st, ST_BAD_FORMAT, "safetensors data is too short");
		snprintf(err->detail, sizeof(err->detail),
				 "Got " UINT64_FORMAT " bytes; the 8-byte header length alone needs 8.", len);
		return false;
	}
	n = 0;
	for (int i = 7; i >= 0; i--)
		n = (n << 8) | buf[i];
	if (n > len - 8)
	{
		char		detail[200];

		snprintf(detail, sizeof(detail),
				 "The first 8 bytes give a header length of " UINT64_FORMAT ", but only " UINT64_FORMAT " bytes follow them.",
				 n, len - 8);
		NotSafetensors(st, buf, len, detail);
		return false;
	}
	if (n > SAFETENSORS_MAX_HEADER)
	{
		Fail(st, ST_TOO_LARGE, "safetensors header of " UINT64_FORMAT " bytes is longer than %d bytes",
			 n, SAFETENSORS_MAX_HEADER);
		return false;
	}
	if (n < 2 || buf[8] != '{')
	{
		NotSafetensors(st, buf, len, "The header after the 8-byte length does not start with '{'.");
		return false;
	}
	header = (char *) buf + 8;
	if (pg_encoding_verifymbstr(PG_UTF8, header, (int) n) != (int) n)
	{
		Fail(st, ST_BAD_FORMAT, "safetensors header is not valid UTF-8");
		return false;
	}
	if (NestingDepth(header, (int) n, ST_MAX_DEPTH, meta_key, sizeof(meta_key)) > ST_MAX_DEPTH)
	{
		/* a JSON object or array given as a metadata value is the usual cause */
		if (meta_key[0])
			FailMetaValue(st, meta_key);
		else
			Fail(st, ST_BAD_FORMAT, "safetensors header nests deeper than a tensor entry");
		return false;
	}
	file->data = buf + 8 + n;
	file->data_len = len - 8 - n;
	file->header_len = n;
	*header_out = header;
	return true;
}

/* The syntax pass over the header, with no semantic actions */
static bool
CheckSyntax(ParseState *st, char *header, uint64 n)
{
	SafetensorsError *err = st->err;
	JsonLexContext *lex;
	JsonParseErrorType jerr;

	/*
	 * Check the syntax first with no semantic actions: on a syntax error the
	 * frontend parser leaks the key or scalar it had just copied, so the
	 * pass with callbacks only ever sees valid JSON.  The lexer does not
	 * write into its input.
	 */
	lex = RecsysJsonLexer(header, n, false);
	jerr = pg_parse_json(lex, &nullSemAction);
	if (jerr != JSON_SUCCESS)
	{
		Fail(st, ST_BAD_FORMAT, "safetensors header is not valid JSON");
#ifndef FRONTEND
		snprintf(err->detail, sizeof(err->detail), "%s", json_errdetail(jerr, lex));
#else
		snprintf(err->detail, sizeof(err->detail), "JSON parse error %d.", (int) jerr);
#endif
		RecsysFreeJsonLexer(lex);
		return false;
	}
	RecsysFreeJsonLexer(lex);
	return true;
}

/* The pass with callbacks: tensor entries and metadata into st->file; st->failed on a problem */
static void
ParseEntries(ParseState *st, char *header, uint64 n)
{
	JsonSemAction sem;
	JsonLexContext *lex;
	JsonParseErrorType jerr;

	memset(&sem, 0, sizeof(sem));
	sem.semstate = st;
	sem.object_start = OnObjectStart;
	sem.object_end = OnObjectEnd;
	sem.array_start = OnArrayStart;
	sem.array_end = OnArrayEnd;
	sem.object_field_start = OnFieldStart;
	sem.object_field_end = OnFieldEnd;
	sem.scalar = OnScalar;


	lex = RecsysJsonLexer(header, n, true);
	jerr = pg_parse_json(lex, &sem);
	if (jerr != JSON_SUCCESS)
	{
		/* only reachable through an error inside the parser's own checks */
		st->failed = false;
		Fail(st, ST_BAD_FORMAT, "safetensors header is not valid JSON");
	}
	RecsysFreeJsonLexer(lex);
	if (st->key)
		pfree(st->key);
	if (st->field)
		pfree(st->field);
}

/* Tensor names and metadata keys are unique; metadata sorted by key */
static bool
CheckUnique(ParseState *st)
{
	SafetensorsFile *file = st->file;

	/* Names are unique */
	if (file->ntensors > 1)
		qsort(file->tensors, file->ntensors, sizeof(SafetensorsTensor), CompareTensorNames);
	for (int i = 1; i < file->ntensors; i++)
		if (strcmp(file->tensors[i - 1].name, file->tensors[i].name) == 0)
		{
			st->key = file->tensors[i].name;
			FailTensor(st, "appears twice");
			st->key = NULL;
			return false;
		}
	if (file->nmeta > 1)
	{
		int		   *idx = palloc(sizeof(int) * file->nmeta);
		char	  **k = palloc(sizeof(char *) * file->nmeta);
		char	  **v = palloc(sizeof(char *) * file->nmeta);
		bool		dup = false;

		for (int i = 0; i < file->nmeta; i++)
			idx[i] = i;
		qsort_arg(idx, file->nmeta, sizeof(int), CompareMetaKeys, file->meta_keys);
		for (int i = 0; i < file->nmeta; i++)
		{
			k[i] = file->meta_keys[idx[i]];
			v[i] = file->meta_values[idx[i]];
			if (i > 0 && strcmp(k[i - 1], k[i]) == 0)
				dup = true;
		}
		pfree(idx);
		pfree(file->meta_keys);
		pfree(file->meta_values);
		file->meta_keys = k;
		file->meta_values = v;
		if (dup)
		{
			Fail(st, ST_BAD_FORMAT, "safetensors __metadata__ has a key twice");
			return false;
		}
	}
	return true;
}

/* The tensors tile the data area exactly: no overlap, no gap, no tail */
static bool
CheckTiling(ParseState *st)
{
	SafetensorsFile *file = st->file;
	SafetensorsTensor **order;

	if (file->ntensors > 0)
	{
		uint64		pos = 0;

		order = palloc(sizeof(SafetensorsTensor *) * file->ntensors);
		for (int i = 0; i < file->ntensors; i++)
			order[i] = &file->tensors[i];
		qsort(order, file->ntensors, sizeof(SafetensorsTensor *), CompareTensorOffsets);
		for (int i = 0; i < file->ntensors; i++)
		{
			st->key = order[i]->name;
			if (order[i]->begin < pos)
				FailTensor(st, "overlaps another tensor");
			else if (order[i]->begin > pos)
				FailTensor(st, "leaves a gap before its data");
			st->key = NULL;
			if (st->failed)
			{
				pfree(order);
				return false;
			}
			pos = order[i]->end;
		}
		pfree(order);
		if (pos != file->data_len)
		{
			Fail(st, ST_BAD_FORMAT, "safetensors data has " UINT64_FORMAT " bytes after the last tensor",
				 file->data_len - pos);
			return false;
		}
	}
	else if (file->data_len != 0)
	{
		Fail(st, ST_BAD_FORMAT, "safetensors data has " UINT64_FORMAT " bytes but no tensors",
			 file->data_len);
		return false;
	}
	return true;
}

/*
 * Parse and check a safetensors file held in buf[0..len).  On success fill
 * *file (tensors sorted by name; data points into buf) and return true; on
 * failure fill *err and return false, leaving nothing allocated.
 */
bool
SafetensorsParse(const unsigned char *buf, uint64 len, SafetensorsFile *file,
				 SafetensorsError *err)
{
	ParseState	st;
	char	   *header;

	memset(file, 0, sizeof(*file));
	memset(err, 0, sizeof(*err));
	memset(&st, 0, sizeof(st));
	st.err = err;
	st.file = file;

	if (!CheckFrame(&st, buf, len, &header))
		return false;
	if (!CheckSyntax(&st, header, file->header_len))
		return false;
	ParseEntries(&st, header, file->header_len);
	if (st.failed)
		goto fail;
	if (!CheckUnique(&st) || !CheckTiling(&st))
		goto fail;
	return true;

fail:
	SafetensorsFree(file);
	return false;
}

/* Free what SafetensorsParse allocated */
void
SafetensorsFree(SafetensorsFile *file)
{
	for (int i = 0; i < file->ntensors; i++)
		pfree(file->tensors[i].name);
	if (file->tensors)
		pfree(file->tensors);
	for (int i = 0; i < file->nmeta; i++)
	{
		pfree(file->meta_keys[i]);
		pfree(file->meta_values[i]);
	}
	if (file->meta_keys)
		pfree(file->meta_keys);
	if (file->meta_values)
		pfree(file->meta_values);
	memset(file, 0, sizeof(*file));
}

/* Get the tensor of that name, or NULL */
const SafetensorsTensor *
SafetensorsFind(const SafetensorsFile *file, const char *name)
{
	int			lo = 0;
	int			hi = file->ntensors - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		int			c = strcmp(file->tensors[mid].name, name);

		if (c == 0)
			return &file->tensors[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

/* Get the metadata value of a key, or NULL */
const char *
SafetensorsGetMeta(const SafetensorsFile *file, const char *key)
{
	for (int i = 0; i < file->nmeta; i++)
		if (strcmp(file->meta_keys[i], key) == 0)
			return file->meta_values[i];
	return NULL;
}

/* Get the format's name of a dtype */
const char *
SafetensorsDtypeName(SafetensorsDtype dtype)
{
	return DtypeInfo[dtype].name;
}

/* Get the size in bytes of one element of a dtype */
int
SafetensorsDtypeSize(SafetensorsDtype dtype)
{
	return DtypeInfo[dtype].size;
}

/* Tell whether a dtype can be read as floats (F16, BF16, F32, F64) */
bool
SafetensorsDtypeIsFloat(SafetensorsDtype dtype)
{
	return DtypeInfo[dtype].is_float;
}

/* Get a float from IEEE half-precision bits */
static inline float
HalfToFloat(uint16 h)
{
	uint32		sign = (uint32) (h & 0x8000) << 16;
	uint32		exp = (h >> 10) & 0x1f;
	uint32		mant = h & 0x3ff;
	uint32		bits;
	float		f;

	if (exp == 0)
	{
		/* zero or subnormal: mant * 2^-24, exact in float */
		f = (float) mant * (1.0f / 16777216.0f);
		return sign ? -f : f;
	}
	if (exp == 31)
		bits = sign | 0x7f800000 | (mant << 13);	/* infinity or NaN */
	else
		bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
	memcpy(&f, &bits, sizeof(f));
	return f;
}

/* Get a little-endian integer of the given width from possibly unaligned bytes */
#define READ_LE(type, p, out) \
	do { \
		type		v_; \
		memcpy(&v_, (p), sizeof(type)); \
		(out) = v_; \
	} while (0)

/*
 * Convert a floating tensor to float32 into out (t->nelem floats).  Returns
 * the number of elements that are NaN or infinite after conversion (F64
 * values beyond the float range count as infinite).
 */
uint64
SafetensorsToFloats(const SafetensorsFile *file, const SafetensorsTensor *t, float *out)
{
	const unsigned char *p = file->data + t->begin;
	uint64		bad = 0;

	Assert(SafetensorsDtypeIsFloat(t->dtype));
	switch (t->dtype)
	{
		case ST_F32:
			for (uint64 i = 0; i < t->nelem; i++)
			{
				uint32		bits;
				float		f;

				READ_LE(uint32, p + 4 * i, bits);
#ifdef WORDS_BIGENDIAN
				bits = pg_bswap32(bits);
#endif
				memcpy(&f, &bits, sizeof(f));
				out[i] = f;
				bad += !isfinite(f);
			}
			break;
		case ST_F64:
			for (uint64 i = 0; i < t->nelem; i++)
			{
				uint64		bits;
				double		d;

				READ_LE(uint64, p + 8 * i, bits);
#ifdef WORDS_BIGENDIAN
				bits = pg_bswap64(bits);
#endif
				memcpy(&d, &bits, sizeof(d));
				if (!isfinite(d) || fabs(d) > FLT_MAX)
				{
					bad++;
					out[i] = (float) (isnan(d) ? NAN : (d > 0 ? INFINITY : -INFINITY));
				}
				else
					out[i] = (float) d;
			}
			break;
		case ST_F16:
			for (uint64 i = 0; i < t->nelem; i++)
			{
				uint16		h;

				READ_LE(uint16, p + 2 * i, h);
#ifdef WORDS_BIGENDIAN
				h = pg_bswap16(h);
#endif
				out[i] = HalfToFloat(h);
				bad += ((h >> 10) & 0x1f) == 31;
			}
			break;
		case ST_BF16:
			for (uint64 i = 0; i < t->nelem; i++)
			{
				uint16		h;
				uint32		bits;
				float		f;

				READ_LE(uint16, p + 2 * i, h);
#ifdef WORDS_BIGENDIAN
				h = pg_bswap16(h);
#endif
				bits = (uint32) h << 16;
				memcpy(&f, &bits, sizeof(f));
				out[i] = f;
				bad += !isfinite(f);
			}
			break;
		default:
			Assert(false);
	}
	return bad;
}

#ifndef FRONTEND

/* Order tensor pointers as the reference writer does: wider dtypes first, then by name */
static int
CompareTensorLayout(const void *a, const void *b)
{
	const SafetensorsTensor *x = *(const SafetensorsTensor *const *) a;
	const SafetensorsTensor *y = *(const SafetensorsTensor *const *) b;
	int			sx = DtypeInfo[x->dtype].size;
	int			sy = DtypeInfo[y->dtype].size;

	if (sx != sy)
		return sx > sy ? -1 : 1;
	return strcmp(x->name, y->name);
}

/*
 * Write the tensors of a parsed file as a new safetensors file with the
 * given metadata (keys sorted, no duplicates): tensors laid out wider dtype
 * first, then by name, so that every tensor is aligned to its element size;
 * the header is padded with spaces to a multiple of 8 bytes.  The same
 * tensors and metadata always give the same bytes.
 */
bytea *
SafetensorsWrite(const SafetensorsFile *file, int nmeta,
				 const char *const *keys, const char *const *values)
{
	StringInfoData hdr;
	const SafetensorsTensor **order;
	uint64		pos = 0;
	uint64		total;
	bytea	   *result;
	unsigned char *p;
	uint64		n;

	order = palloc(sizeof(SafetensorsTensor *) * Max(file->ntensors, 1));
	for (int i = 0; i < file->ntensors; i++)
		order[i] = &file->tensors[i];
	if (file->ntensors > 1)
		qsort(order, file->ntensors, sizeof(SafetensorsTensor *), CompareTensorLayout);

	initStringInfo(&hdr);
	appendStringInfoChar(&hdr, '{');
	if (nmeta > 0)
	{
		appendStringInfoString(&hdr, "\"__metadata__\":{");
		for (int i = 0; i < nmeta; i++)
		{
			if (i > 0)
				appendStringInfoChar(&hdr, ',');
			escape_json(&hdr, keys[i]);
			appendStringInfoChar(&hdr, ':');
			escape_json(&hdr, values[i]);
		}
		appendStringInfoChar(&hdr, '}');
	}
	for (int i = 0; i < file->ntensors; i++)
	{
		const SafetensorsTensor *t = order[i];
		uint64		nbytes = t->end - t->begin;

		if (i > 0 || nmeta > 0)
			appendStringInfoChar(&hdr, ',');
		escape_json(&hdr, t->name);
		appendStringInfo(&hdr, ":{\"dtype\":\"%s\",\"shape\":[", DtypeInfo[t->dtype].name);
		for (int d = 0; d < t->ndim; d++)
			appendStringInfo(&hdr, "%s" UINT64_FORMAT, d > 0 ? "," : "", t->shape[d]);
		appendStringInfo(&hdr, "],\"data_offsets\":[" UINT64_FORMAT "," UINT64_FORMAT "]}",
						 pos, pos + nbytes);
		pos += nbytes;
	}
	appendStringInfoChar(&hdr, '}');
	while (hdr.len % 8 != 0)
		appendStringInfoChar(&hdr, ' ');

	n = (uint64) hdr.len;
	total = 8 + n + pos;
	if (total + VARHDRSZ > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("safetensors file of " UINT64_FORMAT " bytes is too large for bytea", total)));
	result = (bytea *) palloc(VARHDRSZ + total);
	SET_VARSIZE(result, VARHDRSZ + total);
	p = (unsigned char *) VARDATA(result);
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char) ((n >> (8 * i)) & 0xff);
	memcpy(p + 8, hdr.data, n);
	p += 8 + n;
	for (int i = 0; i < file->ntensors; i++)
	{
		const SafetensorsTensor *t = order[i];

		memcpy(p, file->data + t->begin, t->end - t->begin);
		p += t->end - t->begin;
	}
	pfree(hdr.data);
	pfree(order);
	return result;
}

#endif							/* FRONTEND */

/*
 * features/vocab.c
 *		Vocabularies of categorical features: a hash table from values
 *		(text bytes, or integers and booleans as int64) to ids 0 .. n-1
 *		with an occurrence count per value.  Fitting adds values in the
 *		order met and counts them; FeatureVocabFinish then orders them
 *		(count descending, ties by value: bytes for text, numbers for
 *		integers, false before true), applies min_count and max_size and
 *		gives the map from the provisional ids to the final ones.
 *		Scoring looks values up in the finished table.
 *
 * A vocabulary that will not change (one read from a fitted spec) is frozen
 * into a lookup index laid out for scoring, where lookups of values spread
 * over a vocabulary larger than the caches dominate the cost of encoding a
 * row.  Integers are compared in the slot itself.  So are text values of up
 * to VOCAB_INLINE bytes, in 32-byte slots holding the hash, the id and the
 * bytes: one cache miss per lookup, which FeatureVocabProbe can request
 * ahead of the lookup (perf of predict_table over a 50,000-value
 * vocabulary: with separate entries the prefetched slot arrived in time but
 * the dependent load of its entry did not, 88% of the lookup's time).  A
 * vocabulary with a longer value, or whose inline index would pass
 * VOCAB_INLINE_MAX_BYTES, keeps 8-byte slots (hash and offset) pointing at
 * entries holding the id, the length and the bytes together.  Integers
 * (and booleans) spread over a range no wider than VOCAB_DIRECT_SPAN
 * values, or 8 per value, are looked up in an array indexed by the value,
 * with no hashing; the frozen text index hashes with IndexTextHash, a few
 * multiplications for a value of up to 16 bytes where hash_bytes was 7 %
 * of encoding a row.  Indexes are lookup tables (store/lookup_memory.c: on
 * huge pages where the kernel has them).
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "utils/memutils.h"

#include "features/spec.h"
#include "store/lookup_memory.h"

/* Bytes of the chunks text values are copied into */
#define VOCAB_ARENA_CHUNK (64 * 1024)

/* Longest text value an inline slot holds, and the largest inline index */
#define VOCAB_INLINE 22
#define VOCAB_INLINE_MAX_BYTES ((Size) 64 * 1024 * 1024)

/* Widest range of integers looked up by value (besides 8 values per id) */
#define VOCAB_DIRECT_SPAN 4096

typedef struct FeatureVocab
{
	FeatureValueType type;
	MemoryContext cxt;
	int32		n;
	int32		cap;
	uint32		nslots;			/* a power of 2, at least 2 * cap */
	int32	   *slots;			/* id, or -1 for an empty slot */
	uint32	   *hash;			/* [cap] */
	int64	   *ival;			/* [cap] integer and boolean values */
	char	  **str;			/* [cap] text values (not NUL-terminated) */
	int32	   *len;			/* [cap] */
	int64	   *count;			/* [cap] */
	char	   *arena;			/* current chunk of text bytes */
	Size		arena_left;
	Size		bytes;			/* allocated, for memory accounting */

	/* the lookup index of a frozen vocabulary (slots and hash are freed) */
	bool		frozen;
	uint32		index_mask;		/* index slots - 1 */
	struct VocabIntSlot *int_index;
	struct VocabTextSlot *text_index;
	char	   *entries;		/* text: VocabTextEntry, 4-byte aligned */
	Size		entries_bytes;
	struct VocabInlineSlot *inline_index;	/* text, when every value fits */
	int32	   *direct;			/* integers in a narrow range: id of value - low */
	int64		low;
	uint64		span;
} FeatureVocab;

/* A slot of the index of an integer (or boolean) vocabulary; id -1 = empty */
typedef struct VocabIntSlot
{
	int64		ival;
	int32		id;
} VocabIntSlot;

/* A slot of the index of a text vocabulary; off 0 = empty */
typedef struct VocabTextSlot
{
	uint32		hash;
	uint32		off;			/* 1 + offset of the entry, in 4-byte units */
} VocabTextSlot;

/* A slot of the inline index of a text vocabulary; id -1 = empty */
typedef struct VocabInlineSlot
{
	uint32		hash;
	int32		id;
	int16		len;
	char		bytes[VOCAB_INLINE];
} VocabInlineSlot;

StaticAssertDecl(sizeof(VocabInlineSlot) == 32, "an inline slot is half a cache line");

/* What a text slot points at: the id and the bytes of the value */
typedef struct VocabTextEntry
{
	int32		id;
	int32		len;
	char		bytes[FLEXIBLE_ARRAY_MEMBER];
} VocabTextEntry;

/* Get the hash of a value */
static uint32
ValueHash(const FeatureVocab *v, int64 ival, const char *s, int len)
{
	if (v->type == FEATURE_VALUES_TEXT)
		return hash_bytes((const unsigned char *) s, len);
	return hash_bytes((const unsigned char *) &ival, sizeof(int64));
}

/* Read 8 bytes, 4 bytes of unaligned memory */
static inline uint64
Load64(const char *p)
{
	uint64		x;

	memcpy(&x, p, 8);
	return x;
}

static inline uint64
Load32(const char *p)
{
	uint32		x;

	memcpy(&x, p, 4);
	return x;
}

/*
 * Tell whether len bytes at a and b are equal, for len <= 24: at most three
 * word compares (overlapping where len is not a multiple of 8), where a
 * call of memcmp was most of the time a lookup spent after its slot arrived
 */
static inline bool
ShortEqual(const char *a, const char *b, int len)
{
	if (len >= 8)
		return Load64(a) == Load64(b) && Load64(a + len - 8) == Load64(b + len - 8) &&
			(len <= 16 || Load64(a + 8) == Load64(b + 8));
	if (len >= 4)
		return Load32(a) == Load32(b) && Load32(a + len - 4) == Load32(b + len - 4);
	for (int i = 0; i < len; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

/* Mix two words into 64 bits: the two halves of their 128-bit product, folded */
static inline uint64
Mix(uint64 a, uint64 b)
{
	unsigned __int128 r = (unsigned __int128) a * b;

	return (uint64) r ^ (uint64) (r >> 64);
}

/*
 * Get the hash of a text value in a frozen vocabulary's index: short values
 * (every value of an inline index) are read as at most two overlapping
 * words and mixed by multiplication; longer ones go through hash_bytes
 */
static inline uint32
IndexTextHash(const char *s, int len)
{
	uint64		a,
				b;

	if (len > 16)
		return hash_bytes((const unsigned char *) s, len);
	if (len >= 8)
	{
		a = Load64(s);
		b = Load64(s + len - 8);
	}
	else if (len >= 4)
	{
		a = Load32(s);
		b = Load32(s + len - 4);
	}
	else if (len > 0)
	{
		a = ((uint64) (unsigned char) s[0] << 16) | ((uint64) (unsigned char) s[len / 2] << 8) |
			(unsigned char) s[len - 1];
		b = 0;
	}
	else
		a = b = 0;
	return (uint32) Mix(a ^ UINT64CONST(0xa0761d6478bd642f),
						b ^ UINT64CONST(0xe7037ed1a0b428db) ^ (uint64) len);
}

/* Tell whether id holds the value */
static inline bool
ValueEquals(const FeatureVocab *v, int32 id, uint32 h, int64 ival, const char *s, int len)
{
	if (v->hash[id] != h)
		return false;
	if (v->type == FEATURE_VALUES_TEXT)
		return v->len[id] == len && memcmp(v->str[id], s, len) == 0;
	return v->ival[id] == ival;
}

/* Allocate arrays for cap values and a slot table */
static void
Allocate(FeatureVocab *v, int32 cap)
{
	uint32		nslots = 16;

	while (nslots < (uint32) cap * 2)
		nslots *= 2;
	v->cap = cap;
	v->nslots = nslots;
	v->slots = MemoryContextAllocHuge(v->cxt, sizeof(int32) * nslots);
	memset(v->slots, 0xff, sizeof(int32) * nslots);
	v->hash = MemoryContextAllocHuge(v->cxt, sizeof(uint32) * cap);
	v->count = MemoryContextAllocHuge(v->cxt, sizeof(int64) * cap);
	if (v->type == FEATURE_VALUES_TEXT)
	{
		v->str = MemoryContextAllocHuge(v->cxt, sizeof(char *) * cap);
		v->len = MemoryContextAllocHuge(v->cxt, sizeof(int32) * cap);
	}
	else
		v->ival = MemoryContextAllocHuge(v->cxt, sizeof(int64) * cap);
}

/* Get the slot of a value: where it is, or the empty slot where it would go */
static uint32
FindSlot(const FeatureVocab *v, uint32 h, int64 ival, const char *s, int len)
{
	uint32		mask = v->nslots - 1;
	uint32		i = h & mask;

	while (v->slots[i] >= 0 && !ValueEquals(v, v->slots[i], h, ival, s, len))
		i = (i + 1) & mask;
	return i;
}

/* Make an empty vocabulary for about expected values, in CurrentMemoryContext */
FeatureVocab *
FeatureVocabCreate(FeatureValueType type, int64 expected)
{
	FeatureVocab *v = palloc0(sizeof(FeatureVocab));

	v->type = type;
	v->cxt = CurrentMemoryContext;
	Allocate(v, (int32) Max(Min(expected, FEATURE_MAX_VOCAB), 8));
	return v;
}

/* Double the capacity, rehashing every value */
static void
Grow(FeatureVocab *v)
{
	FeatureVocab old = *v;

	if (v->cap >= PG_INT32_MAX / 4)
		elog(ERROR, "vocabulary too large");
	Allocate(v, v->cap * 2);
	memcpy(v->hash, old.hash, sizeof(uint32) * old.n);
	memcpy(v->count, old.count, sizeof(int64) * old.n);
	if (v->type == FEATURE_VALUES_TEXT)
	{
		memcpy(v->str, old.str, sizeof(char *) * old.n);
		memcpy(v->len, old.len, sizeof(int32) * old.n);
		pfree(old.str);
		pfree(old.len);
	}
	else
	{
		memcpy(v->ival, old.ival, sizeof(int64) * old.n);
		pfree(old.ival);
	}
	for (int32 id = 0; id < v->n; id++)
	{
		uint32		i = v->hash[id] & (v->nslots - 1);

		while (v->slots[i] >= 0)
			i = (i + 1) & (v->nslots - 1);
		v->slots[i] = id;
	}
	pfree(old.slots);
	pfree(old.hash);
	pfree(old.count);
}

/* Get the index slot of an integer: the high bits of a multiplicative hash */
static inline uint32
IntIndexHash(int64 ival)
{
	return (uint32) (((uint64) ival * UINT64CONST(0x9E3779B97F4A7C15)) >> 32);
}

/* Get the id of a value, or -1 when it is not in the vocabulary */
int32
FeatureVocabLookup(const FeatureVocab *v, int64 ival, const char *s, int len)
{
	return FeatureVocabLookupHashed(v, FeatureVocabProbe(v, ival, s, len), ival, s, len);
}

/*
 * Get the hash under which a frozen vocabulary's index finds a value, and
 * start loading the index slot it probes first into the cache: a caller
 * with several values to look up probes them all first, so that their
 * cache misses overlap instead of following one another
 */
uint32
FeatureVocabProbe(const FeatureVocab *v, int64 ival, const char *s, int len)
{
	uint32		h;

	if (!v->frozen)
		return ValueHash(v, ival, s, len);
	if (v->direct)
		return 0;				/* small: in the cache */
	if (v->type != FEATURE_VALUES_TEXT)
	{
		h = IntIndexHash(ival);
		__builtin_prefetch(&v->int_index[h & v->index_mask]);
	}
	else
	{
		h = IndexTextHash(s, len);
		if (v->inline_index)
			__builtin_prefetch(&v->inline_index[h & v->index_mask]);
		else
			__builtin_prefetch(&v->text_index[h & v->index_mask]);
	}
	return h;
}

/*
 * Get the id of a value given its hash from FeatureVocabProbe, or -1 when
 * it is not in the vocabulary
 */
int32
FeatureVocabLookupHashed(const FeatureVocab *v, uint32 h, int64 ival, const char *s, int len)
{
	uint32		i;

	if (!v->frozen)
		return v->slots[FindSlot(v, h, ival, s, len)];
	if (v->direct)
	{
		uint64		u = (uint64) ival - (uint64) v->low;

		return u < v->span ? v->direct[u] : -1;
	}
	if (v->type != FEATURE_VALUES_TEXT)
	{
		for (i = h & v->index_mask;; i = (i + 1) & v->index_mask)
		{
			const VocabIntSlot *slot = &v->int_index[i];

			if (slot->id < 0 || slot->ival == ival)
				return slot->id;
		}
	}
	if (v->inline_index)
	{
		if (len > VOCAB_INLINE)
			return -1;
		for (i = h & v->index_mask;; i = (i + 1) & v->index_mask)
		{
			const VocabInlineSlot *slot = &v->inline_index[i];

			if (slot->id < 0)
				return -1;
			if (slot->hash == h && slot->len == len && ShortEqual(slot->bytes, s, len))
				return slot->id;
		}
	}
	for (i = h & v->index_mask;; i = (i + 1) & v->index_mask)
	{
		const VocabTextSlot *slot = &v->text_index[i];
		const VocabTextEntry *e;

		if (slot->off == 0)
			return -1;
		if (slot->hash != h)
			continue;
		e = (const VocabTextEntry *) (v->entries + (Size) (slot->off - 1) * 4);
		if (e->len == len && memcmp(e->bytes, s, len) == 0)
			return e->id;
	}
}

/* Tell whether a text vocabulary gets the inline index of nslots slots */
static bool
InlineFits(const FeatureVocab *v, uint32 nslots)
{
	if ((Size) nslots * sizeof(VocabInlineSlot) > VOCAB_INLINE_MAX_BYTES)
		return false;
	for (int32 id = 0; id < v->n; id++)
		if (v->len[id] > VOCAB_INLINE)
			return false;
	return true;
}

/*
 * Tell whether an integer vocabulary's values lie in a range narrow enough
 * to index by value (VOCAB_DIRECT_SPAN, or 8 slots per value), and set the
 * range
 */
static bool
DirectFits(FeatureVocab *v)
{
	int64		lo = v->ival[0];
	int64		hi = v->ival[0];
	uint64		span;

	for (int32 id = 1; id < v->n; id++)
	{
		lo = Min(lo, v->ival[id]);
		hi = Max(hi, v->ival[id]);
	}
	span = (uint64) hi - (uint64) lo + 1;	/* 0 when the range is all of int64 */
	if (span == 0 || span > Max((uint64) VOCAB_DIRECT_SPAN, (uint64) v->n * 8))
		return false;
	v->low = lo;
	v->span = span;
	return true;
}

/*
 * Freeze a vocabulary that will not change (one read from a fitted spec):
 * build its lookup index and free the table that adding values needs.
 * FeatureVocabLookup gives the same ids before and after.
 */
void
FeatureVocabFreeze(FeatureVocab *v)
{
	uint32		nslots = 16;

	if (v->frozen)
		return;
	/* at most half full, so that a probe of a missing value stops soon */
	while (nslots < (uint32) v->n * 2)
		nslots *= 2;
	v->index_mask = nslots - 1;
	if (v->type != FEATURE_VALUES_TEXT && v->n > 0 && DirectFits(v))
	{
		v->direct = LookupTableAlloc(v->cxt, sizeof(int32) * v->span);
		memset(v->direct, 0xff, sizeof(int32) * v->span);
		for (int32 id = 0; id < v->n; id++)
			v->direct[(uint64) v->ival[id] - (uint64) v->low] = id;
	}
	else if (v->type != FEATURE_VALUES_TEXT)
	{
		v->int_index = LookupTableAlloc(v->cxt, sizeof(VocabIntSlot) * nslots);
		for (uint32 i = 0; i < nslots; i++)
			v->int_index[i].id = -1;
		for (int32 id = 0; id < v->n; id++)
		{
			uint32		i = IntIndexHash(v->ival[id]) & v->index_mask;

			while (v->int_index[i].id >= 0)
				i = (i + 1) & v->index_mask;
			v->int_index[i].ival = v->ival[id];
			v->int_index[i].id = id;
		}
	}
	else if (InlineFits(v, nslots))
	{
		v->inline_index = LookupTableAlloc(v->cxt, sizeof(VocabInlineSlot) * nslots);
		memset(v->inline_index, 0, sizeof(VocabInlineSlot) * nslots);
		for (uint32 i = 0; i < nslots; i++)
			v->inline_index[i].id = -1;
		for (int32 id = 0; id < v->n; id++)
		{
			uint32		h = IndexTextHash(v->str[id], v->len[id]);
			uint32		i = h & v->index_mask;

			while (v->inline_index[i].id >= 0)
				i = (i + 1) & v->index_mask;
			v->inline_index[i].hash = h;
			v->inline_index[i].id = id;
			v->inline_index[i].len = (int16) v->len[id];
			memcpy(v->inline_index[i].bytes, v->str[id], v->len[id]);
		}
	}
	else
	{
		Size		total = 0;
		Size		off = 0;

		for (int32 id = 0; id < v->n; id++)
			total += MAXALIGN(offsetof(VocabTextEntry, bytes) + v->len[id]);
		/* offsets are counted in 4-byte units in 32 bits */
		if (total / 4 >= PG_UINT32_MAX)
			elog(ERROR, "vocabulary too large to index");
		v->entries = LookupTableAlloc(v->cxt, Max(total, 1));
		v->entries_bytes = Max(total, 1);
		v->text_index = LookupTableAlloc(v->cxt, sizeof(VocabTextSlot) * nslots);
		memset(v->text_index, 0, sizeof(VocabTextSlot) * nslots);
		for (int32 id = 0; id < v->n; id++)
		{
			VocabTextEntry *e = (VocabTextEntry *) (v->entries + off);
			uint32		h = IndexTextHash(v->str[id], v->len[id]);
			uint32		i = h & v->index_mask;

			e->id = id;
			e->len = v->len[id];
			memcpy(e->bytes, v->str[id], v->len[id]);
			while (v->text_index[i].off != 0)
				i = (i + 1) & v->index_mask;
			v->text_index[i].hash = h;
			v->text_index[i].off = (uint32) (off / 4) + 1;
			off += MAXALIGN(offsetof(VocabTextEntry, bytes) + v->len[id]);
		}
	}
	pfree(v->slots);
	pfree(v->hash);
	v->slots = NULL;
	v->hash = NULL;
	v->frozen = true;
}

/*
 * Get the by-value index of a frozen integer vocabulary (id of value - low
 * for values in [low, low + span), -1 for a value not kept), or NULL when
 * it has none; a frozen vocabulary never changes, so a caller may keep it
 */
const int32 *
FeatureVocabDirect(const FeatureVocab *v, int64 *low, uint64 *span)
{
	if (!v->frozen || v->direct == NULL)
		return NULL;
	*low = v->low;
	*span = v->span;
	return v->direct;
}

/* Get the id of a value, adding it (count 0) when new */
int32
FeatureVocabAdd(FeatureVocab *v, int64 ival, const char *s, int len)
{
	uint32		h;
	uint32		slot;
	int32		id;

	if (v->frozen)
		elog(ERROR, "value added to a frozen vocabulary");
	h = ValueHash(v, ival, s, len);
	slot = FindSlot(v, h, ival, s, len);
	if (v->slots[slot] >= 0)
		return v->slots[slot];
	if (v->n == v->cap)
	{
		Grow(v);
		slot = FindSlot(v, h, ival, s, len);
	}
	id = v->n++;
	v->slots[slot] = id;
	v->hash[id] = h;
	v->count[id] = 0;
	if (v->type == FEATURE_VALUES_TEXT)
	{
		char	   *copy;

		if ((Size) len > v->arena_left)
		{
			Size		chunk = Max(VOCAB_ARENA_CHUNK, (Size) len);

			v->arena = MemoryContextAlloc(v->cxt, chunk);
			v->arena_left = chunk;
			v->bytes += chunk;
		}
		copy = v->arena;
		memcpy(copy, s, len);
		v->arena += len;
		v->arena_left -= len;
		v->str[id] = copy;
		v->len[id] = len;
	}
	else
		v->ival[id] = ival;
	return id;
}

/* Get the number of values */
int32
FeatureVocabCount(const FeatureVocab *v)
{
	return v->n;
}

/* Count occurrences of a value */
void
FeatureVocabIncrement(FeatureVocab *v, int32 id, int64 by)
{
	v->count[id] += by;
}

/* Get the occurrences counted for a value */
int64
FeatureVocabOccurrences(const FeatureVocab *v, int32 id)
{
	return v->count[id];
}

/* Get the value of an id */
void
FeatureVocabValue(const FeatureVocab *v, int32 id, int64 *ival, const char **s, int *len)
{
	if (v->type == FEATURE_VALUES_TEXT)
	{
		*s = v->str[id];
		*len = v->len[id];
		*ival = 0;
	}
	else
	{
		*ival = v->ival[id];
		*s = NULL;
		*len = 0;
	}
}

/* Get the bytes a vocabulary holds */
Size
FeatureVocabBytes(const FeatureVocab *v)
{
	Size		per = sizeof(uint32) + sizeof(int64) +
		(v->type == FEATURE_VALUES_TEXT ? sizeof(char *) + sizeof(int32) : sizeof(int64));

	if (v->frozen && v->direct)
		return sizeof(FeatureVocab) + (Size) v->cap * (per - sizeof(uint32)) + v->bytes +
			(Size) v->span * sizeof(int32);
	if (v->frozen)
		return sizeof(FeatureVocab) + (Size) v->cap * (per - sizeof(uint32)) + v->bytes +
			(Size) (v->index_mask + 1) * (v->inline_index ? sizeof(VocabInlineSlot)
										  : v->type == FEATURE_VALUES_TEXT
										  ? sizeof(VocabTextSlot) : sizeof(VocabIntSlot)) +
			v->entries_bytes;
	return sizeof(FeatureVocab) + (Size) v->nslots * sizeof(int32) + (Size) v->cap * per + v->bytes;
}

static const FeatureVocab *SortVocab;

/* Order ids by count descending, then by value ascending */
static int
CompareIds(const void *pa, const void *pb)
{
	int32		a = *(const int32 *) pa;
	int32		b = *(const int32 *) pb;
	const FeatureVocab *v = SortVocab;

	if (v->count[a] != v->count[b])
		return v->count[a] > v->count[b] ? -1 : 1;
	if (v->type == FEATURE_VALUES_TEXT)
	{
		int			c = memcmp(v->str[a], v->str[b], Min(v->len[a], v->len[b]));

		if (c != 0)
			return c;
		return v->len[a] < v->len[b] ? -1 : v->len[a] > v->len[b];
	}
	return v->ival[a] < v->ival[b] ? -1 : v->ival[a] > v->ival[b];
}

/*
 * Finish a counted vocabulary: keep the values counted at least min_count
 * times, the max_size most frequent of them (ties by value), and replace *v
 * with a vocabulary of the kept values in that order.  Returns the map from
 * old ids to new ones (-1 = out of vocabulary) and the occurrences that
 * fell out in *oov.
 */
int32 *
FeatureVocabFinish(FeatureVocab **vp, int min_count, int max_size, int64 *oov)
{
	FeatureVocab *v = *vp;
	FeatureVocab *kept;
	int32	   *order = MemoryContextAllocHuge(v->cxt, sizeof(int32) * Max(v->n, 1));
	int32	   *map = MemoryContextAllocHuge(v->cxt, sizeof(int32) * Max(v->n, 1));
	MemoryContext old = MemoryContextSwitchTo(v->cxt);
	int32		nkept = 0;

	for (int32 i = 0; i < v->n; i++)
	{
		order[i] = i;
		map[i] = -1;
	}
	SortVocab = v;
	qsort(order, v->n, sizeof(int32), CompareIds);
	*oov = 0;
	for (int32 i = 0; i < v->n; i++)
	{
		if (v->count[order[i]] >= min_count && nkept < max_size)
			map[order[i]] = nkept++;
		else
			*oov += v->count[order[i]];
	}
	kept = FeatureVocabCreate(v->type, nkept);
	for (int32 i = 0; i < nkept; i++)
	{
		int32		id = order[i];
		int32		nid = v->type == FEATURE_VALUES_TEXT
			? FeatureVocabAdd(kept, 0, v->str[id], v->len[id])
			: FeatureVocabAdd(kept, v->ival[id], NULL, 0);

		kept->count[nid] = v->count[id];
	}
	MemoryContextSwitchTo(old);
	pfree(order);
	*vp = kept;
	return map;
}

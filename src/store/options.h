/*
 * store/options.h
 *		The one parser of a trainer's JSON options: each trainer declares a
 *		table of its options (name, scopes, type, default, range) and gets
 *		them checked, defaulted and stored into its settings struct.
 */
#ifndef STORE_OPTIONS_H
#define STORE_OPTIONS_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

typedef enum OptionType
{
	OPT_INT64,					/* stored as int64 */
	OPT_INTEGER,				/* stored as int */
	OPT_NUMBER,					/* stored as double */
	OPT_WORD,					/* stored as int: the index of the word */
	OPT_BOOL,					/* stored as bool */
	OPT_NUMBERS,				/* stored as OptionNumbers: an array, each number in range */
	OPT_INTEGERS,				/* stored as OptionNumbers: an array, each an integer in range */
	OPT_OBJECT					/* stored as Jsonb *: a JSON object the trainer reads itself */
} OptionType;

/* The most numbers an OPT_NUMBERS option holds */
#define OPTION_MAX_NUMBERS 64

typedef struct OptionNumbers
{
	int			n;
	double		x[OPTION_MAX_NUMBERS];
} OptionNumbers;

typedef struct OptionDef
{
	const char *name;
	int			scopes;			/* bits: the scopes (methods) that have it */
	OptionType	type;
	const char *def;			/* default, as JSON; NULL: the field keeps the caller's value */
	double		min;
	double		max;
	bool		min_open;		/* the range excludes min */
	const char *const *words;	/* OPT_WORD: the allowed words, NULL-terminated */
	size_t		offset;			/* where the settings struct keeps it */
	const char *description;
	bool		unlisted;		/* not in the resolved options' JSON (the store's, e.g. promote) */
} OptionDef;

/* A trainer's options */
typedef struct OptionTable
{
	const OptionDef *defs;
	int			ndefs;
	const char *prefix;			/* put before each name in errors (an object inside a config: "item."), or NULL */
} OptionTable;

extern void OptionsParse(const OptionTable *table, int scope, const char *owner,
						 const char *owner_phrase, Jsonb *options, void *out,
						 bool *given, StringInfo json);
extern const char *OptionTypeName(OptionType type);

#endif

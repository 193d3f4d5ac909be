/*
 * fuzz_safetensors.c
 *		libFuzzer target for the safetensors parser (src/safetensors.c built
 *		with -DFRONTEND against libpgcommon/libpgport).
 *
 * Every input must either parse into a file whose tensors lie inside the
 * input and tile its data area, or fail with a message; the sanitizers
 * catch anything else (out-of-bounds reads, leaks, undefined behaviour).
 */
#include "postgres_fe.h"

#include <stdlib.h>

#include "store/safetensors.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parse one input and check the invariants the extension relies on */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	SafetensorsFile file;
	SafetensorsError err;
	uint64		covered = 0;

	if (!SafetensorsParse(data, size, &file, &err))
	{
		if (err.status == ST_OK || err.message[0] == '\0')
			abort();
		return 0;
	}
	if (file.data + file.data_len != data + size)
		abort();
	for (int i = 0; i < file.ntensors; i++)
	{
		const SafetensorsTensor *t = &file.tensors[i];

		if (t->end > file.data_len || t->begin > t->end ||
			t->end - t->begin != t->nelem * SafetensorsDtypeSize(t->dtype))
			abort();
		if (SafetensorsFind(&file, t->name) != t)
			abort();
		covered += t->end - t->begin;
		if (SafetensorsDtypeIsFloat(t->dtype) && t->nelem > 0)
		{
			float	   *out = malloc(sizeof(float) * t->nelem);

			(void) SafetensorsToFloats(&file, t, out);
			free(out);
		}
	}
	if (covered != file.data_len)
		abort();
	SafetensorsFree(&file);
	return 0;
}

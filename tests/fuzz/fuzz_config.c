/*
 * fuzz_config.c - feeds arbitrary bytes to the config loader (YAML tree,
 * keyword tables, cross-field checks) without touching the file system,
 * and checks its promises: a failure leaves no config and a message naming
 * the file; a loaded config dumps, the dump loads again to the same dump,
 * and it is reload-compatible with itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dump(const struct dz_config *c, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);

    if (!f)
        return NULL;
    if (dz_config_dump(c, f) != 0)
        abort();
    fclose(f);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dz_config *c = NULL;
    struct dz_config *again = NULL;
    char err[512];
    char *one = NULL;
    char *two = NULL;
    size_t one_len = 0;
    size_t two_len = 0;

    err[0] = '\0';
    if (dz_config_load_buf("fuzz.yaml", data, size, DZ_CONFIG_NO_FS, &c, err, sizeof(err)) != 0) {
        if (c || strncmp(err, "fuzz.yaml", 9) != 0)
            abort();
        return 0;
    }
    if (dz_config_reload_check(c, c, err, sizeof(err)) != 0)
        abort();
    one = dump(c, &one_len);
    if (one) {
        if (dz_config_load_buf("fuzz.yaml", one, one_len, DZ_CONFIG_NO_FS, &again, err,
                               sizeof(err)) != 0)
            abort();
        two = dump(again, &two_len);
        if (two && strcmp(one, two) != 0)
            abort();
    }
    free(one);
    free(two);
    dz_config_free(again);
    dz_config_free(c);
    return 0;
}

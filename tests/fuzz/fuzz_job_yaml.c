/*
 * fuzz_job_yaml.c — the YAML job loader, from bytes to a validated plan:
 * libyaml events into a config tree (${VAR} substitution, anchors, nesting
 * limits), `--set` overrides, every key table, reference and record-type
 * check, parallelism and planning (rn_job_load). Errors are expected and fine;
 * crashes, leaks, undefined behaviour and an empty error message are not.
 *
 * Input: the job file. Leading lines of the form `#=key.path=value` (YAML
 * comments, so the document stays the same) are also passed as `--set`
 * overrides, so the fuzzer reaches rn_cfg_set too.
 */
#include <stdint.h>

#include "fuzz_util.h"
#include "rn_job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *sets[8];
    char *owned[8];
    size_t n_sets = 0, at = 0;
    while (n_sets < 8 && size - at > 2 && data[at] == '#' && data[at + 1] == '=') {
        const uint8_t *nl = memchr(data + at, '\n', size - at);
        size_t len = nl ? (size_t)(nl - (data + at)) : size - at;
        owned[n_sets] = strndup((const char *)data + at + 2, len - 2);
        sets[n_sets] = owned[n_sets];
        n_sets++;
        at += nl ? len + 1 : len;
    }
    const char *path = rn_fuzz_file("job.yaml", data, size);
    struct rn_job_options opt = {.overrides = sets, .n_overrides = n_sets, .quiet = 1};
    char err[1024] = "";
    struct rn_job *job = rn_job_load(path, &opt, err, sizeof err);
    if (job) {
        rn_job_destroy(job);
    } else if (!err[0]) {
        fprintf(stderr, "rn_job_load failed without a message\n");
        abort();
    }
    for (size_t i = 0; i < n_sets; i++)
        free(owned[i]);
    return 0;
}

/*
 * rn_test.h — the tiny harness every C test uses: CHECK macros that report
 * file:line and keep counting, and a summary line "N passed, N failed".
 * Each test is its own executable, run by ctest with a timeout.
 */
#ifndef RUNNEL_RN_TEST_H
#define RUNNEL_RN_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rn_test_passed, rn_test_failed;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (cond) {                                                                            \
            rn_test_passed++;                                                                  \
        } else {                                                                               \
            rn_test_failed++;                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);           \
        }                                                                                      \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                     \
    do {                                                                                       \
        long long rn_a_ = (long long)(a), rn_b_ = (long long)(b);                              \
        if (rn_a_ == rn_b_) {                                                                  \
            rn_test_passed++;                                                                  \
        } else {                                                                               \
            rn_test_failed++;                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__,        \
                    __LINE__, #a, #b, rn_a_, rn_b_);                                           \
        }                                                                                      \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                                        \
    do {                                                                                       \
        const char *rn_h_ = (hay);                                                             \
        if (rn_h_ && strstr(rn_h_, (needle))) {                                                \
            rn_test_passed++;                                                                  \
        } else {                                                                               \
            rn_test_failed++;                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: \"%s\" contains \"%s\"\n", __FILE__,         \
                    __LINE__, rn_h_ ? rn_h_ : "(null)", (needle));                             \
        }                                                                                      \
    } while (0)

static inline int rn_test_summary(void)
{
    printf("%d passed, %d failed\n", rn_test_passed, rn_test_failed);
    return rn_test_failed ? 1 : 0;
}

#endif

/*
 * test_op_abi.c — rn_op_register checks the operator ABI: abi_version and
 * struct_size (RN_OP_TYPE_HEAD), refusing types built against a newer or an
 * incompatible header with a message that says what to do, and reading the
 * fields a smaller (older) struct lacks as NULL.
 */
#include "rn_test.h"

#include <stddef.h>

#include "rn_operator.h"

static int noop_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    (void)op, (void)in, (void)out;
    return 0;
}

static const struct rn_port_decl out1[] = {{NULL, "*", "all"}};

#define BASE(nm)                                                                               \
    .name = nm, .description = "test", .kind = RN_KIND_OPERATOR, .ctx_size = 1, .in_type = "*", \
    .outputs = out1, .n_outputs = 1, .process = noop_process

int main(void)
{
    char err[300];

    /* A well-formed type registers and is found. */
    static const struct rn_op_type good = {RN_OP_TYPE_HEAD, BASE("abi_good")};
    CHECK_EQ_INT(rn_op_register_err(&good, err, sizeof err), 0);
    const struct rn_op_type *found = rn_op_find("abi_good", RN_KIND_OPERATOR);
    CHECK(found != NULL);
    CHECK(found && found->process == noop_process);
    /* Registering the same type again is a no-op. */
    CHECK_EQ_INT(rn_op_register_err(&good, err, sizeof err), 0);

    /* Built against a newer ABI. */
    struct rn_op_type newer = {RN_OP_TYPE_HEAD, BASE("abi_newer")};
    newer.abi_version = RN_OP_ABI_VERSION + 1;
    err[0] = 0;
    CHECK_EQ_INT(rn_op_register_err(&newer, err, sizeof err), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "newer than this runtime's");
    CHECK_STR_CONTAINS(err, "abi_newer");
    CHECK(rn_op_find("abi_newer", RN_KIND_OPERATOR) == NULL);

    /* ABI 1 (no struct_size). */
    struct rn_op_type v1 = {RN_OP_TYPE_HEAD, BASE("abi_v1")};
    v1.abi_version = 1;
    CHECK_EQ_INT(rn_op_register_err(&v1, err, sizeof err), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "RN_OP_TYPE_HEAD");

    /* struct_size smaller than ABI 2 requires (left 0: no RN_OP_TYPE_HEAD). */
    struct rn_op_type small = {.abi_version = RN_OP_ABI_VERSION, BASE("abi_small")};
    CHECK_EQ_INT(rn_op_register_err(&small, err, sizeof err), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "smaller than ABI");

    /* struct_size larger than this runtime knows (a newer header, same version). */
    struct rn_op_type large = {RN_OP_TYPE_HEAD, BASE("abi_large")};
    large.struct_size = (uint32_t)sizeof(struct rn_op_type) + 8;
    CHECK_EQ_INT(rn_op_register_err(&large, err, sizeof err), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "larger than this runtime's");
    CHECK(rn_op_find("abi_large", RN_KIND_OPERATOR) == NULL);

    /* rn_op_register refuses it too (the message goes to stderr). */
    CHECK_EQ_INT(rn_op_register(&large), RN_EINVAL);

    /* An older ABI 2 struct that ends at `ratios`: accepted, and the fields it
     * lacks read as NULL/0 in the registered copy, however the memory after
     * the operator's struct looks. */
    static struct {
        struct rn_op_type t;
    } older;
    memset(&older, 0xAB, sizeof older);
    struct rn_op_type tmp = {RN_OP_TYPE_HEAD, BASE("abi_older")};
    size_t old_size = offsetof(struct rn_op_type, ratios) + sizeof(void *);
    memcpy(&older.t, &tmp, old_size);
    older.t.struct_size = (uint32_t)old_size;
    CHECK_EQ_INT(rn_op_register_err(&older.t, err, sizeof err), 0);
    found = rn_op_find("abi_older", RN_KIND_OPERATOR);
    CHECK(found != NULL);
    if (found && old_size < sizeof(struct rn_op_type)) {
        const unsigned char *tail = (const unsigned char *)found + old_size;
        int zero = 1;
        for (size_t i = 0; i < sizeof(struct rn_op_type) - old_size; i++)
            if (tail[i]) zero = 0;
        CHECK(zero);
    }

    /* A duplicate name of the same kind is refused. */
    struct rn_op_type dup = {RN_OP_TYPE_HEAD, BASE("abi_good")};
    CHECK_EQ_INT(rn_op_register_err(&dup, err, sizeof err), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "registered twice");

    /* Every built-in operator registers cleanly. */
    rn_operators_init();
    CHECK(rn_op_find("filter", RN_KIND_OPERATOR) != NULL);
    CHECK(rn_op_find("file", RN_KIND_SOURCE) != NULL);
    return rn_test_summary();
}

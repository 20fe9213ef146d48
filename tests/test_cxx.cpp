/*
 * The public headers from C++: <vmmem/vmmem.h> compiles with -std=c++11
 * -Wall -Wextra -pedantic -Werror (no flexible array members, no implicit
 * void* conversions, extern "C" linkage), and the inline fast paths and a
 * few calls behave as from C.  No CUnit here: it prints the result line the
 * test runner reads.
 */
#include <vmmem/vmmem.h>

#include <cstdio>
#include <cstring>

static int checks, failures;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        checks++;                                                                       \
        if (!(cond)) {                                                                  \
            failures++;                                                                 \
            std::printf("    FAILED: %s (line %d): %s\n", #cond, __LINE__,             \
                        vmmem_last_message());                                          \
        }                                                                               \
    } while (0)

int main()
{
    std::printf("Suite: C++\n");
    vmmem_map *m = nullptr;
    CHECK(vmmem_map_from_config(&m, nullptr, "mmap:addr=0,size=0x1000;mmap:addr=0x1000,size=0x1000",
                                nullptr) == 0);
    if (m == nullptr) {
        std::printf("VMMEM-TEST-RESULT tests=1 failed=1 suites_failed=0 records=%d\n", failures);
        return 1;
    }
    uint64_t v = 0x1122334455667788ull, r = 0;
    CHECK(vmmem_fast_write_obj(m, 0xff8, &v, 8) == 0);
    CHECK(vmmem_fast_read_obj(m, 0xff8, &r, 8) == 0 && r == v);
    CHECK(vmmem_fast_read_obj(m, 0x2000, &r, 8) == VMMEM_EINVALID_ADDRESS);
    uint8_t in[48], out[48];
    for (unsigned i = 0; i < sizeof in; i++)
        in[i] = static_cast<uint8_t>(i * 5 + 1);
    CHECK(vmmem_fast_write_slice(m, 0x1000 - 20, in, sizeof in) == 0); /* across the seam */
    CHECK(vmmem_fast_read_slice(m, 0x1000 - 20, out, sizeof out) == 0);
    CHECK(std::memcmp(in, out, sizeof in) == 0);
    uint32_t w = 0;
    CHECK(vmmem_fast_store_u32(m, 0x10, 7u, VMMEM_RELEASE) == 0);
    CHECK(vmmem_fast_load_u32(m, 0x10, &w, VMMEM_ACQUIRE) == 0 && w == 7u);
    uint64_t off = 0;
    CHECK(vmmem_fast_find(m, 0x1234, &off) != nullptr && off == 0x234);

    vmmem_space *s = nullptr;
    CHECK(vmmem_space_new(&s, m, nullptr) == 0);
    if (s != nullptr) {
        struct vmmem_read_section sec;
        const vmmem_map *cur = vmmem_space_read_begin(s, &sec);
        CHECK(cur == m);
        uint64_t want;
        std::memcpy(&want, in + 12, 8); /* 0xff8 is 12 bytes into the slice copy */
        CHECK(vmmem_read_obj(cur, 0xff8, &r, 8) == 0 && r == want);
        vmmem_space_read_end(&sec);
        vmmem_space_free(s);
    }
    vmmem_slice sl;
    CHECK(vmmem_get_slice_prot(m, 0x10, 4, VMMEM_PROT_READ, &sl) == 0);
    CHECK(vmmem_slice_write(&sl, 0, &w, 4) == VMMEM_EREAD_ONLY);
    vmmem_slice_release(&sl);
    CHECK(std::strcmp(vmmem_err_name(VMMEM_EREAD_ONLY), "VMMEM_EREAD_ONLY") == 0);
    vmmem_map_unref(m);
    std::printf("  Test: headers and fast paths from C++ ...%s\n", failures ? "FAILED" : "passed");
    std::printf("%d checks, %d failed\n", checks, failures);
    std::printf("VMMEM-TEST-RESULT tests=1 failed=%d suites_failed=0 records=%d\n", failures ? 1 : 0,
                failures);
    return failures ? 1 : 0;
}

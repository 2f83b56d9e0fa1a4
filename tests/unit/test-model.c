/* The domain's words: every enum value has one word, every word reads back
 * as its value, anything else is refused; owner tokens round-trip and
 * malformed ones are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "model.h"

/* Each table: every value from 0 to MAX has a distinct word that reads back. */
#define ROUND_TRIP(prefix, max)                                                         \
        do {                                                                            \
                for (int v = 0; v < (max); v++) {                                       \
                        const char *w = prefix##_to_string(v);                          \
                        assert_non_null(w);                                             \
                        assert_int_equal(prefix##_from_string(w), v);                   \
                        for (int u = 0; u < v; u++)                                     \
                                assert_string_not_equal(prefix##_to_string(u), w);      \
                }                                                                       \
                assert_null(prefix##_to_string(max));                                   \
                assert_null(prefix##_to_string(-1));                                    \
                assert_int_equal(prefix##_from_string("no-such-word"), -EINVAL);        \
                assert_int_equal(prefix##_from_string(""), -EINVAL);                    \
                assert_int_equal(prefix##_from_string(NULL), -EINVAL);                  \
        } while (0)

static void test_round_trip(void **state)
{
        (void)state;
        ROUND_TRIP(vp_step, VP_STEP_MAX);
        ROUND_TRIP(vp_migration_state, VP_MIGRATION_STATE_MAX);
        ROUND_TRIP(vp_pool_state, VP_POOL_STATE_MAX);
        ROUND_TRIP(vp_fence_method, VP_FENCE_METHOD_MAX);
        ROUND_TRIP(vp_vm_state, VP_VM_STATE_MAX);
        ROUND_TRIP(vp_machine, VP_MACHINE_MAX);
        ROUND_TRIP(vp_disk_bus, VP_BUS_MAX);
        ROUND_TRIP(vp_nic_model, VP_NIC_MAX);
        ROUND_TRIP(vp_firmware, VP_FIRMWARE_MAX);
        ROUND_TRIP(vp_role, VP_ROLE_MAX);
        ROUND_TRIP(vp_via, VP_VIA_MAX);
        ROUND_TRIP(vp_host_failure, VP_HOST_FAILURE_MAX);
        ROUND_TRIP(vp_lifecycle, VP_LIFECYCLE_MAX);
}

/* The words the catalogs and manifests already hold must not change. */
static void test_stored_words(void **state)
{
        (void)state;
        static const char *const steps[] = { "pending", "stopping", "locked", "provisioned",
                                             "handed_over", "done", "returned" };
        for (size_t i = 0; i < ELEMENTSOF(steps); i++)
                assert_string_equal(vp_step_to_string((enum vp_step)i), steps[i]);
        assert_string_equal(vp_migration_state_to_string(VP_MIGRATION_PARTIAL), "partial");
        assert_string_equal(vp_pool_state_to_string(VP_POOL_MIGRATING), "migrating");
        assert_string_equal(vp_fence_method_to_string(VP_FENCE_AGENT), "agent");
        assert_string_equal(vp_fence_method_to_string(VP_FENCE_OPERATOR), "operator");
        assert_string_equal(vp_vm_state_to_string(VP_VM_SHUT_OFF), "shut off");
        assert_string_equal(vp_disk_bus_to_string(VP_BUS_VIRTIO), "virtio");
        assert_string_equal(vp_nic_model_to_string(VP_NIC_RTL8139), "rtl8139");
        static const char *const roles[] = { "viewer", "operator", "admin" }, *const vias[] = { "cli", "api", "policy" };
        for (size_t i = 0; i < ELEMENTSOF(roles); i++)
                assert_string_equal(vp_role_to_string((enum vp_role)i), roles[i]);
        for (size_t i = 0; i < ELEMENTSOF(vias); i++)
                assert_string_equal(vp_via_to_string((enum vp_via)i), vias[i]);
}

static void test_steps_order(void **state)
{
        (void)state;
        assert_true(vp_step_reached(VP_STEP_DONE, VP_STEP_LOCKED));
        assert_true(vp_step_reached(VP_STEP_LOCKED, VP_STEP_LOCKED));
        assert_false(vp_step_reached(VP_STEP_LOCKED, VP_STEP_PROVISIONED));
        assert_false(vp_step_reached(VP_STEP_RETURNED, VP_STEP_LOCKED));
        assert_true(vp_step_reached(VP_STEP_RETURNED, VP_STEP_RETURNED));
        assert_false(vp_step_reached(VP_STEP_DONE, VP_STEP_RETURNED));
        assert_true(vp_step_ended(VP_STEP_DONE));
        assert_true(vp_step_ended(VP_STEP_RETURNED));
        assert_false(vp_step_ended(VP_STEP_HANDED_OVER));
        assert_true(vp_migration_state_unfinished(VP_MIGRATION_PARTIAL));
        assert_false(vp_migration_state_unfinished(VP_MIGRATION_ABORTED));
        assert_true(vp_vm_state_active(VP_VM_PAUSED));
        assert_false(vp_vm_state_active(VP_VM_SHUT_OFF));
}

static void test_machines(void **state)
{
        (void)state;
        assert_int_equal(vp_machine_from_string("pc-i440fx-8.0"), VP_MACHINE_PC);
        assert_int_equal(vp_machine_from_string("pc-q35-7.2"), VP_MACHINE_Q35);
        assert_int_equal(vp_machine_from_string("pc-q35-"), -EINVAL);
        assert_int_equal(vp_machine_from_string("pc-q35-7"), -EINVAL);
        assert_int_equal(vp_machine_from_string("pc-q35-7.2x"), -EINVAL);
        assert_int_equal(vp_machine_from_string("microvm"), -EINVAL);
        assert_true(vp_known_machine("q35"));
        assert_false(vp_known_bus("usb"));
        assert_true(vp_known_nic("none"));
        assert_false(vp_known_firmware("efi"));
}

/* The lists are the tables: what image add defaults to and errors offer. */
static void test_lists(void **state)
{
        (void)state;
        char *l = vp_disk_bus_list(",");
        assert_string_equal(l, "ide,sata,virtio,scsi");
        free(l);
        l = vp_nic_model_list(",", false);
        assert_string_equal(l, "e1000,rtl8139,virtio");
        free(l);
        l = vp_nic_model_list(", ", true);
        assert_string_equal(l, "e1000, rtl8139, virtio, none");
        free(l);
        l = vp_firmware_list(", ");
        assert_string_equal(l, "bios, uefi");
        free(l);
        l = vp_role_list(", ");
        assert_string_equal(l, "viewer, operator, admin");
        free(l);
        l = vp_via_list("|");
        assert_string_equal(l, "cli|api|policy");
        free(l);
}

static void test_owner(void **state)
{
        (void)state;
        char tok[VP_OWNER_MAX];
        struct vp_owner o;
        vp_owner_vm(tok, "web-001");
        assert_string_equal(tok, "vm:web-001");
        assert_int_equal(vp_owner_parse(tok, &o, NULL), 0);
        assert_int_equal(o.kind, VP_OWNER_VM);
        assert_string_equal(o.vm, "web-001");
        assert_true(vp_owner_is_vm(tok));

        vp_owner_migration(tok, 42);
        assert_string_equal(tok, "migration:42");
        assert_int_equal(vp_owner_parse(tok, &o, NULL), 0);
        assert_int_equal(o.kind, VP_OWNER_MIGRATION);
        assert_int_equal(o.migration, 42);
        assert_false(vp_owner_is_vm(tok));

        static const char *const bad[] = { "", "vm:", "vm:../x", "vm:a b", "VM:a", "migration:",
                                           "migration:-1", "migration:1x", "migration:1234567890123456789",
                                           "host:a", "vm", ":" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct vp_error err = { 0 };
                o.kind = VP_OWNER_MIGRATION;
                o.migration = 7;
                assert_int_equal(vp_owner_parse(bad[i], &o, &err), -EINVAL);
                assert_non_null(strstr(err.msg, "invalid owner"));
                /* Untouched on failure. */
                assert_int_equal(o.migration, 7);
        }
        assert_int_equal(vp_owner_parse(NULL, NULL, NULL), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_stored_words),
                cmocka_unit_test(test_steps_order), cmocka_unit_test(test_machines),
                cmocka_unit_test(test_lists),       cmocka_unit_test(test_owner),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

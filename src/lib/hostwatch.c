#include "hostwatch.h"

#include <string.h>

#include "host.h"
#include "name.h"

/* model.h's lifecycle words follow libvirt's enum. */
_Static_assert((int)VP_LIFECYCLE_DEFINED == (int)VIR_DOMAIN_EVENT_DEFINED &&
                       (int)VP_LIFECYCLE_STARTED == (int)VIR_DOMAIN_EVENT_STARTED &&
                       (int)VP_LIFECYCLE_STOPPED == (int)VIR_DOMAIN_EVENT_STOPPED &&
                       (int)VP_LIFECYCLE_CRASHED == (int)VIR_DOMAIN_EVENT_CRASHED,
               "vp_lifecycle is libvirt's virDomainEventType");

const char *vp_lifecycle_detail(int event, int detail)
{
        static const char *const started[] = { "booted", "migrated", "restored", "from snapshot", "wakeup" };
        static const char *const stopped[] = { "shutdown", "destroyed", "crashed", "migrated", "saved", "failed",
                                               "from snapshot" };
        static const char *const crashed[] = { "panicked", "crashloaded" };
        const char *const *t = NULL;
        size_t n = 0;
        switch (event) {
        case VIR_DOMAIN_EVENT_STARTED: t = started; n = ELEMENTSOF(started); break;
        case VIR_DOMAIN_EVENT_STOPPED: t = stopped; n = ELEMENTSOF(stopped); break;
        case VIR_DOMAIN_EVENT_CRASHED: t = crashed; n = ELEMENTSOF(crashed); break;
        default: break;
        }
        return detail >= 0 && (size_t)detail < n ? t[detail] : NULL;
}

int vp_event_vm_lifecycle(struct vp_ctx *ctx, const struct vp_host *h, const char *name, const char *uuid,
                          enum vp_lifecycle ev, const char *detail, struct vp_error *err)
{
        const char *state = vp_lifecycle_to_string(ev);
        if (!state || vp_name_check("vm", name, NULL) < 0)
                return 0;
        struct vp_vm vm = { 0 };
        struct vp_pool pool = { 0 };
        struct vp_env env = { 0 };
        int k = vp_row_get(ctx->cat, &vp_table_vm, "name", name, &vm, NULL);
        /* A domain of that name vpool did not make (another UUID) is not
         * one of its VMs; one host in two envs reports it once, for the
         * VM's own. */
        if (k < 0 || !streq(vm.uuid, uuid) || vm.env_id != h->env_id) {
                vp_row_clear(&vp_table_vm, &vm);
                return 0;
        }
        vp_row_get_id(ctx->cat, &vp_table_pool, vm.pool_id, &pool, NULL);
        vp_row_get_id(ctx->cat, &vp_table_env, h->env_id, &env, NULL);
        _cleanup_free_ char *where = vp_strdupf("%s/%s%s%s", env.name ? env.name : "?", h->name, detail ? ": " : "",
                                                detail ? detail : "");
        struct vp_event e = { .kind = (char *)VP_EVENT_VM, .subject = vm.name, .pool = pool.name, .vm = vm.name,
                              .state = (char *)state, .detail = where };
        k = vp_event_add(ctx->cat, &e, err);
        vp_row_clear(&vp_table_vm, &vm);
        vp_row_clear(&vp_table_pool, &pool);
        vp_row_clear(&vp_table_env, &env);
        return k < 0 ? k : 1;
}

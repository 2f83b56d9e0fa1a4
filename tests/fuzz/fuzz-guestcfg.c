/* libFuzzer target for what vpool reads from inside a guest's master image:
 * the initramfs (a microcode cpio and a compressed one), kernel module
 * lists and network configuration files. The image is the operator's, and
 * the guest inside it anyone's.
 *
 * The first byte picks the parser, the rest is the file. Beyond "does not
 * crash": a failure carries a one-line message; what parses yields module
 * names of the allowed characters only and a network summary that is one
 * printable comma list. */
#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "guestcfg.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require_names(const struct vp_modset *s)
{
        for (size_t i = 0; i < s->n; i++) {
                require(s->names[i][0] != '\0' && strlen(s->names[i]) <= 64);
                for (const char *p = s->names[i]; *p; p++)
                        require(isalnum((unsigned char)*p) || *p == '_');
        }
}

static void require_list(const char *list)
{
        for (const char *p = list; *p; p++)
                require(isgraph((unsigned char)*p));
        require(list[0] != ',' && !strstr(list, ",,"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        uint8_t which = data[0] % 6;
        const uint8_t *p = data + 1;
        size_t n = size - 1;
        struct vp_modset mods = { 0 };
        struct vp_netcfg cfg = { 0 };
        static void (*const netcfg[])(struct vp_netcfg *, const char *, size_t) = {
                vp_netcfg_ifupdown, vp_netcfg_networkd, vp_netcfg_nm, vp_netcfg_netplan,
        };
        if (which == 0) {
                struct vp_error err = { 0 };
                char comp[8];
                int r = vp_initramfs_modules(p, n, &mods, comp, &err);
                if (r < 0)
                        require_clean_error(r, &err);
                else
                        require(streq(comp, "none") || streq(comp, "gzip") || streq(comp, "xz") || streq(comp, "zstd"));
        } else if (which == 5) {
                vp_modset_add_list(&mods, (const char *)p, n);
        } else {
                netcfg[which - 1](&cfg, (const char *)p, n);
                require(cfg.match >= VP_NETMATCH_NONE && cfg.match < VP_NETMATCH_MAX);
                require_list(cfg.tools);
                require_list(cfg.names);
        }
        require_names(&mods);
        vp_modset_free(&mods);
        return 0;
}

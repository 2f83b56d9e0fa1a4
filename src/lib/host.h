/* The hosts of an env: adding and removing them, maintenance, what each
 * one has now, and the connections to them (one per host, cached in the
 * ctx, with libvirt's keepalive). */
#pragma once
#include "core.h"

/* A host as the operator names it: NAME (NULL: from the URI) and URI. */
struct vp_host_spec {
        const char *name;
        const char *uri;
};

/* Split "[NAME=]URI" in place: a NAME is everything before the first '='
 * when that part passes the name check and holds no ':' (a URI's query
 * has '=' too, but only after its scheme). */
int vp_host_spec_parse(char *arg, struct vp_host_spec *ret, struct vp_error *err);

/* The name a host gets when none is given: its URI's host part. An URI
 * with none (qemu:///system, a unix socket) needs a name; DEFAULT_NAME,
 * when not NULL, is taken then. *ret malloc'd. */
int vp_host_default_name(const char *uri, const char *default_name, char **ret, struct vp_error *err);

/* URI as another host's libvirtd reaches it (a peer-to-peer live move):
 * without the pkipath parameter, which names the controller's own
 * certificates (each libvirtd has its own). malloc'd. */
char *vp_host_peer_uri(const char *uri);

/* How messages name host H of env ENV: "env 'E'" for the host an env of
 * one URI became (named after its env), "host 'H' of env 'E'" otherwise.
 * malloc'd. */
char *vp_host_label(const char *env, const char *host);

/* ENV_ID's hosts, ordered by name (free with vp_rows_free). */
int vp_env_hosts(struct vp_ctx *ctx, int64_t env_id, struct vp_host **ret, size_t *ret_n, struct vp_error *err);
/* Host HOST of env ENV (-ENOENT "env 'ENV' has no host 'HOST'"). RET_ENV may be NULL. */
int vp_env_host_get(struct vp_ctx *ctx, const char *env, const char *host, struct vp_env *ret_env,
                    struct vp_host *ret, struct vp_error *err);

/* Connect to SPEC, read its capabilities and node, into *INFO and *RET (a
 * host row of no env yet). Refused: a URI that is not one, a host that does
 * not answer (a certificate refused included), a name that is taken. */
int vp_host_probe(struct vp_ctx *ctx, const struct vp_host_spec *spec, const char *default_name,
                  struct vp_hv_info *info, struct vp_host *ret, struct vp_error *err);
/* Add SPEC to env ENV: it answers, and offers the env's architecture and
 * domain type. */
int vp_env_host_add(struct vp_ctx *ctx, const char *env, const struct vp_host_spec *spec, struct vp_host *ret,
                    struct vp_error *err);
/* Remove HOST from ENV. Refused while VMs are on it (drain it first) unless
 * FORCE (they stay recorded on no host: fsck finds them where they are),
 * while an unfinished migration moves VMs from or to it, and for the env's
 * last host (remove the env). */
int vp_env_host_rm(struct vp_ctx *ctx, const char *env, const char *host, bool force, struct vp_error *err);
/* Put HOST of ENV in maintenance (no VM is placed there) or take it out. */
int vp_env_host_set_maintenance(struct vp_ctx *ctx, const char *env, const char *host, bool on,
                                struct vp_error *err);

/* What a host has now, as its libvirt says (reachable false: the rest is 0). */
struct vp_host_live {
        bool reachable;
        int64_t cpus;
        int64_t memory_kib;
        int64_t free_kib;
        int64_t defined;               /* domains defined there, running or not */
        int64_t running;
        int64_t vcpus;                 /* vCPUs of the domains running there, -1: not told */
};
void vp_host_live(struct vp_ctx *ctx, const struct vp_host *h, struct vp_host_live *ret);

/* Note in H's row whether it answered: since when it does not (the first
 * time it was found so is kept), or that it does again. Best effort: a ctx
 * that only reads, or is inside a transaction, leaves the row as it is. */
void vp_host_note_reachable(struct vp_ctx *ctx, const struct vp_host *h, bool ok);

/* A cached connection to host H. A connection libvirt closed under vpool
 * (keepalive, the daemon gone) is opened again; a host that does not answer
 * is not asked again through the same ctx. Whether it answered is noted in
 * its row (unreachable: since when) when the ctx may write. */
int vp_ctx_conn_host(struct vp_ctx *ctx, const struct vp_host *h, virConnectPtr *ret, struct vp_error *err);
/* The same for a host whose VMs are to be taken from it: retried for
 * ctx->source_grace seconds before it counts as unreachable. */
int vp_ctx_conn_host_source(struct vp_ctx *ctx, const struct vp_host *h, virConnectPtr *ret, struct vp_error *err);
/* The connection to the host that holds VM's domain (the first host of its
 * env that answers when the catalog does not know). */
int vp_ctx_conn_vm(struct vp_ctx *ctx, const struct vp_vm *vm, virConnectPtr *ret, struct vp_error *err);

/* The pools with a VM on host HOST_ID, by id (free with vp_rows_free). */
int vp_host_pools(struct vp_ctx *ctx, int64_t host_id, struct vp_pool **ret, size_t *ret_n, struct vp_error *err);

/* The start of HOST's drain: the host goes into maintenance (no VM is
 * placed there any more) and *RET_POOLS names every pool with a VM on it
 * (N of them, malloc'd strings in a malloc'd array), which the drain then
 * moves off it, one migration per pool. Refused while a pool with VMs on it
 * has an unfinished migration (nothing is changed then). */
/* TO (NTO names) are the hosts the VMs may go to: each must be another
 * host of ENV. */
int vp_env_host_drain_begin(struct vp_ctx *ctx, const char *env, const char *host, const char *const *to, size_t nto,
                            char ***ret_pools, size_t *ret_n, struct vp_error *err);

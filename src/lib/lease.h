/* Leases: proof, read off the shared storage, that no process anywhere
 * still holds a delta's disks.
 *
 * The lease is QEMU's own image lock. A QEMU holds byte-range locks (open
 * file description locks) on every image it has open, from the open until
 * the process dies, whether libvirtd lives or not; on NFSv4 the server
 * keeps them as leases that lapse when the client host stops renewing, on
 * CephFS and GlusterFS the file system's own locks carry them. Locks follow
 * the inode, so they follow the renames of a hand-over: a QEMU that opened
 * overlay.g2.qcow2 still shows on overlay.g3.qcow2. (libvirt's lockd keys
 * its leases by path in a lockspace directory, so a renamed disk would show
 * a fresh, unheld lease: the wrong tool for a fencing token made of names.)
 *
 * vpool never takes these locks itself; it only asks whether anyone has one. */
#pragma once
#include "manifest.h"

/* Is any disk the manifest M names in the collection DFD locked by anyone?
 * 0 when none is; -EBUSY naming the first held disk and, when the holder is
 * a process of this machine, its pid and command (a QEMU's guest name); a
 * holder elsewhere is named as such. LABEL names the collection. A disk
 * that does not exist holds nothing. */
int vp_lease_check(int dfd, const char *label, const struct vp_manifest *m, struct vp_error *err);

/* Is the open file FD locked (read or write) by any open file description
 * but this one? 1 held, 0 free, negative errno when the file system cannot
 * say. */
int vp_lease_held(int fd);

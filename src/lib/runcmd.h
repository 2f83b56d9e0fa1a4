/* Running external programs (qemu-img) without a shell. */
#pragma once
#include "util.h"

/* Run ARGV (argv[0] looked up in PATH) with posix_spawnp, stdin from
 * /dev/null, stdout discarded, stderr captured. Waits for it. Returns 0 if
 * it exited 0; otherwise -EIO with a message "ARGV0 failed: <last stderr
 * line>" (or the signal / exit code). */
int vp_spawn(const char *const argv[], struct vp_error *err);

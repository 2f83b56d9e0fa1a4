/* The hand-over of one VM's user delta collection during a migration,
 * as a Promela model for SPIN. docs/model.md says what it checks, what it
 * leaves out and how to run it; tests/model/ runs it in CI.
 *
 * Four processes:
 *
 *   controller   vpool: the operator's commands (migrate/resume, abort)
 *                and the steps of src/lib/migrate.c they run. It may be
 *                killed after any durable action and started again. It
 *                first chooses the situation: whether the source VM runs,
 *                whether its env has a fence agent, whether the operator
 *                says --source-fenced (rightly or not), and whether a host
 *                the agent powered off is ever powered on again.
 *   source_host  the source env's host: its libvirtd may stop answering
 *                (its QEMU runs on), it may come back with its old domain
 *                definitions, and anyone there may start a defined domain.
 *   fsck         `vpool fsck --repair`, run whenever no vpool command holds
 *                the pool's lock: it destroys and undefines a source domain
 *                older than the delta's manifest (a stale definition).
 *   target_host  the target env's host, after an abort it did not answer:
 *                it may start the domain left behind there.
 *
 * The shared storage is three variables: the manifest (owner, generation)
 * and the generation the disks' names carry. There is one inode: a rename
 * keeps it, so every QEMU that ever opened the delta holds the same one,
 * and its image lock (the lease) with it, until that QEMU dies.
 *
 * Switches (spin -D...):
 *   NO_LEASE    the lease check before a hand-over removed: a broken
 *               protocol that must violate property (1)
 *   BACK_BUMP=1 an abort hands the delta back one generation on instead of
 *               two: a broken protocol that must violate property (1)
 *   NO_FSCK     no fsck --repair: a stale source domain started on the old
 *               generation holds its lease for ever; property (3) fails
 * and three that put back what src/lib/migrate.c did before the model was
 * written, each with the dead end or loss SPIN finds (docs/model.md):
 *   OLD_RESUME  resume continues the move of a delta an abort handed back
 *   OLD_RECLAIM an abort hands on again any delta past the journal's
 *               generation, its own hand-back included
 *   OLD_START   done without the target's domain, if an abort removed it
 *   MAXSTOP     how often the controller may be killed, interrupted or
 *               refused (default 3)
 *   MAXOUT      how often the source host may stop answering (default 2)
 */

#ifndef MAXSTOP
#define MAXSTOP 3
#endif
#ifndef MAXOUT
#define MAXOUT 2
#endif
#ifndef BACK_BUMP
#define BACK_BUMP 2
#endif

/* The steps of a VM, as src/lib/model.c's vp_step table spells them and in
 * its order; tests/model/test-steps.sh compares the line below with it. */
/* steps: */
mtype = { pending, stopping, locked, provisioned, handed_over, done, returned };

/* ---- the catalog: the VM's journaled step (migration_vms) -------------- */
mtype step = pending;
byte jgen = 1;          /* the generation journaled with the step */
bool src_ran;           /* journaled at stopping: the source ran (or is fenced) */

/* ---- shared storage: the delta ----------------------------------------- */
bool own_mig;           /* the manifest's owner: the migration, else the VM */
byte mgen = 1;          /* the manifest's generation */
byte fgen = 1;          /* the generation the disks' names carry */

/* ---- the source host ---------------------------------------------------- */
bool src_up = true;     /* its libvirtd answers vpool (past the grace period) */
bool src_power = true;  /* powered on; a successful fence agent powers it off */
bool may_return;        /* once powered off, it may be powered on again */
bool src_def = true;    /* the VM's domain is defined there ... */
byte src_dgen = 1;      /* ... naming the disks of this generation */
bool src_qemu;          /* its QEMU runs and holds the delta's inode */
byte outages;

/* ---- the target host (it answers, except where an abort says) ----------- */
bool tgt_def;
byte tgt_dgen;
bool tgt_qemu;
bool tgt_left;          /* an abort could not undefine it: it stays behind */

/* ---- the operator and the controller ------------------------------------ */
bool fence_cmd;         /* the source env has a fence agent */
bool asserted;          /* the operator says --source-fenced (maybe wrongly) */
bool fenced_once;       /* the agent powered the source off once: the
                         * migration's fence record says so from then on */
bool busy;              /* a vpool command holds the pool's lock */
byte stops;             /* kills, interruptions and refusals so far */

/* How many processes hold the delta's inode: property (1) is that it never
 * exceeds one. */
#define writers (src_qemu + tgt_qemu)

/* Property (2): the VM's run has ended, and the delta is then its VM's,
 * under the names its home domain's definition gives. */
#define ended (step == done || step == returned)
#define home_ok ((step == done && tgt_def && tgt_dgen == mgen) || \
                 (step == returned && src_def && src_dgen == mgen))
#define owner_ok (!own_mig && fgen == mgen && home_ok)

ltl owned { [] (ended -> owner_ok) }
/* Property (3), checked with weak fairness (pan -a -f). */
ltl ends { <> ended }

/* A QEMU process opens the delta: property (1) is asserted at the moment a
 * second one would. */
inline qemu_start(running)
{
        assert(writers == 0);
        running = true
}

/* vpool may be killed here (SIGKILL, a lost host, an operator's ^C): what
 * was done stays done, the process's memory is lost. */
inline crash_point()
{
        if
        :: stops < MAXSTOP -> atomic { stops++; printf("MSC: vpool stops here\n") }; goto idle
        :: true
        fi
}

/* vp_delta_settle: a hand-over cut short after its renames is renamed
 * back to what the manifest says. */
inline settle()
{
        if
        :: fgen != mgen -> atomic { fgen = mgen; printf("MSC: disks renamed back to generation %d\n", fgen) }
        :: else
        fi
}

/* vp_delta_hand_over(from, to, after_gen, bump): settle, then (unless the
 * manifest already says TO past AFTER, a redo) rename the disks to the new
 * generation's names, then write the manifest. Another owner: -EPERM. */
inline hand_over(from_mig, to_mig, after, bump)
{
        settle();
        if
        :: own_mig == to_mig && mgen > after -> skip
        :: else ->
                if
                :: own_mig != from_mig -> goto refused
                :: else
                fi;
                atomic { fgen = mgen + bump; printf("MSC: disks renamed to generation %d\n", fgen) };
                crash_point();
                atomic { own_mig = to_mig; mgen = mgen + bump;
                         if
                         :: own_mig -> printf("MSC: manifest written: the migration's, generation %d\n", mgen)
                         :: else -> printf("MSC: manifest written: the VM's, generation %d\n", mgen)
                         fi };
                crash_point()
        fi
}

/* The lease check (src/lib/lease.c): no process holds a lock on the
 * delta's inode, else no hand-over. A held lease ends the command; resume
 * tries again later, and the pool lock is free meanwhile (fsck may run). */
inline lease_check()
{
#ifndef NO_LEASE
        busy = false;
        printf("MSC: lease check\n");
        if
        :: atomic { writers == 0 -> busy = true; printf("MSC: lease check: no holder\n") }
        :: stops < MAXSTOP -> atomic { stops++; printf("MSC: lease held: the command ends\n") }; goto idle
        fi
#else
        skip
#endif
}

active proctype controller()
{
        bool fenced;    /* this run passes the source by (move_connect) */
        bool ran;

        /* What the verifier chooses: whether the source runs, and how the
         * source env and the operator deal with an unreachable host. */
        atomic {
                if :: src_qemu = true :: skip fi;
                if :: fence_cmd = true :: skip fi;
                if :: asserted = true :: skip fi;
                if :: may_return = true :: skip fi
        };

idle:
        busy = false;
        if
        :: ended -> goto finished
        :: else
        fi;
        /* The operator's next command. An abort is not asked of a source
         * known to be powered off for good, nor, once the budget of
         * mistakes is spent, of one that does not answer. */
        if
        :: printf("MSC: operator: resume\n"); goto resume
        :: (step == pending || step == stopping || step == locked || step == provisioned) &&
           (src_power || may_return) && (src_up || stops < MAXSTOP) ->
                printf("MSC: operator: abort\n"); goto abort
        fi;

refused:
        /* A step failed or was refused: the VM keeps its step; the error is
         * the operator's to read. */
        printf("MSC: the command fails; the VM keeps its step\n");
        goto idle;

/* ---- migrate / resume: move_connect, then move_steps ---------------------- */
resume:
        busy = true;
        fenced = false;
        /* A delta an abort has handed back (the VM's, two or more
         * generations past the journal) is not taken again: the resume
         * finishes the return. Else (OLD_RESUME) the move provisions anew
         * and waits for ever on the lease of the source the abort
         * restarted, or hands the delta to a target while that source
         * starts too. */
#ifndef OLD_RESUME
        if
        :: (step == stopping || step == locked || step == provisioned) && !own_mig && mgen >= jgen + 2 ->
                goto returning
        :: else
        fi;
#endif
        if
        :: step == pending || step == stopping ->
                if
                :: src_up -> skip
                :: !src_up && asserted ->
                        atomic { fenced = true; printf("MSC: source passed by on the operator's word\n") }
                :: !src_up && fenced_once ->
                        /* A fence this migration recorded counts again
                         * (fenced_before), whether or not the host was
                         * powered on since. */
                        atomic { fenced = true; printf("MSC: source passed by: fenced before\n") }
                :: !src_up && fence_cmd && !fenced_once ->
                        /* The grace period is over: the fence agent runs. */
                        if
                        :: atomic { src_power = false; src_up = false; src_qemu = false;
                                    fenced = true; fenced_once = true;
                                    printf("MSC: fence agent powered the source off\n") }
                        :: stops < MAXSTOP ->
                                atomic { stops++; printf("MSC: fence agent failed\n") };
                                goto idle
                        fi
                :: !src_up && !asserted && !fence_cmd && !fenced_once ->
                        /* Neither: the VM waits for its host. */
                        busy = false;
                        if
                        :: src_up -> goto resume
                        :: stops < MAXSTOP -> stops++; goto idle
                        fi
                fi
        :: else
        fi;

steps:
        if
        :: step == pending ->
                /* move_note_source */
                if
                :: fenced -> ran = true
                :: !fenced && src_up -> ran = src_qemu
                :: !fenced && !src_up -> goto refused
                fi;
                atomic { src_ran = ran; step = stopping;
                         printf("MSC: journal %e (source ran: %d)\n", step, src_ran) };
                crash_point();
                goto steps
        :: step == stopping ->
                /* move_lock: the source stopped and undefined, unless passed
                 * by; then the delta to the migration. */
                if
                :: !fenced ->
                        if
                        :: src_up -> atomic { src_qemu = false; printf("MSC: source domain stopped\n") }
                        :: else -> goto refused
                        fi;
                        crash_point();
                        /* vp_hv_undefine(force): whatever started
                         * meanwhile is destroyed with it. */
                        if
                        :: src_up -> atomic { src_qemu = false; src_def = false;
                                              printf("MSC: source domain undefined\n") }
                        :: else -> goto refused
                        fi;
                        crash_point()
                :: else
                fi;
                hand_over(false, true, jgen, 1);
                atomic { step = locked; jgen = mgen;
                         printf("MSC: journal %e (generation %d)\n", step, jgen) };
                crash_point();
                goto steps
        :: step == locked ->
                /* move_provision: the target's domain names the disks of the
                 * unlock still to come, which no file has yet. */
                atomic { tgt_def = true; tgt_dgen = mgen + 1; tgt_left = false;
                         printf("MSC: target domain defined (generation %d)\n", tgt_dgen) };
                crash_point();
                atomic { step = provisioned; jgen = mgen;
                         printf("MSC: journal %e (target names generation %d)\n", step, tgt_dgen) };
                crash_point();
                goto steps
        :: step == provisioned ->
                /* move_unlock: settle, the lease check, the delta to the VM. */
                settle();
                lease_check();
                hand_over(true, false, jgen, 1);
                atomic { step = handed_over; jgen = mgen;
                         printf("MSC: journal %e (generation %d)\n", step, jgen) };
                crash_point();
                goto steps
        :: step == handed_over ->
                /* move_start: the target starts if the source ran. Its
                 * domain is first defined again, under the manifest's names,
                 * if it is gone (an abort undefined it, then was cut short)
                 * or names another generation. Else (OLD_START) a VM ends
                 * done on a target that has no domain for it (issue 11,
                 * defect 5). */
#ifndef OLD_START
                if
                :: !(tgt_def && tgt_dgen == mgen) ->
                        atomic { tgt_def = true; tgt_dgen = mgen; tgt_left = false;
                                 printf("MSC: target domain defined again (generation %d)\n", tgt_dgen) };
                        crash_point()
                :: else
                fi;
#endif
                if
                :: src_ran ->
                        if
                        :: atomic { tgt_def && tgt_dgen == fgen ->
                                tgt_left = false;
                                if
                                :: !tgt_qemu ->
                                        qemu_start(tgt_qemu); printf("MSC: target domain started\n")
                                :: else
                                fi }
                        :: else -> goto refused
                        fi;
                        crash_point()
                :: else
                fi;
                atomic { step = done; printf("MSC: journal %e\n", step) };
                goto idle
        :: else -> goto idle
        fi;

/* ---- abort: return_vm -------------------------------------------------- */
abort:
        busy = true;
        if
        :: step == pending ->
                /* Nothing had changed. */
                atomic { step = returned; printf("MSC: journal %e (nothing had changed)\n", step) };
                goto idle
        :: else
        fi;
returning:
        /* return_connect: the source must answer. */
        if
        :: !src_up ->
                if
                :: stops < MAXSTOP -> stops++
                :: else
                fi;
                goto refused
        :: else
        fi;
        /* return_drop_target: undefined, or, if the target does not answer,
         * left behind. */
        if
        :: tgt_def ->
                if
                :: atomic { tgt_def = false; tgt_qemu = false;
                            printf("MSC: abort: target domain undefined\n") }
                :: atomic { tgt_left = true; printf("MSC: target does not answer; its domain stays\n") }
                fi
        :: else
        fi;
        crash_point();
        /* return_reclaim: back to the VM under names no domain was given.
         * Handed to it by the unlock already (step not recorded), it is on
         * the generation the target's domain names: on one more. Only
         * that generation: a delta an earlier abort handed back (two or
         * more past the journal) is the VM's already, and its source may
         * run it again; a hand-over then (OLD_RECLAIM: any generation
         * past the journal's) waits on that QEMU's lease for ever. */
        settle();
        if
        :: own_mig ->
                lease_check();
                hand_over(true, false, jgen, BACK_BUMP)
#ifndef OLD_RECLAIM
        :: !own_mig && step == provisioned && mgen == jgen + 1 ->
#else
        :: !own_mig && mgen > jgen ->
#endif
                lease_check();
                hand_over(false, false, mgen, 1)
        :: else
        fi;
        /* return_restore: the source's domain with the current names,
         * started if it ran. */
        if
        :: src_up -> atomic { src_def = true; src_dgen = mgen;
                              printf("MSC: abort: source domain defined (generation %d)\n", mgen) }
        :: else -> goto refused
        fi;
        crash_point();
        /* vp_hv_start: one domain runs at most one QEMU; a domain
         * already running is left as it is. */
        if
        :: src_ran ->
                if
                :: atomic { src_up && src_def && src_dgen == fgen ->
                        if
                        :: !src_qemu -> qemu_start(src_qemu); printf("MSC: abort: source domain started\n")
                        :: else
                        fi }
                :: atomic { !src_up -> skip }; goto refused
                fi;
                crash_point()
        :: else
        fi;
        atomic { step = returned; jgen = mgen; printf("MSC: journal %e (generation %d)\n", step, jgen) };
        goto idle;

finished:
        /* Property (2) where the VM's run ends; LTL 'owned' checks it in
         * every state from here on, whatever the hosts do next. */
        assert(owner_ok)
}

active proctype source_host()
{
end:
        do
        :: atomic { src_up && outages < MAXOUT -> src_up = false; outages++;
                    printf("MSC: source host stops answering (its QEMU runs on)\n") }
        :: atomic { !src_up && src_power -> src_up = true;
                    printf("MSC: source host answers again\n") }
        :: atomic { !src_power && may_return -> src_power = true; src_up = true; may_return = false;
                    printf("MSC: source host powered on again, with its old definitions\n") }
        :: atomic { src_power && src_def && !src_qemu && src_dgen == fgen -> qemu_start(src_qemu);
                    printf("MSC: source domain started (generation %d)\n", src_dgen) }
        od
}

#ifndef NO_FSCK
active proctype fsck()
{
end:
        do
        :: atomic { !busy && src_up && src_def && src_dgen < mgen -> src_qemu = false; src_def = false;
                    printf("MSC: fsck --repair destroyed and undefined a stale source domain\n") }
        od
}
#endif

/* A target domain an abort could not remove (its host did not answer)
 * may be started there once that host is back, after the abort: its
 * names must be no file's by then. */
active proctype target_host()
{
end:
        do
        :: atomic { step == returned && tgt_left && tgt_def && !tgt_qemu && tgt_dgen == fgen ->
                qemu_start(tgt_qemu); printf("MSC: leftover target domain started\n") }
        od
}

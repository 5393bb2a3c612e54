"""Opt-in real-time scheduling for the control loop's process (Linux).

Under the default scheduler a control loop shares the CPU with everything else: when other
processes keep the cores busy, its wake-ups wait behind them for milliseconds, whatever the
loop does. SCHED_FIFO lets the loop's process preempt ordinary processes as soon as its timer
fires, which is how robot computers run controllers (with a PREEMPT_RT kernel for the last
tens of microseconds). The runner only sleeps or briefly busy-waits before a deadline, so it
never holds a core for long; the kernel's RT throttling still reserves 5% for others.
"""

from __future__ import annotations

import os


def use_realtime(priority: int = 50) -> str:
    """Switch this process (and the threads it starts afterwards) to SCHED_FIFO `priority`.

    Returns a short description; raises ValueError with the fix when the OS refuses.
    """
    if not hasattr(os, "sched_setscheduler"):
        raise ValueError("real-time scheduling needs Linux (os.sched_setscheduler); run without "
                         "--realtime")
    lo, hi = os.sched_get_priority_min(os.SCHED_FIFO), os.sched_get_priority_max(os.SCHED_FIFO)
    if not lo <= priority <= hi:
        raise ValueError(f"real-time priority {priority} is outside {lo}..{hi}")
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError:
        raise ValueError("the OS refused SCHED_FIFO: it needs root, CAP_SYS_NICE or an rtprio "
                         "limit (ulimit -r / limits.conf); run without --realtime") from None
    return f"SCHED_FIFO priority {priority}"


def scheduling() -> str:
    """This process's scheduling policy, for reports ("SCHED_OTHER", "SCHED_FIFO 50", ...)."""
    if not hasattr(os, "sched_getscheduler"):
        return "unknown"
    policy = os.sched_getscheduler(0)
    names = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_FIFO: "SCHED_FIFO", os.SCHED_RR: "SCHED_RR"}
    name = names.get(policy, str(policy))
    if policy in (os.SCHED_FIFO, os.SCHED_RR):
        name += f" {os.sched_getparam(0).sched_priority}"
    return name

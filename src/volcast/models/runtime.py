"""Process-wide settings for training and forecasting, made once by the program, not by a model.

Thread counts and the allocator belong to the process: a library call that changed them would
change them under every other user of the process (a web server's requests and jobs). So the
program's entry point calls ``configure_process`` once: the CLI's train, backtest, report, demo
and serve commands, the benchmark scripts and the test suite's models fixture.
"""

import ctypes
import os
import sys

from volcast.errors import VolcastError


def configure_process(threads: int | None = None) -> None:
    """Keep freed memory in the process and give torch ``threads`` CPU threads (default: every
    CPU). Call once at program entry, before training; it imports torch (about 2 s).

    torch's CPU threads come from OpenMP, whose idle threads spin by default: with one other
    busy process on two cores (a running `volcast serve`, a second command) a one-epoch LSTM fit
    took 75 s instead of 5 s and a forecast 670 ms instead of 15 ms. Passive waiting costs
    nothing measurable on an idle machine, so it is the default unless the environment already
    chose (``OMP_WAIT_POLICY``); it must be set before torch is first imported."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    if threads is not None and threads < 1:
        raise VolcastError(f"threads must be at least 1, not {threads}")
    keep_freed_memory()
    torch.set_num_threads(threads or os.cpu_count() or 1)


def keep_freed_memory() -> None:
    """Stop glibc from handing the LSTM's large per-step buffers back to the OS after every
    step: re-faulting them cost 40% of training time on two cores (sys time). Linux only.
    One arena for every thread: a thread's own arena ignores these thresholds, so a fit in a
    thread (a dashboard job, a live refit) ran 1.8x slower than in the main thread (an LSTM
    step 184 ms against 104 ms); with one it runs as fast. Must come before the threads."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
    libc.mallopt(m_mmap_threshold, 1 << 30)
    libc.mallopt(m_trim_threshold, 1 << 30)
    libc.mallopt(m_arena_max, 1)

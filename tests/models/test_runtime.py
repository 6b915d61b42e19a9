"""Process-wide settings are made once, by the program, through one function."""

import os
import subprocess
import sys

import pytest
import torch

from volcast.errors import VolcastError
from volcast.models.runtime import configure_process


def test_configure_process_sets_torch_threads_and_refuses_nonsense():
    before = torch.get_num_threads()
    try:
        configure_process(threads=2)
        assert torch.get_num_threads() == 2
        with pytest.raises(VolcastError, match="threads must be at least 1"):
            configure_process(threads=0)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("given, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_idle_torch_threads_wait_passively_unless_the_environment_chose(given, expected):
    """Spinning OpenMP threads made a fit 15 x slower beside one other busy process; the
    policy is read when torch loads, so a fresh process shows what configure_process set."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    code = ("import os; from volcast.models.runtime import configure_process; "
            "configure_process(1); print(os.environ['OMP_WAIT_POLICY'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected

"""Process-wide settings are made once, by the program, through one function."""

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

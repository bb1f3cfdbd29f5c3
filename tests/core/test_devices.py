"""DEVICE resolves to a torch device that exists here, or to an error that says what to set."""

from __future__ import annotations

import pytest
import torch

from labelzoo.devices import resolve_device
from labelzoo.errors import LabelzooError


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_devices_resolve_to_what_exists_on_a_cpu_machine() -> None:
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(" CPU ".lower()) == torch.device("cpu")
    with pytest.raises(LabelzooError, match="sees no CUDA GPU"):
        resolve_device("cuda:0")
    with pytest.raises(LabelzooError, match="DEVICE='gpu' is not a torch device"):
        resolve_device("gpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_auto_picks_the_gpu_when_there_is_one() -> None:
    assert resolve_device("auto").type == "cuda"
    assert resolve_device("cuda:0") == torch.device("cuda:0")

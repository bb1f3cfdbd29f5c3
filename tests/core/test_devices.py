"""DEVICE resolves to a torch device that exists here, or to an error that says what to set."""

from __future__ import annotations

import pytest
import torch

from labelzoo.devices import check_device_setting, resolve_device, use_fp16
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


def test_the_setting_is_checked_without_torch_and_a_gpu_index_means_cuda() -> None:
    assert check_device_setting(" CUDA ") == "cuda" and check_device_setting("1") == "cuda:1"
    assert [check_device_setting(s) for s in ("auto", "cpu", "mps", "cuda:0")] == ["auto", "cpu", "mps", "cuda:0"]
    for bad in ("gpu", "cuda:x", "cuda:", "tpu:0", ""):
        with pytest.raises(ValueError, match="is not a torch device"):
            check_device_setting(bad)


def test_auto_skips_what_the_backend_cannot_run_on(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")
    assert resolve_device("auto", ("cuda", "cpu")) == torch.device("cpu")  # Whisper: no MPS
    with pytest.raises(LabelzooError, match="DEVICE='mps', but this backend does not run on MPS: use DEVICE=auto"):
        resolve_device("mps", ("cuda", "cpu"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda") and resolve_device("0") == torch.device("cuda:0")


def test_half_precision_only_on_cuda() -> None:
    assert use_fp16("cuda") and use_fp16("cuda:1") and use_fp16(torch.device("cuda", 0))
    assert not any(use_fp16(d) for d in ("cpu", "mps", torch.device("cpu")))

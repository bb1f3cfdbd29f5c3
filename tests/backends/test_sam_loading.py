"""Loading SAM: model types, checkpoint paths and URLs (served on 127.0.0.1), devices, settings; the HTTP protocol."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from segment_anything import sam_model_registry
from segment_anything.modeling import MaskDecoder, TwoWayTransformer

from labelzoo import LabelzooError
from tests.backends.sam_support import (  # noqa: F401 - fixtures
    BRUSH_CONFIG,
    SAM_FOLDER,
    build_tiny_sam,
    click,
    sam_module,
    sam_settings,
    scene,
    tiny_checkpoint_fixture,
    tiny_type_fixture,
    tiny_weights,
    write_image,
)
from tests.conftest import free_port

checkpoint = sam_module("checkpoint")
model = sam_module("model")


def same_weights(sam: torch.nn.Module) -> bool:
    expected = tiny_weights()
    return all(torch.equal(value.cpu(), expected[name]) for name, value in sam.state_dict().items())


class CountingHandler(SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """An HTTP server on 127.0.0.1 serving a folder: (base URL, folder, paths requested)."""
    folder = tmp_path / "served"
    folder.mkdir()
    requests: list[str] = []
    handler = type("Handler", (CountingHandler,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder, requests
    server.shutdown()
    server.server_close()


def test_a_relative_checkpoint_path_is_looked_up_under_model_root(tmp_path, tiny_type, tiny_checkpoint) -> None:
    (tmp_path / "root" / "sam").mkdir(parents=True)
    shutil.copy(tiny_checkpoint, tmp_path / "root" / "sam" / "mine.pth")
    settings = sam_settings(
        tmp_path, SAM_MODEL_TYPE=tiny_type, SAM_CHECKPOINT="sam/mine.pth", MODEL_ROOT=str(tmp_path / "root")
    )
    assert same_weights(checkpoint.load_sam(settings))


def test_a_missing_checkpoint_file_is_a_clear_error(tmp_path, tiny_type) -> None:
    settings = sam_settings(tmp_path, SAM_MODEL_TYPE=tiny_type, SAM_CHECKPOINT=str(tmp_path / "nope.pth"))
    with pytest.raises(LabelzooError, match=r"SAM_CHECKPOINT .*nope\.pth.*no file at"):
        checkpoint.load_sam(settings)


def test_a_checkpoint_url_is_downloaded_once_into_model_dir(tmp_path, tiny_type, tiny_checkpoint, file_server) -> None:
    base, folder, requests = file_server
    shutil.copy(tiny_checkpoint, folder / "sam_tiny_0a1b2c.pth")
    settings = sam_settings(tmp_path, SAM_MODEL_TYPE=tiny_type, SAM_CHECKPOINT=f"{base}/sam_tiny_0a1b2c.pth")
    for _ in range(2):
        assert same_weights(checkpoint.load_sam(settings))
    assert requests == ["/sam_tiny_0a1b2c.pth"]
    assert (settings.model_dir / "checkpoints" / "sam_tiny_0a1b2c.pth").read_bytes() == tiny_checkpoint.read_bytes()


def test_an_unreachable_checkpoint_url_says_where_to_put_the_file(tmp_path) -> None:
    url = f"http://127.0.0.1:{free_port()}/sam_vit_b_01ec64.pth"  # nothing listens there
    settings = sam_settings(tmp_path, SAM_MODEL_TYPE="vit_b", SAM_CHECKPOINT=url)
    with pytest.raises(LabelzooError) as caught:
        checkpoint.load_sam(settings)
    message = caught.value.message
    assert f"cannot download the SAM checkpoint {url}" in message
    assert str(settings.model_dir / "checkpoints" / "sam_vit_b_01ec64.pth") in message
    assert "SAM_CHECKPOINT" in message
    assert not list((settings.model_dir / "checkpoints").iterdir())  # no partial file left behind


@pytest.mark.parametrize("name", ["vit_b", "vit_l", "vit_h"])
def test_official_model_types_default_to_meta_checkpoints(tmp_path, name) -> None:
    settings = sam_settings(tmp_path, SAM_MODEL_TYPE=name)
    source = checkpoint.checkpoint_source(settings)
    assert source.startswith("https://dl.fbaipublicfiles.com/segment_anything/sam_" + name)
    assert model.SegmentAnything(settings).base_version() == f"sam-{name}"


def test_the_version_names_a_custom_checkpoint(tmp_path, tiny_type, tiny_checkpoint) -> None:
    settings = sam_settings(tmp_path, SAM_MODEL_TYPE=tiny_type, SAM_CHECKPOINT=str(tiny_checkpoint))
    assert model.SegmentAnything(settings).base_version() == f"sam-{tiny_type}-sam_tiny"
    assert model.SegmentAnything(sam_settings(tmp_path)).base_version() == "sam-vit_b"  # the default type


def test_a_checkpoint_for_another_architecture_is_refused(tmp_path, tiny_checkpoint, monkeypatch) -> None:
    def wider_decoder(checkpoint: str | None = None):
        sam = build_tiny_sam()
        sam.mask_decoder = MaskDecoder(
            transformer_dim=64, transformer=TwoWayTransformer(depth=1, embedding_dim=64, mlp_dim=256, num_heads=4)
        )
        return sam

    monkeypatch.setitem(sam_model_registry, "other_tiny", wider_decoder)
    settings = sam_settings(tmp_path, SAM_MODEL_TYPE="other_tiny", SAM_CHECKPOINT=str(tiny_checkpoint))
    with pytest.raises(LabelzooError, match="does not fit SAM_MODEL_TYPE='other_tiny'"):
        checkpoint.load_sam(settings)


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path, tiny_type) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    settings = sam_settings(tmp_path, SAM_MODEL_TYPE=tiny_type, SAM_CHECKPOINT=str(junk))
    with pytest.raises(LabelzooError, match="cannot read the SAM checkpoint"):
        checkpoint.load_sam(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SAM_MODEL_TYPE": "vit_x"}, "SAM_MODEL_TYPE='vit_x' is not a SAM model type; use one of vit_b, vit_h, "
         "vit_l, vit_t"),
        ({"SAM_CACHE_MB": "lots"}, "SAM_CACHE_MB='lots' is not a number"),
        ({"SAM_POLYGON_TOLERANCE": "-1"}, "SAM_POLYGON_TOLERANCE='-1' must be a number >= 0"),
        ({"SAM_WARMUP": "maybe"}, "SAM_WARMUP='maybe' is not a boolean"),
    ],
)
def test_bad_settings_are_reported_by_name(tmp_path, env, message) -> None:
    with pytest.raises((LabelzooError, ValueError), match=message.replace("(", r"\(")):
        model.SegmentAnything(sam_settings(tmp_path, **env))


def test_label_studio_gets_masks_for_clicks_and_empty_warm_ups_over_http(
    make_client, tmp_path, tiny_type, tiny_checkpoint
) -> None:
    client = make_client(
        SAM_FOLDER,
        SAM_MODEL_TYPE=tiny_type,
        SAM_CHECKPOINT=str(tiny_checkpoint),
        MEDIA_LOCAL_ROOTS=str(tmp_path),
        DEVICE="cpu",
    )
    image = write_image(tmp_path / "ls.png", scene(64, 48, seed=5))
    config = BRUSH_CONFIG.xml
    setup = client.post("/setup", json={"project": "3.1700000000", "schema": config}).get_json()
    version = setup["model_version"]
    assert version == f"sam-{tiny_type}-sam_tiny"

    task = {"id": 11, "data": {"image": str(image)}}
    body = {"tasks": [task], "project": "3.1700000000", "label_config": config, "params": {"context": None}}
    opened = client.post("/predict", json=body)
    assert opened.status_code == 200
    assert opened.get_json()["results"] == [{"result": [], "model_version": version}]

    body["params"]["context"] = {"result": [click(50, 50, size=(64, 48))]}
    clicked = client.post("/predict", json=body).get_json()
    (answer,) = clicked["results"]
    (region,) = answer["result"]
    assert (region["type"], region["from_name"], region["value"]["brushlabels"]) == ("brushlabels", "mask", ["Cat"])
    assert (region["original_width"], region["original_height"]) == (64, 48)
    assert answer["model_version"] == version and 0.0 <= answer["score"] <= 1.0

    body["params"]["context"] = {"result": [{"type": "choices", "value": {"choices": ["x"]}}]}
    refused = client.post("/predict", json=body)
    assert refused.status_code == 422
    assert "keypoint or rectangle prompts" in refused.get_json()["message"]

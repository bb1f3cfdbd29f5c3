"""Dockerfiles and compose files, checked without a Docker engine: hadolint for every Dockerfile, the
Compose specification plus our own reference checks (build contexts, Dockerfiles, env files, volumes,
dependencies) for every compose file, and the Makefile's up-<backend> targets pointing at real files."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_spec import PyCompose

REPO = Path(__file__).resolve().parents[1]
DOCKERFILES = sorted(REPO.glob("backends/*/Dockerfile"))
BASE_DOCKERFILE = REPO / "backends" / "base.Dockerfile"
ALL_DOCKERFILES = [*DOCKERFILES, BASE_DOCKERFILE, *sorted(REPO.glob("compose/*.Dockerfile"))]
COMPOSE_FILES = sorted(p for p in REPO.glob("compose/*.yml") if not p.name.endswith(".gpu.yml"))
GPU_OVERRIDES = sorted(REPO.glob("compose/*.gpu.yml"))
HADOLINT = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")


@pytest.mark.parametrize("dockerfile", ALL_DOCKERFILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    out = subprocess.run([HADOLINT, "--failure-threshold", "info", "--no-color", str(dockerfile)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


TORCH_FROM = "ARG TORCH_IMAGE=labelzoo-torch:local\nFROM ${TORCH_IMAGE}\n"  # the base with PyTorch (GPU: :gpu)


def with_base(dockerfile: Path) -> str:
    """The instructions an image ends up with: the base image's (backends/base.Dockerfile), then its own."""
    text = dockerfile.read_text()
    assert re.search(r"^FROM labelzoo-base:local$", text, flags=re.M) or TORCH_FROM in text, (
        f"{dockerfile} must start from the base, labelzoo-base:local or labelzoo-torch:local"
    )
    return BASE_DOCKERFILE.read_text() + text


def test_torch_is_installed_once_in_the_base_at_the_versions_the_constraints_pin() -> None:
    pins = dict(re.findall(r"^(torch|torchvision)==(\S+)$", (REPO / "constraints.txt").read_text(), flags=re.M))
    installed = dict(re.findall(r"\b(torch|torchvision)==([\d.]+)", BASE_DOCKERFILE.read_text()))
    assert installed == pins and set(pins) == {"torch", "torchvision"}
    for dockerfile in DOCKERFILES:
        assert "torch==" not in dockerfile.read_text(), f"{dockerfile}: torch comes from labelzoo-torch"


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_make_image_builds_the_base_the_backends_dockerfile_starts_from(gpu: bool) -> None:
    def commands(backend: str) -> str:
        args = ["make", "-n", "image", f"BACKEND={backend}", "ENGINE=docker", *(["GPU=1"] if gpu else [])]
        out = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
        return " ".join(out.stdout.replace("\\\n", " ").split())

    base, tag = "-f backends/base.Dockerfile", "labelzoo-torch:gpu" if gpu else "labelzoo-torch:local"
    index = "https://pypi.org/simple" if gpu else "https://download.pytorch.org/whl/cpu"
    sam = commands("sam")
    assert f"{base} --build-arg TORCH_INDEX_URL={index} -t {tag} ." in sam
    assert f"-f backends/sam/Dockerfile --build-arg TORCH_IMAGE={tag} -t labelzoo-sam{':gpu' if gpu else ''} ." in sam
    spacy = commands("spacy")
    assert f"{base} -t labelzoo-base:local ." in spacy and "TORCH" not in spacy


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_runs_as_non_root_with_a_healthcheck_and_a_data_volume(dockerfile: Path) -> None:
    text = with_base(dockerfile)
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    assert re.search(r"^HEALTHCHECK .*?/health", text, flags=re.M | re.S)
    assert re.search(r"^VOLUME .*?/data", text, flags=re.M)
    for source in re.findall(r"^COPY\s+(?:--\S+\s+)*(.+)\s+\S+$", text, flags=re.M):
        for path in source.split():
            assert (REPO / path).exists(), f"{dockerfile}: COPY {path} does not exist in the build context"


def instructions(dockerfile: Path) -> list[str]:
    return [line.strip() for line in dockerfile.read_text().splitlines() if line.strip() and not line.startswith("#")]


def test_no_block_of_six_lines_is_repeated_between_two_backend_dockerfiles() -> None:
    """What every image needs is in the base; a backend's Dockerfile holds only what is its own."""
    blocks: dict[tuple[str, ...], Path] = {}
    for dockerfile in DOCKERFILES:
        lines = instructions(dockerfile)
        for block in {tuple(lines[i : i + 6]) for i in range(len(lines) - 5)}:
            other = blocks.setdefault(block, dockerfile)
            assert other == dockerfile, f"{other} and {dockerfile} both hold:\n" + "\n".join(block)


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ``${X}``, ``${X:-default}``, ``${X-default}``, ``${X:?error}``, defaults
    that hold variables themselves (``${A:-${B:-b}}``); ``$$`` is a ``$``."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            end, depth = i + 2, 1
            while depth:
                depth += {"{": 1, "}": -1}.get(text[end], 0) if not text.startswith("${", end) else 1
                end += 2 if text.startswith("${", end) else 1
            out.append(_substitute(text[i + 2 : end - 1], env))
            i = end
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _substitute(inner: str, env: dict[str, str]) -> str:
    match = re.fullmatch(r"(\w+)(?:(:?)([-?])(.*))?", inner, flags=re.S)
    assert match, f"cannot read ${{{inner}}}"
    name, colon, kind, arg = match.groups()
    value = env.get(name)
    if value is not None and (value or not colon):
        return value
    if kind == "?":
        raise AssertionError(f"${{{name}}} is required: {arg}")
    return interpolate(arg, env) if kind == "-" else ""


def _services(path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    text = interpolate(path.read_text(), env or {"BACKEND": "yolo"})
    spec = PyCompose.from_yaml(text)  # raises ValueError naming the offending key
    return spec.to_dict()


@pytest.mark.parametrize("compose_file", COMPOSE_FILES, ids=lambda p: p.stem)
def test_compose_file_is_valid_and_its_references_exist(compose_file: Path) -> None:
    spec = _services(compose_file)
    raw = yaml.safe_load(interpolate(compose_file.read_text(), {"BACKEND": "yolo"}))
    base = compose_file.parent
    declared_volumes = set((raw.get("volumes") or {}).keys())
    services = raw["services"]
    for name, service in services.items():
        build = service.get("build")
        if build is not None:
            context = base / (build if isinstance(build, str) else build.get("context", "."))
            assert context.is_dir(), f"{name}: build context {context} does not exist"
            dockerfile = context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
            assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
        for env_file in service.get("env_file", []) or []:
            entry = env_file if isinstance(env_file, dict) else {"path": env_file}
            if entry.get("required", True):
                assert (base / entry["path"]).is_file(), f"{name}: env_file {entry['path']} does not exist"
        for volume in service.get("volumes", []) or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source")
            if source and not source.startswith((".", "/", "~", "$")):
                assert source in declared_volumes, f"{name}: named volume {source!r} is not declared"
        for dependency in service.get("depends_on", []) or []:
            assert dependency in services, f"{name}: depends_on {dependency!r}, which is not a service"
        long_running = service.get("restart") != "no"
        assert "healthcheck" in service or not long_running, f"{name}: a long-running service needs a healthcheck"
    assert spec["services"]


@pytest.mark.parametrize("backend", ["yolo", "spacy", "whisper", "sam", "sam2", "ocr", "gliner", "grounding"])
def test_quickstart_pairs_label_studio_with_the_backend(backend: str) -> None:
    backend_file = REPO / "compose" / f"{backend}.yml"
    assert backend_file.is_file(), f"make up-{backend} needs {backend_file}"
    env = {"BACKEND": backend}
    shared = yaml.safe_load(interpolate((REPO / "compose" / "label-studio.yml").read_text(), env))
    own = yaml.safe_load(interpolate(backend_file.read_text(), env))
    services = {**shared["services"], **own["services"]}
    assert backend in own["services"], f"the bootstrap step reaches the backend as http://{backend}:9090"
    assert own["services"][backend]["environment"]["LABEL_STUDIO_URL"].endswith("label-studio:8080")
    assert "LABEL_STUDIO_API_KEY" in own["services"][backend]["environment"]
    assert (REPO / "backends" / backend).is_dir()
    merged = {"services": services, "volumes": {**(shared.get("volumes") or {}), **(own.get("volumes") or {})}}
    PyCompose.from_yaml(yaml.safe_dump(merged))
    assert f"up-{backend}" in (REPO / "Makefile").read_text()


@pytest.mark.parametrize("backend", ["yolo", "spacy", "whisper", "sam", "sam2", "ocr", "gliner", "grounding"])
def test_the_users_env_file_wins_over_the_quickstart_defaults(backend: str) -> None:
    """An upstream user's ``.env`` (``LABEL_STUDIO_URL`` and a Personal Access Token) reaches the backend; the
    demo's URL and token are only defaults."""
    text = (REPO / "compose" / f"{backend}.yml").read_text()
    mine = {"BACKEND": backend, "LABEL_STUDIO_URL": "https://ls.example.org", "LABEL_STUDIO_API_KEY": "my-pat"}
    environment = yaml.safe_load(interpolate(text, mine))["services"][backend]["environment"]
    assert (environment["LABEL_STUDIO_URL"], environment["LABEL_STUDIO_API_KEY"]) == ("https://ls.example.org",
                                                                                      "my-pat")
    demo = yaml.safe_load(interpolate(text, {"BACKEND": backend, "LABEL_STUDIO_USER_TOKEN": "demo-token"}))
    assert demo["services"][backend]["environment"]["LABEL_STUDIO_API_KEY"] == "demo-token"
    assert "--env-file .env" in (REPO / "Makefile").read_text()  # compose reads ../.env for interpolation


def test_interpolation_reads_nested_defaults() -> None:
    assert interpolate("${A:-${B:-b}} ${C-} $${D}", {}) == "b  ${D}"
    assert interpolate("${A:-${B:-b}}", {"B": "x"}) == "x"
    assert interpolate("${A:-${B:-b}}", {"A": "", "B": "x"}) == "x"
    assert interpolate("${A-z}", {"A": ""}) == ""


@pytest.mark.parametrize("override", GPU_OVERRIDES, ids=lambda p: p.stem)
def test_gpu_variant_overrides_its_backend_service_with_cuda_and_the_gpus(override: Path) -> None:
    backend = override.name.removesuffix(".gpu.yml")
    base = yaml.safe_load(interpolate((REPO / "compose" / f"{backend}.yml").read_text(), {"BACKEND": backend}))
    gpu = yaml.safe_load(override.read_text())
    assert set(gpu["services"]) == {backend}, "an override must only change the backend's own service"
    service = {**base["services"][backend], **gpu["services"][backend]}
    service["build"] = {**base["services"][backend]["build"], **gpu["services"][backend]["build"]}
    assert TORCH_FROM in (REPO / "backends" / backend / "Dockerfile").read_text()
    assert service["build"]["args"] == {"TORCH_IMAGE": "labelzoo-torch:gpu"}
    assert service["environment"]["DEVICE"] == "cuda"
    assert service["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    PyCompose.from_yaml(yaml.safe_dump({"services": {backend: service}, "volumes": base.get("volumes")}))
    assert {p.name.removesuffix(".gpu.yml") for p in GPU_OVERRIDES} == {"yolo", "whisper", "sam", "sam2"}


def test_compose_validation_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("services:\n  api:\n    image: x\n    ports: [{published: 'http', target: 9090}]\n")
    with pytest.raises(ValueError, match="published"):
        _services(broken)

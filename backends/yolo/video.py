"""``VideoRectangle`` and ``TimelineLabels`` on ``<Video>``: objects followed through a video by Ultralytics'
trackers, and stretches of frames labelled by a classifier.

The video streams through ``YOLO.track`` frame by frame (bounded memory: Ultralytics decodes one frame at a time),
with the tracker the control names in ``model_tracker`` (``botsort``, Ultralytics' default, ``bytetrack`` or any
other it ships) and its settings overridden by ``<tracker>_<setting>`` attributes (``bytetrack_track_buffer="60"``).
``model_conf`` is the detector's confidence (Ultralytics' tracking default 0.1 without it: the trackers use the
weak detections to keep tracks alive), ``model_iou`` its NMS overlap.

Each track becomes one region: its label is the label its boxes were given most often, mapped through the
``<Labels>`` on the same video; its score is their mean confidence, and a track below the control's score
threshold is left out. Its keyframes are the frames it was seen on (1-based, as the Video tag counts); where it
was lost for a while, or ends before the video does, the last keyframe before has ``enabled: false``, so Label
Studio does not draw it through the gap. Frame rate and frame count come from the file; the Video tag's
``frameRate`` should match it (Label Studio times keyframes by that attribute).

A ``TimelineLabels`` is filled by the classification model, frame by frame: a frame's label is the likeliest of
the control's labels (a label's probability is the sum over the model classes it takes, as for ``Choices``), kept
when it reaches the control's score threshold; each run of consecutive frames with the same kept label becomes
one region with that frame range, scored by the label's mean probability over it.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from labelzoo.errors import LabelConfigError
from labelzoo.labelconfig import ControlTag, LabelConfig, LabelMap, ObjectTag, build_label_map
from labelzoo.results import Keyframe, timeline_labels, video_rectangle
from labelzoo.video import VideoInfo

from .kinds.classify import choice_probabilities
from .outputs import ControlOutput, values

if TYPE_CHECKING:
    from ultralytics.engine.results import Results

VIDEO_TAGS = ("VideoRectangle", "TimelineLabels")  # the controls on a <Video> the backend fills
VIDEO_ATTRIBUTES = ("model_tracker", "model_iou")  # a VideoRectangle's, besides the plan's
DEFAULT_TRACKER = "botsort"
TRACKING_CONF = 0.1  # Ultralytics' detector confidence in tracking mode


def tracker_file(control: ControlTag, folder: Path) -> str:
    """The tracker YAML for the control: Ultralytics' own, or a copy in ``folder`` with the control's overrides."""
    from ultralytics.utils import ROOT

    name = (control.attr("model_tracker") or DEFAULT_TRACKER).strip().lower()
    shipped = ROOT / "cfg" / "trackers" / f"{name}.yaml"
    if not shipped.is_file():
        known = sorted(p.stem for p in shipped.parent.glob("*.yaml"))
        raise LabelConfigError(f'<{control.tag} name="{control.name}"> has model_tracker="{name}"; use one of {known}')
    settings = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    prefix = f"{name}_"
    overrides = {key[len(prefix):]: raw for key, raw in control.attrs.items() if key.lower().startswith(prefix)}
    if not overrides:
        return str(shipped)
    for key, raw in overrides.items():
        if key not in settings:
            raise LabelConfigError(f'<{control.tag} name="{control.name}"> has {prefix}{key}, which {name} does not '
                                   f"have: {sorted(settings)}")
        settings[key] = _typed(raw, settings[key], f"{prefix}{key}", control)
    out = Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".yaml", dir=folder)[1])
    out.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return str(out)


def _typed(raw: str, default: Any, name: str, control: ControlTag) -> Any:
    """Attribute ``name`` as the type of the tracker's own ``default``: booleans and numbers as the core reads
    them (a bad one is refused, naming it)."""
    if isinstance(default, bool):
        return control.bool_attr(name, default)
    if isinstance(default, float):
        return control.float_attr(name)
    try:
        return type(default)(raw) if default is not None else raw
    except ValueError:
        raise LabelConfigError(f'<{control.tag} name="{control.name}"> has {name}="{raw}", not a '
                               f"{type(default).__name__}") from None


def video_labels(config: LabelConfig, obj: ObjectTag, model_names: dict[int, str]) -> LabelMap:
    """Model class → config label, from the ``<Labels>`` controls on the video (``predicted_values`` honoured)."""
    return build_label_map(labels_control(config, obj), model_names.values())


def labels_control(config: LabelConfig, obj: ObjectTag) -> ControlTag:
    """The ``<Labels>`` on the video, where its VideoRectangle takes its labels from."""
    for control in config.controls.values():
        if control.tag.lower() == "labels" and obj.name in control.to_names:
            return control
    raise LabelConfigError(f'<Video name="{obj.name}"> has no <Labels toName="{obj.name}">: a VideoRectangle takes '
                           "its labels from one")


@dataclass
class Track:
    frames: list[int] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)  # x, y, w, h in pixels
    labels: Counter[str] = field(default_factory=Counter)
    confidences: list[float] = field(default_factory=list)


def collect_tracks(results: Iterable[Results], labels: LabelMap) -> tuple[dict[int, Track], int]:
    """Each track id's boxes frame by frame (frame 1 is the first result; classes without a label are dropped),
    and the number of frames read."""
    tracks: dict[int, Track] = {}
    frame = 0
    for frame, result in enumerate(results, start=1):
        boxes = result.boxes
        if boxes is None or boxes.id is None:
            continue
        ids = values(result, "boxes", "id").astype(int)
        xyxy, conf, cls = (values(result, "boxes", name) for name in ("xyxy", "conf", "cls"))
        for i, track_id in enumerate(ids):
            label = labels.get(str(result.names[int(cls[i])]))
            if label is None:
                continue
            x1, y1, x2, y2 = (float(v) for v in xyxy[i])
            track = tracks.setdefault(int(track_id), Track())
            track.frames.append(frame)
            track.boxes.append((x1, y1, x2 - x1, y2 - y1))
            track.labels[label] += 1
            track.confidences.append(float(conf[i]))
    return tracks, frame


def track_regions(tracks: dict[int, Track], info: VideoInfo, control: ControlTag, obj: ObjectTag,
                  threshold: float) -> ControlOutput:
    """One ``videorectangle`` per track scoring at least ``threshold``, with its lifespans (module docstring)."""
    out = ControlOutput()
    for track_id, track in sorted(tracks.items()):
        score = sum(track.confidences) / len(track.confidences)
        if not out.consider(score, threshold):
            continue
        keyframes = []
        for n, (frame, box) in enumerate(zip(track.frames, track.boxes, strict=True)):
            following = track.frames[n + 1] if n + 1 < len(track.frames) else None
            ends = following != frame + 1 and frame < info.frames  # lost after this frame, or gone for good
            keyframes.append(Keyframe(frame=frame, box=box, enabled=not ends))
        label = track.labels.most_common(1)[0][0]
        out.add(video_rectangle(control.name, obj.name, keyframes=keyframes, frame_size=info.size, fps=info.fps,
                                frames_count=info.frames, labels=[label], score=score,
                                region_id=f"{control.name}-track{track_id}"), score)
    return out


def timeline_regions(results: Iterable[Results], labels: LabelMap, control: ControlTag, obj: ObjectTag,
                     threshold: float) -> ControlOutput:
    """One ``timelinelabels`` region per run of frames whose likeliest label is the same and sure enough."""
    out = ControlOutput()
    runs: list[tuple[str, int, int, list[float]]] = []  # label, first frame, last frame, probabilities
    for frame, result in enumerate(results, start=1):
        by_label = choice_probabilities(result, labels)
        if not by_label:
            continue
        label = max(by_label, key=by_label.__getitem__)
        p = min(by_label[label], 1.0)
        if not out.consider(p, threshold):
            continue
        if runs and runs[-1][0] == label and runs[-1][2] == frame - 1:
            runs[-1] = (label, runs[-1][1], frame, [*runs[-1][3], p])
        else:
            runs.append((label, frame, frame, [p]))
    for label, first, last, probabilities in runs:
        score = sum(probabilities) / len(probabilities)
        out.add(timeline_labels(control.name, obj.name, ranges=[(first, last)], labels=[label], score=score,
                                region_id=f"{control.name}-{first}"), score)
    return out

"""Settings of label-studio-ml-backend read the labelzoo way, so an upstream user's ``.env`` works unchanged.

Upstream names with a labelzoo equivalent are aliases: when the labelzoo name is not set, the upstream
one's value is used. Upstream names labelzoo has no use for are reported once at start-up with what
to set instead, so nothing a user configured is ignored without a word.
"""

from __future__ import annotations

from collections.abc import Mapping

#: upstream name → the labelzoo setting it stands for
ALIASES: Mapping[str, str] = {
    "LABEL_STUDIO_HOST": "LABEL_STUDIO_URL",
    "LABEL_STUDIO_ACCESS_TOKEN": "LABEL_STUDIO_API_KEY",
    "ML_SERVER_BASIC_AUTH_USER": "BASIC_AUTH_USER",
    "ML_SERVER_BASIC_AUTH_PASS": "BASIC_AUTH_PASS",
    "START_TRAINING_EACH_N_UPDATES": "TRAIN_AFTER_ANNOTATIONS",
}

#: upstream settings labelzoo does not read → what to do instead
NOT_USED: Mapping[str, str] = {
    "CACHE_TYPE": "labelzoo keeps all state in MODEL_DIR/labelzoo.sqlite3; nothing to choose",
    "LEARNING_RATE": "each backend trains with settings chosen from the data's size; see its README's settings",
    "NUM_TRAIN_EPOCHS": "set the backend's own option where it has one (YOLO_EPOCHS for yolo)",
    "WEIGHT_DECAY": "each backend trains with settings chosen from the data's size; see its README's settings",
    "BASELINE_MODEL_NAME": "name the model with the backend's own option (YOLO_MODEL_DETECT, SPACY_MODEL, "
                           "WHISPER_MODEL, SAM_CHECKPOINT, …)",
    "FINETUNED_MODEL_NAME": "trained versions are named by labelzoo (<base>-p<project>-v<n>-<fingerprint>), "
                            "one per project; see GET /versions",
}


def resolve_aliases(env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """``env`` with upstream aliases applied, and one note per upstream setting found (to log at start-up)."""
    resolved = dict(env)
    notes: list[str] = []
    for upstream, ours in ALIASES.items():
        value = env.get(upstream)
        if not value:
            continue
        if env.get(ours):
            if env[ours] != value:
                notes.append(f"{upstream} is ignored: {ours} is set too and wins (they differ)")
            continue
        resolved[ours] = value
        notes.append(f"reading {upstream} as {ours} (label-studio-ml-backend's name for it)")
    for upstream, instead in NOT_USED.items():
        if env.get(upstream):
            notes.append(f"{upstream} (a label-studio-ml-backend setting) is not used by labelzoo: {instead}")
    return resolved, notes

"""Task media access: resolve Label Studio media values to local files, per-task media for a batch (fetched
and decoded ahead, in task order), and an authenticated LS client."""

from labelzoo.media.cache import MediaCache
from labelzoo.media.http import UpstreamError
from labelzoo.media.lsclient import LabelStudioClient, TokenCheck, TokenKind, label_studio_client
from labelzoo.media.netguard import check_url_allowed
from labelzoo.media.resolver import MediaResolver
from labelzoo.media.settings import MediaSettings
from labelzoo.media.tasks import Decoder, TaskMedia, for_task, per_task

__all__ = [
    "Decoder",
    "LabelStudioClient",
    "MediaCache",
    "MediaResolver",
    "MediaSettings",
    "TaskMedia",
    "TokenCheck",
    "TokenKind",
    "UpstreamError",
    "check_url_allowed",
    "for_task",
    "label_studio_client",
    "per_task",
]

"""Task media access: resolve Label Studio media values to local files, and an authenticated LS client."""

from labelzoo.media.cache import MediaCache
from labelzoo.media.http import UpstreamError
from labelzoo.media.lsclient import LabelStudioClient, TokenCheck, TokenKind, label_studio_client
from labelzoo.media.netguard import check_url_allowed
from labelzoo.media.resolver import MediaResolver
from labelzoo.media.settings import MediaSettings

__all__ = [
    "LabelStudioClient",
    "MediaCache",
    "MediaResolver",
    "MediaSettings",
    "TokenCheck",
    "TokenKind",
    "UpstreamError",
    "check_url_allowed",
    "label_studio_client",
]

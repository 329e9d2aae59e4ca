"""Graph API failures as one exception with a readable ``state``.

Meta answers a failed call with ``{"error": {"message", "type", "code", "error_data":
{"details"}, "fbtrace_id"}}``; statuses webhooks carry the same codes. ``state`` is the
vocabulary chat-server stores and shows to staff; ``retryable`` says whether the client may try
again on its own (429, 5xx, timeouts, network errors: never another 4xx).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .cloud_api import SendResult

# Meta error code -> state. Codes from the WhatsApp Cloud API error code reference.
ERROR_STATES: dict[int, str] = {
    131047: "outside_window",  # more than 24 hours since the contact last wrote: templates only
    131026: "undeliverable",  # not on WhatsApp, old app version, or the contact blocked us
    130472: "undeliverable",  # the number is part of one of Meta's experiments
    133010: "undeliverable",  # the business number is not registered
    131051: "unsupported_type",
    131052: "media_download_failed",
    131053: "media_upload_failed",
    130429: "rate_limited",  # throughput of the business number
    131056: "rate_limited",  # too many messages to the same contact (pair rate limit)
    80007: "rate_limited",  # WhatsApp Business Account rate limit
    4: "rate_limited",  # application call limit
    131048: "spam_rate_limited",  # quality: too many messages were blocked or reported
    131049: "ecosystem_limited",  # Meta chose not to deliver a marketing message
    131050: "user_stopped_marketing",
    132000: "template_params",
    132012: "template_params",
    132001: "template_missing",
    132015: "template_paused",
    132016: "template_disabled",
    368: "blocked",  # temporarily blocked for policy violations
    131031: "account_locked",
    131042: "payment",  # a billing problem on the business account
    190: "auth",  # access token expired or invalid
    10: "permission",
    200: "permission",
    100: "invalid",
    131008: "invalid",  # a required parameter is missing
    131009: "invalid",  # a parameter value is not valid
    131021: "invalid",  # sender and recipient are the same number
}
# States without a Meta code: what happened on the wire.
NETWORK = "network"
TIMEOUT = "timeout"
BAD_RESPONSE = "bad_response"  # a 2xx that does not say what was sent
INVALID = "invalid"
TOO_LARGE = "too_large"  # a media file past the size we take


def state_for(http_status: int, code: int | None) -> str:
    if code is not None and code in ERROR_STATES:
        return ERROR_STATES[code]
    if http_status == 429:
        return "rate_limited"
    if http_status >= 500:
        return "server_error"
    if http_status in (401, 403):
        return "auth"
    return "failed"


class CloudApiError(Exception):
    """A Graph API call that did not succeed. Never carries the access token.

    ``http_status`` is 0 when no response came (network error, timeout). ``sent`` lists the
    parts of a split text that went out before this one failed, so none is sent twice.
    """

    def __init__(self, http_status: int, code: int | None, title: str, *, details: str | None = None,
                 state: str | None = None, retry_after_s: float | None = None,
                 sent: Sequence[SendResult] = ()) -> None:
        self.http_status = http_status
        self.code = code
        self.title = title
        self.details = details
        self.state = state or state_for(http_status, code)
        self.retry_after_s = retry_after_s
        self.sent: list[SendResult] = list(sent)
        where = f"HTTP {http_status}" if http_status else "no response"
        super().__init__(f"WhatsApp API error {code if code is not None else '-'} ({self.state}, {where}): {title}")

    @property
    def retryable(self) -> bool:
        # A 4xx other than 429 would fail again the same way; a 400 carrying a rate-limit code
        # is left to the caller, who knows whether waiting longer makes sense.
        return self.http_status == 429 or self.http_status >= 500 or self.state in (NETWORK, TIMEOUT)

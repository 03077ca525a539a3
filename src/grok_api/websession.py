"""Whether the grok.com session (the user's own cookies) still works, as this instance last saw it.

The pipeline tells it how each request to the ``web`` upstream ended: :meth:`record_ok` for an
answer, :meth:`record_refusal` when grok.com refused the session (``web_session_refused``),
said it is signed out (``web_session_expired``) or hit the account's usage limit
(``web_usage_limit``, with its reset time). The dashboard's grok.com card shows
:meth:`snapshot`: green while the last word was an answer, red after a refusal, with what to
refresh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

REFUSAL_CODES = frozenset({"web_session_refused", "web_session_expired", "web_usage_limit"})

ADVICE = {
    "web_session_refused": "grok.com refused the session: copy fresh cookies (and the user agent) from "
    "your signed-in browser into GROK_API_WEB_COOKIES / GROK_API_WEB_USER_AGENT.",
    "web_session_expired": "The grok.com session is signed out: sign in again in your browser and copy "
    "its cookies into GROK_API_WEB_COOKIES.",
    "web_usage_limit": "The grok.com account reached its usage limit: wait until the reset time.",
}


@dataclass(slots=True)
class Refusal:
    at: float
    code: str
    message: str
    reset_at: float | None


class WebSessionStatus:
    def __init__(self, clock: Any = time.time) -> None:
        self._clock = clock
        self.configured = False
        self.last_ok: float | None = None
        self.last_refusal: Refusal | None = None
        self.answers = 0
        self.refusals = 0

    def record_ok(self) -> None:
        self.last_ok = self._clock()
        self.answers += 1

    def record_refusal(self, code: str, message: str, retry_after: float | None = None) -> None:
        now = self._clock()
        reset = now + retry_after if retry_after is not None else None
        self.last_refusal = Refusal(now, code, message, reset)
        self.refusals += 1

    def state(self) -> str:
        """``unknown`` (not used yet), ``ok``, ``limited`` (usage limit until its reset) or ``refused``."""
        refusal = self.last_refusal
        if refusal is None or (self.last_ok is not None and self.last_ok > refusal.at):
            return "ok" if self.last_ok is not None else "unknown"
        if refusal.code == "web_usage_limit":
            return "limited" if refusal.reset_at is None or refusal.reset_at > self._clock() else "ok"
        return "refused"

    def snapshot(self) -> dict[str, Any]:
        refusal = self.last_refusal
        state = self.state()
        return {
            "configured": self.configured,
            "state": state,
            "last_success_at": self.last_ok,
            "answers": self.answers,
            "refusals": self.refusals,
            "last_refusal": None
            if refusal is None
            else {
                "at": refusal.at,
                "code": refusal.code,
                "message": refusal.message,
                "reset_at": refusal.reset_at,
                "advice": ADVICE.get(refusal.code, ""),
            },
            "advice": ADVICE.get(refusal.code, "") if refusal is not None and state != "ok" else "",
        }

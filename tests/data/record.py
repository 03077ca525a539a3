"""Records the upstream streams the codec tests replay: ``python tests/data/record.py``.

Each file is the exact body the built-in simulator sends for one request (the simulator speaks
xAI's SSE and grok.com's NDJSON as the public clients see them); ids and timestamps vary from
run to run, the Events they decode to do not. Hand-written edge cases live in the tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import orjson

from grok_api.simulator import SimulatorConfig, SimulatorThread

HERE = Path(__file__).parent
SSO, AGENT = "sso-recording", "Mozilla/5.0 (Recording)"
PROMPT = "héllo wörld — 世界 🎉"  # 2-, 3- and 4-byte UTF-8 characters in every answer

XAI = {  # file: request body
    "xai_text.sse": {"model": "grok-4.20-non-reasoning", "stream_options": {"include_usage": True}},
    "xai_reasoning.sse": {"model": "grok-3-mini", "stream_options": {"include_usage": True}},
    "xai_tool.sse": {
        "model": "grok-4.20-non-reasoning",
        "stream_options": {"include_usage": True},
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
        "_directive": "[sim tool=1]",
    },
}
WEB = {  # file: (directive, continue the conversation?)
    "web_new.ndjson": ("[sim think=1 images=2]", False),
    "web_followup.ndjson": ("", True),
}


def main(out: Path = HERE) -> None:
    config = SimulatorConfig(xai_api_key="xai-rec", web_cookie=SSO, web_user_agent=AGENT)
    with SimulatorThread(config) as sim, httpx.Client(timeout=30) as http:
        for name, extra in XAI.items():
            body = {k: v for k, v in extra.items() if not k.startswith("_")}
            prompt = f"{PROMPT} {extra.get('_directive', '')}".strip()
            body |= {"stream": True, "messages": [{"role": "user", "content": prompt}]}
            r = http.post(
                sim.base_url + "/v1/chat/completions", json=body, headers={"Authorization": "Bearer xai-rec"}
            )
            (out / name).write_bytes(r.content)
        headers = {"Cookie": f"sso={SSO}", "User-Agent": AGENT}
        first = http.post(
            sim.base_url + "/rest/app-chat/conversations/new",
            json={"message": f"{PROMPT} {WEB['web_new.ndjson'][0]}", "modelName": "grok-4"},
            headers=headers,
        )
        (out / "web_new.ndjson").write_bytes(first.content)
        lines = [orjson.loads(line)["result"] for line in first.content.splitlines()]
        conversation = lines[0]["conversation"]["conversationId"]
        (parent,) = [
            x["response"]["modelResponse"]["responseId"]
            for x in lines
            if "modelResponse" in x.get("response", {})
        ]
        second = http.post(
            f"{sim.base_url}/rest/app-chat/conversations/{conversation}/responses",
            json={"message": PROMPT, "modelName": "grok-4", "parentResponseId": parent},
            headers=headers,
        )
        (out / "web_followup.ndjson").write_bytes(second.content)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)

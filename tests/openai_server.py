"""A minimal OpenAI-compatible chat-completions server around a real Hugging Face causal LM.

Used to test the HTTP expert backend end to end on this machine (no vLLM here): the model, the
chat template and the HTTP exchange are all real.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch


class TinyChatServer:
    """Serve ``POST /v1/chat/completions`` with ``model``.

    The first ``fail_first`` calls answer 503; a prompt holding ``reject_marker`` answers 400.
    """

    def __init__(self, model, tokenizer, fail_first: int = 0,
                 reject_marker: str | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.fail_first = fail_first
        self.reject_marker = reject_marker
        self.hits = 0
        self.payloads: list[dict] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _send(self, code: int, obj: dict) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802 (http.server's naming)
                with server._lock:
                    server.hits += 1
                    failing = server.hits <= server.fail_first
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": f"no route {self.path}"})
                if failing:
                    return self._send(503, {"error": "warming up"})
                try:
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                    messages = body["messages"]
                except (ValueError, KeyError, TypeError):
                    return self._send(400, {"error": "bad request"})
                server.payloads.append(body)
                if server.reject_marker and server.reject_marker in messages[-1]["content"]:
                    return self._send(400, {"error": "prompt too long"})
                text = server.complete(messages, body)
                return self._send(200, {"object": "chat.completion", "model": body.get("model"),
                                        "choices": [{"index": 0, "finish_reason": "stop",
                                                     "message": {"role": "assistant",
                                                                 "content": text}}]})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @torch.no_grad()
    def complete(self, messages, body) -> str:
        prompt = self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                    add_generation_prompt=True)
        ids = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        temperature = float(body.get("temperature", 1.0))
        kwargs = {"max_new_tokens": int(body.get("max_tokens", 16)),
                  "pad_token_id": self.tokenizer.pad_token_id, "do_sample": temperature > 0}
        if temperature > 0:
            kwargs.update(temperature=temperature, top_p=float(body.get("top_p", 1.0)))
        with self._lock:
            torch.manual_seed(int(body.get("seed", 0)))
            out = self.model.generate(**ids, **kwargs)
        return self.tokenizer.decode(out[0, ids["input_ids"].shape[1]:],
                                     skip_special_tokens=True).strip()

    def __enter__(self) -> TinyChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

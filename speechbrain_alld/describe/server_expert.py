"""An expert served over HTTP by an OpenAI-compatible chat-completions endpoint.

For 70B-scale corpora the expert usually runs in an inference engine (a vLLM server, TGI, SGLang,
llama.cpp's server...) that batches requests itself. :class:`OpenAIChatExpert` sends each request
as one ``POST {base_url}/chat/completions`` with the variant's sampling settings and the seed,
several at a time, and retries transient failures (connection errors, HTTP 429 and 5xx)::

    vllm serve meta-llama/Llama-3.1-70B-Instruct --tensor-parallel-size 4
    expert: !new:speechbrain_alld.describe.server_expert.OpenAIChatExpert
        base_url: http://localhost:8000/v1
        model: meta-llama/Llama-3.1-70B-Instruct

Only the Python standard library is used for HTTP.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from speechbrain.utils.logger import get_logger

from speechbrain_alld.describe.experts import Expert, GenerationRequest, SamplingConfig
from speechbrain_alld.describe.prompts import DEFAULT_SYSTEM_PROMPT, build_verdict_prompt
from speechbrain_alld.durable import stable_seed

logger = get_logger(__name__)
_LETTER = re.compile(r"\b([AB])\b")
_TRANSIENT = {408, 425, 429, 500, 502, 503, 504}
# The request itself is unusable (e.g. a prompt longer than the context): that item's text is
# left empty, so validation rejects it, instead of the whole run stopping.
_ITEM_ERRORS = {400, 413, 422}


def _item_seed(request: GenerationRequest) -> int:
    return stable_seed(f"{request.item_id}:{request.seed}")


class ServerError(RuntimeError):
    """The endpoint answered with an error, or not at all after the retries."""


class OpenAIChatExpert(Expert):
    """Generate expert texts through an OpenAI-compatible ``/chat/completions`` endpoint.

    Arguments
    ---------
    base_url: the API root, e.g. ``http://localhost:8000/v1``.
    model: the model name the server expects.
    api_key: sent as a bearer token; defaults to ``$OPENAI_API_KEY`` (servers on localhost
        usually need none).
    concurrency: requests in flight at once (the server batches them).
    max_retries: retries of a transient failure, with exponential back-off from ``backoff`` s.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
        concurrency: int = 8,
        timeout: float = 300.0,
        max_retries: int = 3,
        backoff: float = 1.0,
        expert_id: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.system_prompt = system_prompt
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.expert_id = expert_id or f"openai:{model}"
        self.n_requests = 0

    def _payload(self, prompt: str, sampling: SamplingConfig, seed: int) -> dict[str, Any]:
        messages = [{"role": "user", "content": prompt}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        payload: dict[str, Any] = {"model": self.model, "messages": messages,
                                   "max_tokens": sampling.max_new_tokens, "seed": seed}
        if sampling.do_sample:
            payload.update(temperature=sampling.temperature, top_p=sampling.top_p)
        else:
            payload.update(temperature=0.0)
        return payload

    def _post(self, payload: dict[str, Any]) -> str:
        data = json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last: str = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            self.n_requests += 1
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    body = json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as err:
                detail = err.read().decode("utf-8", "replace")[:300]
                last = f"HTTP {err.code} from {self.url}: {detail}"
                if err.code in _TRANSIENT:
                    continue
                if err.code in _ITEM_ERRORS:
                    logger.warning("%s; this request's text is left empty", last)
                    return ""
                raise ServerError(last) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError,
                    http.client.HTTPException) as err:
                last = f"cannot reach {self.url}: {getattr(err, 'reason', err)}"
                continue
            except json.JSONDecodeError as err:
                raise ServerError(f"{self.url} answered with invalid JSON: {err}") from None
            try:
                content = body["choices"][0]["message"]["content"]
            except (KeyError, IndexError, TypeError):
                raise ServerError(f"{self.url} answered without choices[0].message.content: "
                                  f"{str(body)[:300]}") from None
            return (content or "").strip()
        raise ServerError(f"{last} (gave up after {self.max_retries + 1} attempts)")

    def _run(self, payloads: Sequence[dict[str, Any]]) -> list[str]:
        if self.concurrency == 1 or len(payloads) == 1:
            return [self._post(p) for p in payloads]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._post, payloads))

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        """One chat completion per request, ``concurrency`` in flight, results in order.

        Each request gets its own seed, from its item id and seed, so sampled variants of
        different items differ and a rerun reproduces them.
        """
        return self._run([self._payload(r.prompt, r.variant, _item_seed(r)) for r in requests])

    def summarise_verdict(self, texts: Sequence[str]) -> list[str | None]:
        """Ask the served model which clip each comparison prefers (greedy, a few tokens)."""
        greedy = SamplingConfig("verdict", do_sample=False, max_new_tokens=4)
        answers = self._run([self._payload(build_verdict_prompt(t), greedy, 0) for t in texts])
        out: list[str | None] = []
        for answer in answers:
            match = _LETTER.search(answer)
            out.append(match.group(1) if match else None)
        return out

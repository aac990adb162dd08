"""One HTTP client for the MinT routes: timeouts, retries, futures, and what each failure means.

How every answer is handled (the single place this is written down):

- **Timeouts.** One ``httpx.Client`` per policy, with explicit ``connect`` / ``read`` /
  ``write`` / ``pool`` timeouts (:class:`Timeouts`). No call can wait longer than those.
- **Transient failures**, retried with bounded exponential backoff plus jitter
  (``backoff_s * 2**(n-1)``, capped at ``max_backoff_s``, times a random factor in
  [0.5, 1]): connection errors and timeouts (``httpx.TransportError``), any 5xx, and 429
  (back off; a ``Retry-After`` header, when sent, sets the delay instead). After
  ``max_retries`` retries the call raises :class:`~evalharness.errors.PolicyUnavailable`
  (error kind ``policy_unavailable``: nothing is known about the model, the episode can
  be rerun with ``runner.retry_errors=true``).
- **Futures.** Long operations are sent with ``Prefer: wait=N`` (RFC 7240, N = half the
  read timeout, at most 60 s). ``evalharness serve`` then answers with the result itself
  (``Preference-Applied: wait``) when it is ready in time, one round trip instead of two;
  MinT ignores the header. Any other answer is ``{"request_id"}``, and
  :meth:`MintClient.wait_future` polls ``retrieve_future``:
  - 408 and 503 mean pending: wait ``Retry-After`` seconds when the header is there
    (clamped to 0-30 s), else by the body's ``queue_state``: active 0.3 s,
    paused_capacity 1 s, paused_rate_limit 2 s, anything else 1 s. Pending answers do
    not use up retries; the whole wait is bounded by ``Timeouts.future``, after which the
    episode gets ``policy_unavailable``;
  - 200 with an ``error`` key (e.g. "Future expired") is a failure:
    :class:`~evalharness.errors.PolicyError` (error kind ``policy_error``), or the error
    kind its ``kind`` (or, from older servers, ``category``) names when ``evalharness
    serve`` reports a ``decode_error`` or ``invalid_action`` of the policy it serves. A future is retrieved once to completion
    and never asked again;
  - 200 whose body is not a JSON object is a :class:`PolicyError` too (the server broke
    the protocol; retrying a consumed future cannot help).
- **Other 4xx** (400, 401, 404, 413, 422) are not retried: the request or the key is
  wrong. They raise :class:`PolicyError` with the status and the server's ``detail``; a
  401 says to check the key without ever printing it. A 404 naming a *session* is
  different: the server no longer has it (``evalharness serve`` expires idle sessions
  after ``serve.session_ttl_s``, and a restarted server knows none), which says nothing
  about the model: :class:`~evalharness.errors.PolicyUnavailable`, so the episode can be
  rerun.
- **Session creation** retries 503 ("no capacity yet") like a transient failure, bounded
  by ``Timeouts.create`` (the first load of a model can take minutes on MinT).
- **Secrets.** The key goes only into the ``X-API-Key`` header of this client; no error
  message, log line or identity built here contains it.
- A retried ``act`` may run twice on the server (MinT has no idempotency key); the
  abandoned result is never used, but the session's random state advanced once more.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Annotated, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from evalharness.errors import DecodeError, InvalidActionError, PolicyError, PolicyUnavailable
from evalharness.transports.retry import RetrySettings

#: Seconds to wait for a pending future without Retry-After, by the body's queue_state.
QUEUE_STATE_DELAYS = {"active": 0.3, "paused_capacity": 1.0, "paused_rate_limit": 2.0}
DEFAULT_PENDING_DELAY = 1.0
MAX_RETRY_AFTER_S = 30.0
API = "/api/v1"
#: The content type of a body the client serializes itself.
_JSON = {"Content-Type": "application/json"}
#: A 200-with-error's ``category`` -> the error raised. ``evalharness serve`` names the
#: harness error kind of the policy's failure; MinT's own categories ("system", "user")
#: and anything else are policy errors.
ERROR_KINDS: dict[Any, type[Exception]] = {
    "decode_error": DecodeError, "invalid_action": InvalidActionError, "policy_unavailable": PolicyUnavailable,
}


Seconds = Annotated[float, Field(strict=True, gt=0)]
NonNegative = Annotated[float, Field(strict=True, ge=0)]


class Timeouts(BaseModel):
    """Seconds (``policy.timeouts``). ``future``: longest wait for one result; ``create``: for a
    session to be created."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connect: Seconds = 10.0
    read: Seconds = 120.0
    write: Seconds = 30.0
    pool: Seconds = 10.0
    future: Seconds = 1200.0
    create: Seconds = 600.0


class Retries(RetrySettings):
    """``policy.retries``: the transports' one backoff model (:mod:`evalharness.transports.retry`)
    with MinT's defaults: five retries, each wait times a random factor in [0.5, 1]."""

    max_retries: Annotated[int, Field(strict=True, ge=0, le=100)] = 5
    jitter: Annotated[float, Field(ge=0, lt=1)] = 0.5


class MintClient:
    """Talks to one MinT-protocol server; see the module docstring for what it retries."""

    def __init__(self, base_url: str, api_key: str | None, timeouts: Timeouts, retries: Retries,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["X-API-Key"] = api_key
        self.timeouts = timeouts
        self.retries = retries
        self._sleep = sleep
        self._jitter = random.Random()  # jitter never influences outcomes, only waits
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(connect=timeouts.connect, read=timeouts.read, write=timeouts.write, pool=timeouts.pool),
        )

    # ---------------------------------------------------------------- one call
    def call(self, method: str, path: str, body: BaseModel | dict | None = None, *, deadline: float | None = None,
             pending_ok: bool = False, headers: dict[str, str] | None = None) -> httpx.Response:
        """One request, retried on transient failures; returns the final response.

        ``pending_ok``: 408 / 503 are returned to the caller (a pending future), not retried.
        """
        # A model is written by pydantic's own serializer: a quarter of json.dumps' time on an act body.
        content = body.model_dump_json().encode() if isinstance(body, BaseModel) else None
        what = f"{method} {path}"
        failures = 0
        while True:
            retry_after: float | None = None
            try:
                if content is not None:
                    response = self._http.request(method, path, content=content, headers={**_JSON, **(headers or {})})
                else:
                    response = self._http.request(method, path, json=body, headers=headers)
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}" + (f" ({exc})" if str(exc) else "")
            else:
                status = response.status_code
                if pending_ok and status in (408, 503):
                    return response
                if status == 429 or status >= 500:
                    reason = f"HTTP {status}"
                    retry_after = _retry_after(response)
                else:
                    return response
            failures += 1
            if failures > self.retries.max_retries:
                raise PolicyUnavailable(f"{what}: {reason}; gave up after {failures} attempts")
            delay = retry_after if retry_after is not None else self._backoff(failures)
            if deadline is not None and time.monotonic() + delay > deadline:
                raise PolicyUnavailable(f"{what}: {reason}; no time left to retry within the timeout")
            self._sleep(delay)

    def _backoff(self, failures: int) -> float:
        return self.retries.delay(failures, self._jitter)

    # ---------------------------------------------------------------- JSON helpers
    def post_json(self, path: str, body: BaseModel | dict, *, deadline: float | None = None) -> dict[str, Any]:
        """POST and return the JSON object of a 2xx answer; other answers raise."""
        return _json_object(self.call("POST", path, body, deadline=deadline), f"POST {path}")

    def create(self, path: str, body: BaseModel | dict) -> dict[str, Any]:
        """POST a session creation; 503 (no capacity yet) is waited out until ``Timeouts.create``."""
        deadline = time.monotonic() + self.timeouts.create
        waits = 0
        while True:
            response = self.call("POST", path, body, deadline=deadline, pending_ok=True)
            if response.status_code not in (408, 503):
                return _json_object(response, f"POST {path}")
            waits += 1
            delay = _retry_after(response)
            delay = self._backoff(waits) if delay is None else delay
            if time.monotonic() + delay > deadline:
                raise PolicyUnavailable(f"POST {path}: no capacity (HTTP {response.status_code}) within "
                                        f"{self.timeouts.create:g} s")
            self._sleep(delay)

    def delete(self, path: str) -> int:
        """DELETE once, quickly (cleanup: never retried, never raises); returns the status or 0."""
        try:
            return self._http.request("DELETE", path, timeout=httpx.Timeout(min(self.timeouts.read, 5.0),
                                                                            connect=min(self.timeouts.connect, 2.0))).status_code
        except httpx.HTTPError:
            return 0

    # ---------------------------------------------------------------- futures
    def submit(self, path: str, body: BaseModel | dict) -> dict[str, Any]:
        """POST a long operation and wait for its result (``request_id`` -> ``retrieve_future``)."""
        deadline = time.monotonic() + self.timeouts.future
        wait = max(1, int(min(self.timeouts.read / 2, 60)))
        response = self.call("POST", path, body, deadline=deadline, headers={"Prefer": f"wait={wait}"})
        if "wait" in response.headers.get("preference-applied", "").lower():
            return _finished(response, f"POST {path}")  # the server answered with the result itself
        answer = _json_object(response, f"POST {path}")
        request_id = answer.get("request_id")
        if not isinstance(request_id, str):
            if "error" in answer:
                raise PolicyError(f"POST {path}: server reported an error: {_error_text(answer)}")
            raise PolicyError(f"POST {path}: answer has no request_id (keys: {sorted(answer)[:8]})")
        return self.wait_future(request_id, deadline)

    def wait_future(self, request_id: str, deadline: float) -> dict[str, Any]:
        """Poll ``retrieve_future`` until done, honouring Retry-After / queue_state; bounded by ``deadline``."""
        path = f"{API}/retrieve_future"
        while True:
            response = self.call("POST", path, {"request_id": request_id}, deadline=deadline, pending_ok=True)
            if response.status_code in (408, 503):
                delay = _retry_after(response)
                if delay is None:
                    delay = _queue_state_delay(response)
                left = deadline - time.monotonic()
                if left <= 0 or delay > left:
                    raise PolicyUnavailable(f"result not ready within {self.timeouts.future:g} s "
                                            f"(HTTP {response.status_code} pending)")
                self._sleep(delay)
                continue
            return _finished(response, f"POST {path}")

    def close(self) -> None:
        self._http.close()


def _finished(response: httpx.Response, what: str) -> dict[str, Any]:
    """A future's final answer: its result, or the error it names raised as its kind."""
    result = _json_object(response, what)
    if "error" in result:
        error = ERROR_KINDS.get(result.get("kind", result.get("category")), PolicyError)
        raise error(f"the server failed the request: {_error_text(result)}")
    return result


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(value)))
    except ValueError:
        return None


def _queue_state_delay(response: httpx.Response) -> float:
    try:
        state = response.json().get("queue_state")
    except (ValueError, AttributeError):
        state = None
    return QUEUE_STATE_DELAYS.get(state, DEFAULT_PENDING_DELAY)


def _error_text(body: dict[str, Any]) -> str:
    text = str(body.get("error"))[:300]
    category = body.get("category")
    return f"{text} (category {category})" if category else text


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    """The answer's JSON object for a 2xx; PolicyError for anything else."""
    status = response.status_code
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        body = None
        if 200 <= status < 300:
            raise PolicyError(f"{what}: the server answered malformed JSON ({response.text[:80]!r})") from None
    if 200 <= status < 300:
        if not isinstance(body, dict):
            raise PolicyError(f"{what}: the server answered {type(body).__name__}, not a JSON object")
        return body
    detail = body.get("detail", body.get("error")) if isinstance(body, dict) else response.text
    detail_text = json.dumps(detail)[:300] if not isinstance(detail, str) else detail[:300]
    if status == 401:
        raise PolicyError(f"{what}: HTTP 401: the server refused the API key (set MINT_API_KEY or TINKER_API_KEY)")
    if status == 404 and "session" in detail_text.lower():
        raise PolicyUnavailable(f"{what}: HTTP 404: {detail_text} (the server no longer has this session: it expired "
                                "or the server restarted; rerun the episode)")
    raise PolicyError(f"{what}: HTTP {status}: {detail_text}")

# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-client-IP fixed-window rate limiting.

Counters live in Redis rather than in process memory: gunicorn runs several
workers and the deployment runs several replicas, so an in-process counter
would let a client make (workers x replicas x limit) requests per minute and
would make the 429 boundary depend on which worker the kernel picked - useless
for a test that expects exactly RATE_LIMIT_PER_MINUTE requests to pass.

When Redis is unreachable the limiter fails open: an outage of a protective
side-system must not become an outage of the whole service (/health still
reports Redis as down).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

KEY_PREFIX = "refapp:ratelimit:"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int = 0  # seconds until the current window ends


class RedisRateLimiter:
    def __init__(
        self,
        client: Any,
        limit_per_minute: int,
        *,
        window_s: int = 60,
        backoff_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.limit = limit_per_minute
        self.window_s = window_s
        self.backoff_s = backoff_s
        self.clock = clock
        self._skip_until = 0.0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def hit(self, client_id: str) -> Decision:
        if not self.enabled:
            return Decision(True)
        now = self.clock()
        # After a failure, skip Redis for a while so that a blackholed Redis
        # adds its timeout to one request per backoff period, not to all.
        if now < self._skip_until:
            return Decision(True)
        window = int(now // self.window_s)
        key = f"{KEY_PREFIX}{client_id}:{window}"
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.incr(key)
            # Twice the window so a skewed clock on another replica still
            # finds the key; the window index in the key bounds its meaning.
            pipe.expire(key, self.window_s * 2)
            count = int(pipe.execute()[0])
        except Exception as exc:
            with self._lock:
                self._skip_until = now + self.backoff_s
            log.warning("rate limiter: redis unavailable (%s), failing open", type(exc).__name__)
            return Decision(True)
        if count <= self.limit:
            return Decision(True)
        retry_after = max(1, math.ceil((window + 1) * self.window_s - now))
        return Decision(False, retry_after)

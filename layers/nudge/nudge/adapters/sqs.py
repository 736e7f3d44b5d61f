"""The plan -> send hand-off on SQS, behind ``nudge.services.ports.SendQueue``."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from nudge.adapters.dynamo_io import backoff
from nudge.services.ports import DalError, SendRequest

log = logging.getLogger(__name__)

SQS_BATCH_LIMIT = 10  # SQS SendMessageBatch: at most 10 entries
MAX_DELAY_SECONDS = 900  # SQS DelaySeconds: at most 15 minutes


class EnqueueError(DalError):
    """Some send requests were not accepted by SQS; ``order_ids`` names them."""

    def __init__(self, message: str, order_ids: Sequence[str]):
        super().__init__(f"{message}: {', '.join(order_ids)}")
        self.order_ids = list(order_ids)


class SqsSendQueue:
    """The plan -> send hand-off: one SQS message per SendRequest, sent in batches of 10."""

    def __init__(
        self,
        client: Any,
        queue_url: str,
        *,
        max_retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._client = client
        self._url = queue_url
        self._max_retries = max_retries
        self._sleep = sleep

    @staticmethod
    def body(request: SendRequest) -> str:
        return json.dumps(request.to_json(), ensure_ascii=False, separators=(",", ":"))

    def enqueue(self, requests: Sequence[SendRequest], *, delay_seconds: int = 0) -> int:
        """Send every request; entries SQS rejects are retried (bounded) and then reported together.

        ``delay_seconds`` (0-900) keeps the messages invisible that long (a window not open yet).

        Raises EnqueueError naming the orders that were not queued, after all others were.
        """
        delay = min(max(int(delay_seconds), 0), MAX_DELAY_SECONDS)
        sent = 0
        lost: list[str] = []
        for offset in range(0, len(requests), SQS_BATCH_LIMIT):
            entries = {
                str(offset + i): self.body(r)
                for i, r in enumerate(requests[offset : offset + SQS_BATCH_LIMIT])
            }
            for attempt in range(self._max_retries + 1):
                resp = self._client.send_message_batch(
                    QueueUrl=self._url,
                    Entries=[
                        {"Id": k, "MessageBody": v, **({"DelaySeconds": delay} if delay else {})}
                        for k, v in entries.items()
                    ],
                )
                sent += len(resp.get("Successful", []))
                failed = resp.get("Failed", [])
                # SenderFault: the message itself is wrong (e.g. too large); retrying cannot help.
                for f in failed:
                    if f.get("SenderFault"):
                        lost.append(requests[int(f["Id"])].order_id)
                        log.error(
                            "SQS refused send request %s: %s",
                            requests[int(f["Id"])].dedupe_key,
                            f.get("Code"),
                        )
                entries = {f["Id"]: entries[f["Id"]] for f in failed if not f.get("SenderFault")}
                if not entries:
                    break
                if attempt == self._max_retries:
                    lost.extend(requests[int(k)].order_id for k in entries)
                    break
                self._sleep(backoff(attempt))
        if lost:
            raise EnqueueError(f"{len(lost)} of {len(requests)} send requests were not queued", lost)
        return sent

"""What a handler reads from Lambda's context object, and API Gateway's time limit."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

#: API Gateway's integration timeout; handlers see it through get_remaining_time_in_millis().
TIMEOUT_SECONDS = 29


@dataclass
class LocalLambdaContext:
    """What a handler reads from Lambda's context object (Powertools' Logger reads the first four)."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    deadline: float = field(default_factory=lambda: time.monotonic() + TIMEOUT_SECONDS)

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))

    @classmethod
    def for_function(cls, function_name: str, memory_mb: int, request_id: str, seconds: float) -> LocalLambdaContext:
        """The context of one invocation of ``function_name`` that may run ``seconds`` from now."""
        return cls(
            function_name=function_name,
            memory_limit_in_mb=memory_mb,
            invoked_function_arn=f"arn:aws:lambda:local:000000000000:function:{function_name}",
            aws_request_id=request_id,
            deadline=time.monotonic() + seconds,
        )

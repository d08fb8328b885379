"""The usage-key port on AWS: API keys in API Gateway's usage plan (CreateApiKey +
CreateUsagePlanKey), made by ``kestrel token create`` with the operator's credentials."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from kestrel.adapters.aws_clients import LazyClient
from kestrel.domain.errors import NotFound
from kestrel.ports.usage import UsageKey

#: API Gateway's tag on each key: whose it is (the key's name says it too).
OWNER_TAG = "kestrel:owner"


class ApiGatewayUsageKeys(LazyClient):
    service = "apigateway"

    def __init__(self, usage_plan_id: str, client: Any = None) -> None:
        self.usage_plan_id = usage_plan_id
        self._given = client

    def create_key(self, owner_id: str) -> UsageKey:
        self._check_plan()
        # API Gateway generates the value (40 characters); it is an identifier, never a secret a
        # client holds: with the AUTHORIZER key source, an X-API-Key header is not read.
        key = self._client.create_api_key(
            name=f"kestrel-{owner_id}",
            description=f"Kestrel owner {owner_id}: meters their requests in usage plan {self.usage_plan_id}",
            enabled=True,
            tags={OWNER_TAG: owner_id},
        )
        try:
            self._client.create_usage_plan_key(usagePlanId=self.usage_plan_id, keyId=key["id"], keyType="API_KEY")
        except BaseException:
            # A key outside the plan would be refused by every request: do not leave one behind.
            self.delete_key(key["id"])
            raise
        return UsageKey(key_id=str(key["id"]), value=str(key["value"]))

    def _check_plan(self) -> None:
        """Refuse before creating anything when the plan is not there (a wrong id or region)."""
        try:
            self._client.get_usage_plan(usagePlanId=self.usage_plan_id)
        except ClientError as error:
            if error.response["Error"]["Code"] != "NotFoundException":
                raise
            raise NotFound(
                f"usage plan {self.usage_plan_id} does not exist in this account and region; set "
                "KESTREL_USAGE_PLAN_ID to the stack output UsagePlanId and AWS_REGION to the output Region"
            ) from None

    def delete_key(self, key_id: str) -> None:
        try:
            self._client.delete_api_key(apiKey=key_id)
        except ClientError as error:
            if error.response["Error"]["Code"] != "NotFoundException":
                raise

"""One uniform calling surface over each official Python SDK flavour, so the
same scenario runs through every wire shape:

* ``tea-v3``: alibabacloud-vpc20160428 typed client, default ACS3-HMAC-SHA256;
* ``tea-v2``: the same client with ``Config(signature_algorithm='v2')`` (V1 RPC);
* ``core-typed``: aliyun-python-sdk-core + aliyun-python-sdk-vpc request classes (V1);
* ``core-common``: aliyun-python-sdk-core ``CommonRequest`` (V1).

Parameters and results use the API's wire names (``BgpGroupId``,
``BgpPeers.BgpPeer[]``...). Each flavour goes through the SDK's typed
request/response models where it has them, so the SDK's own parsing runs too.
Errors come back as :class:`ApiError` whatever the SDK's exception type.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import re
from datetime import datetime, timezone
from typing import Any, Iterator

from alibabacloud_tea_openapi import exceptions as tea_exceptions
from alibabacloud_tea_openapi.models import Config
from alibabacloud_vpc20160428 import models as vpc_models
from alibabacloud_vpc20160428.client import Client as VpcClient
from aliyunsdkcore.acs_exception.exceptions import ServerException as CoreServerException
from aliyunsdkcore.auth.credentials import StsTokenCredential
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest
from aliyunsdkcore.utils import parameter_helper as core_parameter_helper
from darabonba.runtime import ExtendsParameters, RuntimeOptions

VPC_VERSION = "2016-04-28"


class ApiError(Exception):
    """An error answer from the API, as the SDK surfaced it."""

    def __init__(self, flavour: str, code: str, status: int | None, message: str, request_id: str | None):
        super().__init__(f"[{flavour}] HTTP {status} {code}: {message} (RequestId {request_id})")
        self.flavour = flavour
        self.code = code
        self.status = status
        self.message = message
        self.request_id = request_id


def snake(action: str) -> str:
    """``CreateBgpPeer`` -> ``create_bgp_peer``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()


def acs_timestamp(when: datetime) -> str:
    """UTC ``yyyy-MM-ddTHH:mm:ssZ`` as every SDK writes it."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Flavour:
    """Base: ``call(action, params)`` returns the response body as a dict."""

    name = "abstract"
    #: Signature scheme on the wire, for test ids and messages.
    signature = "?"

    def call(self, action: str, params: dict[str, Any], timestamp: datetime | None = None) -> dict[str, Any]:
        """Runs ``action``; ``timestamp`` overrides the signed request time."""
        raise NotImplementedError


class TeaFlavour(Flavour):
    """alibabacloud-vpc20160428 (Tea/Darabonba generation)."""

    def __init__(self, hostport: str, key_id: str, secret: str, region: str, v2: bool, security_token: str | None):
        self.name = "tea-v2" if v2 else "tea-v3"
        self.signature = "V1 HMAC-SHA1 (query)" if v2 else "V3 ACS3-HMAC-SHA256"
        self._v2 = v2
        self.client = VpcClient(
            Config(
                access_key_id=key_id,
                access_key_secret=secret,
                security_token=security_token,
                endpoint=hostport,
                protocol="http",
                region_id=region,
                signature_algorithm="v2" if v2 else None,
                read_timeout=10000,
                connect_timeout=5000,
            )
        )

    def call(self, action, params, timestamp=None):
        request = getattr(vpc_models, f"{action}Request")().from_map(params)
        runtime = RuntimeOptions()
        if timestamp is not None:
            ts = acs_timestamp(timestamp)
            runtime.extends_parameters = (
                ExtendsParameters(queries={"Timestamp": ts}) if self._v2 else ExtendsParameters(headers={"x-acs-date": ts})
            )
        method = getattr(self.client, f"{snake(action)}_with_options")
        try:
            response = method(request, runtime)
        except tea_exceptions.AlibabaCloudException as e:
            raise ApiError(self.name, e.code, e.status_code, e.message, e.request_id) from e
        assert response.status_code == 200, f"{self.name}: HTTP {response.status_code} without an exception"
        return response.body.to_map()


class CoreFlavour(Flavour):
    """aliyun-python-sdk-core 2.16.1 (+ aliyun-python-sdk-vpc request classes)."""

    def __init__(
        self, hostport: str, key_id: str, secret: str, region: str, typed: bool, security_token: str | None
    ):
        self.name = "core-typed" if typed else "core-common"
        self.signature = "V1 HMAC-SHA1 (query, Format=JSON, SignatureType=)"
        self._typed = typed
        self._hostport = hostport
        if security_token is None:
            self.client = AcsClient(key_id, secret, region, timeout=10, connect_timeout=5)
        else:
            credential = StsTokenCredential(key_id, secret, security_token)
            self.client = AcsClient(region_id=region, credential=credential, timeout=10, connect_timeout=5)

    def _request(self, action: str, params: dict[str, Any]):
        if self._typed:
            module = importlib.import_module(f"aliyunsdkvpc.request.v20160428.{action}Request")
            request = getattr(module, f"{action}Request")()
            for key, value in params.items():
                setter = getattr(request, f"set_{key}", None)
                if setter is None:
                    request.add_query_param(key, value)
                else:
                    setter(value)
        else:
            request = CommonRequest(domain=self._hostport, version=VPC_VERSION, action_name=action)
            request.set_method("POST")
            for key, value in params.items():
                request.add_query_param(key, value)
        request.set_endpoint(self._hostport)
        request.set_protocol_type("http")
        request.set_accept_format("JSON")
        return request

    def call(self, action, params, timestamp=None):
        request = self._request(action, params)
        with self._timestamp(timestamp):
            try:
                raw = self.client.do_action_with_exception(request)
            except CoreServerException as e:
                raise ApiError(
                    self.name, e.get_error_code(), e.get_http_status(), e.get_error_msg(), e.get_request_id()
                ) from e
        return json.loads(raw)

    @staticmethod
    @contextlib.contextmanager
    def _timestamp(timestamp: datetime | None) -> Iterator[None]:
        """The core SDK always stamps ``Timestamp`` itself when signing
        (``rpc_signature_composer.__refresh_sign_parameters``), so a stale
        time needs its clock helper patched for the duration of the call."""
        if timestamp is None:
            yield
            return
        original = core_parameter_helper.get_iso_8061_date
        core_parameter_helper.get_iso_8061_date = lambda: acs_timestamp(timestamp)
        try:
            yield
        finally:
            core_parameter_helper.get_iso_8061_date = original


FLAVOURS = ("tea-v3", "tea-v2", "core-typed", "core-common")


def make_flavour(
    name: str, hostport: str, key_id: str, secret: str, region: str, security_token: str | None = None
) -> Flavour:
    """Builds the named flavour aimed at ``hostport`` (``127.0.0.1:PORT``), optionally
    with STS credentials (``security_token``)."""
    if name in ("tea-v3", "tea-v2"):
        return TeaFlavour(hostport, key_id, secret, region, v2=name == "tea-v2", security_token=security_token)
    if name in ("core-typed", "core-common"):
        return CoreFlavour(hostport, key_id, secret, region, typed=name == "core-typed", security_token=security_token)
    raise ValueError(f"unknown flavour {name}")

"""The wizard's view of the cloud: the only ecm module importing boto3.

Check that the credentials and the endpoint work, list the available images, look one image,
key pair or flavour up, and stage a file in the object store (S3 API) behind a presigned URL.  Every boto3/botocore failure becomes a :class:`CloudError` whose message
says what to check; messages never contain the secret key.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import List, Mapping, Optional, Tuple
from urllib.parse import urlparse

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import (BotoCoreError, ClientError, ConnectTimeoutError,
                                 EndpointConnectionError, NoCredentialsError,
                                 PartialCredentialsError, ReadTimeoutError, SSLError)
from botocore.parsers import ResponseParserError

#: On AWS, DescribeImages without owners lists every public image; ask only for ours and those
#: of the publishers of the supported systems (Canonical, Debian, AlmaLinux, Rocky Linux).
AWS_IMAGE_OWNERS = ("self", "099720109477", "136693071363", "764336703387", "792107900819")
IMAGE_ID = re.compile(r"(ami|aki|ari)-[0-9a-fA-F]{8,17}")
AUTH_CODES = {"AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "InvalidAccessKeyId",
              "IncompleteSignature", "MissingAuthenticationToken", "UnrecognizedClientException",
              "UnauthorizedOperation", "AccessDenied", "ExpiredToken", "RequestExpired"}
DEFAULT_REGION = "us-east-1"


class CloudError(Exception):
    """``kind``: "credentials", "endpoint" or "cloud" (the cloud answered with an error)."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Endpoint:
    url: Optional[str]
    region: Optional[str]
    access_key: Optional[str]
    secret_key: Optional[str]
    ca_bundle: Optional[str] = None
    #: Object store (S3 API) for staging the elastiq wheel: ec2rc.sh's S3_URL; None on AWS.
    s3_url: Optional[str] = None

    @property
    def is_aws(self) -> bool:
        return not self.url or (urlparse(self.url).hostname or "").endswith("amazonaws.com")

    @property
    def shown(self) -> str:
        return self.url or f"AWS ({self.region or DEFAULT_REGION})"


def endpoint_from_environment(environ: Mapping[str, str] = os.environ,
                              region: Optional[str] = None,
                              ca_bundle: Optional[str] = None) -> Endpoint:
    """ec2rc.sh's ``EC2_ACCESS_KEY``/``EC2_SECRET_KEY``/``EC2_URL``; when they are not set the
    keys stay None and boto3 finds credentials in its usual places (AWS_* variables, profiles,
    instance role)."""
    return Endpoint(
        url=environ.get("EC2_URL") or None,
        region=region or environ.get("EC2_REGION") or environ.get("AWS_REGION")
        or environ.get("AWS_DEFAULT_REGION") or None,
        access_key=environ.get("EC2_ACCESS_KEY") or None,
        secret_key=environ.get("EC2_SECRET_KEY") or None,
        ca_bundle=ca_bundle,
        s3_url=environ.get("S3_URL") or None,
    )


@dataclass(frozen=True)
class Image:
    image_id: str
    name: str
    created: str = ""


class Cloud:
    def __init__(self, endpoint: Endpoint, timeout_s: float = 15):
        self.endpoint = endpoint
        self._session = boto3.session.Session(
            aws_access_key_id=endpoint.access_key, aws_secret_access_key=endpoint.secret_key,
            region_name=endpoint.region or DEFAULT_REGION)
        try:
            self._ec2 = self._session.client(
                "ec2", endpoint_url=endpoint.url, verify=endpoint.ca_bundle or True,
                config=BotoConfig(connect_timeout=timeout_s, read_timeout=2 * timeout_s,
                                  retries={"max_attempts": 2, "mode": "standard"}))
        except ValueError as err:  # botocore: "Invalid endpoint: ..."
            raise CloudError(f"EC2_URL is not a usable endpoint ({err})", "endpoint") from None
        except PartialCredentialsError:
            raise CloudError("only one of EC2_ACCESS_KEY and EC2_SECRET_KEY is set", "credentials") \
                from None

    def check(self) -> None:
        """One cheap authenticated call: raises :class:`CloudError` saying what to fix."""
        answer = self._call("DescribeAvailabilityZones", self._ec2.describe_availability_zones)
        if "AvailabilityZones" not in answer:  # XML, but not EC2's (a web server's page)
            raise CloudError(_NOT_EC2.format(where=self.endpoint.shown,
                                             action="DescribeAvailabilityZones"), "endpoint")

    def list_images(self) -> List[Image]:
        """Available images, newest first."""
        kwargs = {"Filters": [{"Name": "state", "Values": ["available"]}]}
        if self.endpoint.is_aws:
            kwargs["Owners"] = list(AWS_IMAGE_OWNERS)
        images: List[Image] = []
        while True:
            page = self._call("DescribeImages", self._ec2.describe_images, **kwargs)
            images.extend(_image(item) for item in page.get("Images", []))
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        images.sort(key=lambda image: (image.created, image.name), reverse=True)
        return images

    def find_image(self, image_id: str) -> Optional[Image]:
        """The image with this id if the cloud has it and it is available, else None."""
        if not IMAGE_ID.fullmatch(image_id):
            return None
        try:
            page = self._call("DescribeImages", self._ec2.describe_images, ImageIds=[image_id])
        except CloudError as err:
            if err.kind == "cloud" and "InvalidAMIID" in str(err):
                return None
            raise
        for item in page.get("Images", []):
            if item.get("ImageId") == image_id and item.get("State", "available") == "available":
                return _image(item)
        return None

    def static_credentials(self) -> Tuple[str, str]:
        """The access and secret key in use, for embedding; temporary ones cannot be embedded."""
        creds = self._session.get_credentials()
        if creds is None:
            raise CloudError(_NO_CREDENTIALS, "credentials")
        frozen = creds.get_frozen_credentials()
        if frozen.token:
            raise CloudError("these are temporary credentials (session token): they cannot be "
                             "embedded in the master; use an instance role instead", "credentials")
        return frozen.access_key, frozen.secret_key

    def has_key_pair(self, name: str) -> bool:
        """Whether the cloud has the key pair ``name`` (as DescribeKeyPairs lists it)."""
        try:
            page = self._call("DescribeKeyPairs", self._ec2.describe_key_pairs, KeyNames=[name])
        except CloudError as err:
            if err.kind == "cloud" and "InvalidKeyPair" in str(err):
                return False
            raise
        return any(k.get("KeyName") == name for k in page.get("KeyPairs", []))

    def has_flavour(self, name: str) -> Optional[bool]:
        """Whether the cloud offers the instance type ``name``; None when it cannot say (an
        EC2-compatible API without DescribeInstanceTypes)."""
        try:
            page = self._call("DescribeInstanceTypes", self._ec2.describe_instance_types,
                              InstanceTypes=[name])
        except CloudError as err:
            if err.kind == "cloud" and "InvalidInstanceType" in str(err):
                return False
            if err.kind == "cloud" and any(code in str(err) for code in _UNSUPPORTED):
                return None
            raise
        return any(t.get("InstanceType") == name for t in page.get("InstanceTypes", []))

    def stage_file(self, path: str, bucket: str, key: str, expires_s: int) -> str:
        """Upload ``path`` to a private object of the object store (creating the bucket) and
        return a presigned GET URL valid ``expires_s``."""
        if not self.endpoint.is_aws and not self.endpoint.s3_url:
            raise CloudError(f"no object store for {self.endpoint.shown}: set S3_URL (ec2rc.sh "
                             "sets it on OpenStack) to stage elastiq, or pass --elastiq-source",
                             "endpoint")
        s3 = self._session.client(
            "s3", endpoint_url=self.endpoint.s3_url, verify=self.endpoint.ca_bundle or True,
            config=BotoConfig(signature_version="s3v4", s3={"addressing_style": "path"},
                              retries={"max_attempts": 2, "mode": "standard"}))
        try:
            self._call("HeadBucket", s3.head_bucket, Bucket=bucket)
        except CloudError as err:
            if err.kind != "cloud":
                raise
            region = self.endpoint.region or DEFAULT_REGION
            where = {} if region == DEFAULT_REGION else {
                "CreateBucketConfiguration": {"LocationConstraint": region}}
            self._call("CreateBucket", s3.create_bucket, Bucket=bucket, **where)
        with open(path, "rb") as body:
            self._call("PutObject", s3.put_object, Bucket=bucket, Key=key, Body=body)
        return s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                         ExpiresIn=expires_s)

    def _call(self, action: str, method, **kwargs):
        where = self.endpoint.shown
        try:
            return method(**kwargs)
        except (NoCredentialsError, PartialCredentialsError):
            raise CloudError(_NO_CREDENTIALS, "credentials") from None
        except SSLError:
            raise CloudError(f"TLS verification failed for {where}: if the endpoint uses a "
                             "private CA, pass --ca-bundle FILE", "endpoint") from None
        except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError) as err:
            raise CloudError(f"cannot reach the EC2 endpoint {where} ({type(err).__name__}): "
                             "check EC2_URL and the network", "endpoint") from None
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "Unknown")
            if code in AUTH_CODES:
                raise CloudError(f"{where} refused the credentials for {action} ({code}): check "
                                 "EC2_ACCESS_KEY and EC2_SECRET_KEY (source your ec2rc.sh)",
                                 "credentials") from None
            raise CloudError(f"{where} answered {code} to {action}", "cloud") from None
        except ResponseParserError:
            raise CloudError(_NOT_EC2.format(where=where, action=action), "endpoint") from None
        except BotoCoreError as err:
            raise CloudError(f"{action} on {where} failed: {type(err).__name__}", "endpoint") \
                from None


def _image(item: dict) -> Image:
    """An image of a DescribeImages answer; one without a name is shown by its description."""
    return Image(item["ImageId"], item.get("Name") or item.get("Description") or "",
                 item.get("CreationDate") or "")


_UNSUPPORTED = ("InvalidAction", "UnsupportedOperation", "NotImplemented", "InvalidRequest")
_NO_CREDENTIALS = ("no cloud credentials: source your ec2rc.sh (EC2_ACCESS_KEY, EC2_SECRET_KEY, "
                   "EC2_URL) or set boto3's AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile")
_NOT_EC2 = ("{where} did not answer {action} as an EC2 API does: is EC2_URL the EC2 endpoint "
            "of the cloud, not another web server?")

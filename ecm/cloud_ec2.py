"""ecm on an EC2 API (AWS, OpenStack's EC2 API, ...): through elastiq's EC2 adapter.

The EC2 client is the adapter's (:func:`elastiq.adapters.ec2_client.make_client`: the same keys,
endpoint, CA bundle and retries as the daemon's) and every SDK exception becomes a domain error
through the adapter's translation (:func:`elastiq.adapters.ec2_translate.error_from_exception`),
worded here for ecm's user: which flag, which ec2rc.sh variable.  boto3 itself is used only for
what the adapter never does: the object store (S3 API) the elastiq wheel is staged in, and the
keys of boto3's own chain when they are embedded.
"""
from __future__ import annotations

import re
from typing import List, Mapping, Optional, Tuple
from urllib.parse import urlparse

from elastiq.adapters.base import AdapterError, AuthError, ConfigError, TransientError
from elastiq.adapters.ec2_client import make_client
from elastiq.adapters.ec2_request import access_settings
from elastiq.adapters.ec2_translate import error_code, error_from_exception, not_implemented
from elastiq.adapters.ec2_config import Settings as EC2Section

from .clouds import Endpoint, Image

#: On AWS, DescribeImages without owners lists every public image; ask only for ours and those
#: of the publishers of the supported systems (Canonical, Debian, AlmaLinux, Rocky Linux).
AWS_IMAGE_OWNERS = ("self", "099720109477", "136693071363", "764336703387", "792107900819")
IMAGE_ID = re.compile(r"(ami|aki|ari)-[0-9a-fA-F]{8,17}")
DEFAULT_REGION = "us-east-1"
#: The adapter's settings as ecm's user gives them.
SETTINGS = {"ec2.api_url": "EC2_URL", "ec2.region": "--region", "ec2.ca_bundle": "--ca-bundle",
            "ec2.image_id": "--image", "ec2.key_name": "KEY_NAME", "ec2.flavour": "FLAVOR_VMS",
            "ec2.aws_access_key_id": "EC2_ACCESS_KEY",
            "ec2.aws_secret_access_key": "EC2_SECRET_KEY"}
HINTS = {AuthError: "ecm takes the keys for {where} from EC2_ACCESS_KEY and EC2_SECRET_KEY: "
                    "source your ec2rc.sh",
         TransientError: "ecm asks the EC2 endpoint in EC2_URL"}
UNKNOWN = object()
_NOT_EC2 = ("{where} did not answer {action} as an EC2 API does: is EC2_URL the EC2 endpoint "
            "of the cloud, not another web server?")


def connect(region: Optional[str], ca_bundle: Optional[str], environ: Mapping[str, str]):
    """ec2rc.sh's ``EC2_ACCESS_KEY``/``EC2_SECRET_KEY``/``EC2_URL`` (and ``S3_URL``); without
    keys, boto3 finds credentials in its usual places (AWS_* variables, profiles, role)."""
    region = (region or environ.get("EC2_REGION") or environ.get("AWS_REGION")
              or environ.get("AWS_DEFAULT_REGION") or None)
    return EC2WizardCloud(region, ca_bundle, environ)


class EC2WizardCloud:
    """:class:`ecm.clouds.WizardCloud` on EC2."""

    def __init__(self, region: Optional[str], ca_bundle: Optional[str],
                 environ: Mapping[str, str], timeout_s: float = 15):
        """``region`` None: the endpoint's own (us-east-1 for signing), as before ecm wrote it."""
        section = EC2Section(region=region or DEFAULT_REGION, ca_bundle=ca_bundle)
        self._section = section
        try:
            self._key, self._secret, url = access_settings(section, environ)
            self._ec2, self._secrets = make_client(section, environ, 3, timeout_s, 2 * timeout_s)
        except ConfigError as err:
            raise self._in_ecm_words(err) from None
        is_aws = not url or (urlparse(url).hostname or "").endswith("amazonaws.com")
        self.endpoint = Endpoint(url, region, self._key,
                                 url or f"AWS ({section.region})", is_aws,
                                 environ.get("S3_URL") or None)

    def check(self) -> None:
        answer = self._call("DescribeAvailabilityZones", self._ec2.describe_availability_zones)
        if "AvailabilityZones" not in answer:  # XML, but not EC2's (a web server's page)
            raise TransientError(_NOT_EC2.format(where=self.endpoint.shown,
                                                 action="DescribeAvailabilityZones"))

    def list_images(self) -> List[Image]:
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

    def image_id_problem(self, text: str) -> Optional[str]:
        if IMAGE_ID.fullmatch(text):
            return None
        return "an image id looks like ami-0123abcd (ami- and 8 to 17 hex digits)"

    def find_image(self, image_id: str) -> Optional[Image]:
        if self.image_id_problem(image_id):
            return None
        page = self._call("DescribeImages", self._ec2.describe_images, absent="ec2.image_id",
                          ImageIds=[image_id])
        for item in (page or {}).get("Images", []):
            if item.get("ImageId") == image_id and item.get("State", "available") == "available":
                return _image(item)
        return None

    def has_key_pair(self, name: str) -> bool:
        page = self._call("DescribeKeyPairs", self._ec2.describe_key_pairs,
                          absent="ec2.key_name", KeyNames=[name])
        return any(k.get("KeyName") == name for k in (page or {}).get("KeyPairs", []))

    def has_flavour(self, name: str) -> Optional[bool]:
        page = self._call("DescribeInstanceTypes", self._ec2.describe_instance_types,
                          absent="ec2.flavour", unsupported=UNKNOWN, InstanceTypes=[name])
        if page is UNKNOWN:  # an EC2-compatible API without DescribeInstanceTypes
            return None
        return any(t.get("InstanceType") == name for t in (page or {}).get("InstanceTypes", []))

    def static_credentials(self) -> Tuple[str, str]:
        if self._key and self._secret:
            return self._key, self._secret
        creds = self._session().get_credentials()
        if creds is None:
            raise AuthError("no cloud credentials to embed: " +
                            HINTS[AuthError].format(where=self.endpoint.shown))
        frozen = creds.get_frozen_credentials()
        if frozen.token:
            raise AuthError("these are temporary credentials (session token): they cannot be "
                            "embedded in the master; use an instance role instead")
        return frozen.access_key, frozen.secret_key

    def stage_file(self, path: str, bucket: str, key: str, expires_s: int) -> str:
        if not self.endpoint.is_aws and not self.endpoint.s3_url:
            raise ConfigError(f"no object store for {self.endpoint.shown}: set S3_URL (ec2rc.sh "
                              "sets it on OpenStack) to stage elastiq, or pass --elastiq-source")
        from botocore.config import Config as BotoConfig
        s3 = self._session().client(
            "s3", endpoint_url=self.endpoint.s3_url, verify=self._section.ca_bundle or None,
            config=BotoConfig(signature_version="s3v4", s3={"addressing_style": "path"},
                              retries={"mode": "standard", "total_max_attempts": 3}))
        if self._call("HeadBucket", s3.head_bucket, absent="bucket", Bucket=bucket) is None:
            region = self._section.region
            where = {} if region == DEFAULT_REGION else {
                "CreateBucketConfiguration": {"LocationConstraint": region}}
            self._call("CreateBucket", s3.create_bucket, Bucket=bucket, **where)
        with open(path, "rb") as body:
            self._call("PutObject", s3.put_object, Bucket=bucket, Key=key, Body=body)
        return s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                         ExpiresIn=expires_s)

    # ------------------------------------------------------------------------- helpers

    def _session(self):
        import boto3
        return boto3.session.Session(aws_access_key_id=self._key,
                                     aws_secret_access_key=self._secret,
                                     region_name=self._section.region)

    def _call(self, action: str, method, absent: Optional[str] = None,
              unsupported: object = None, **kwargs):
        """``method(**kwargs)``; None when the cloud says the thing asked for does not exist
        (the setting ``absent``: an image, key pair or flavour, or the bucket), ``unsupported``
        (when given) when the cloud does not implement ``action``; every other failure raised
        as a domain error in ecm's words."""
        try:
            return method(**kwargs)
        except Exception as sdk_error:  # noqa: BLE001 (the boundary: translated)
            if unsupported is not None and not_implemented(sdk_error):
                return unsupported
            err = error_from_exception(sdk_error, action, f"the EC2 endpoint {self.endpoint.shown}",
                                       self._secrets)
            if absent is not None and (getattr(err, "key", None) == absent or (
                    absent == "bucket" and error_code(sdk_error)[1] == 404)):
                return None
            raise self._in_ecm_words(err) from None

    def _in_ecm_words(self, err: AdapterError) -> AdapterError:
        key = getattr(err, "key", None)
        if key in SETTINGS:
            return ConfigError(f"{SETTINGS[key]}: {err}", key=key)
        hint = next((text for kind, text in HINTS.items() if isinstance(err, kind)), None)
        return type(err)(f"{err} ({hint.format(where=self.endpoint.shown)})") if hint else err


def _image(item: dict) -> Image:
    """An image of a DescribeImages answer; one without a name is shown by its description."""
    return Image(item["ImageId"], item.get("Name") or item.get("Description") or "",
                 item.get("CreationDate") or "")

"""ecm on an EC2 API (AWS, OpenStack's EC2 API, ...): through elastiq's EC2 adapter.

The EC2 client is the adapter's (:func:`elastiq.adapters.ec2.client.make_client`: the same keys,
endpoint, CA bundle and retries as the daemon's) and every SDK exception becomes a domain error
through the adapter's translation (:func:`elastiq.adapters.ec2.translate.error_from_exception`),
worded here for ecm's user: which flag, which ec2rc.sh variable.  boto3 itself is used only for
what the adapter never does: the object store (S3 API) the elastiq wheel is staged in, and the
keys of boto3's own chain when they are embedded.
"""
from __future__ import annotations

import re
from typing import Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlparse

from elastiq.adapters.base import AdapterError, AuthError, ConfigError, TransientError
from elastiq.adapters.ec2.client import make_client
from elastiq.adapters.ec2.request import access_settings
from elastiq.adapters.ec2.translate import (CREDENTIALS_HINT, error_code, error_from_exception,
                                            not_implemented)
from elastiq.adapters.ec2.config import Settings as EC2Section

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
            "ec2.aws_secret_access_key": "EC2_SECRET_KEY",
            "ec2.security_groups": "--security-group", "ec2.subnet_id": "--subnet-id"}
_SETTING = re.compile(r"\bec2\.[a-z0-9_]+(?![\w-]|\.\w)")
HINTS = {AuthError: "ecm takes the keys for {where} from EC2_ACCESS_KEY and EC2_SECRET_KEY: "
                    "source your ec2rc.sh",
         TransientError: "ecm asks the EC2 endpoint in EC2_URL"}
NO_CREDENTIALS = ("no cloud credentials: source your ec2rc.sh (it sets EC2_ACCESS_KEY, "
                  "EC2_SECRET_KEY and EC2_URL; S3_URL too on OpenStack), or on AWS set "
                  "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or an AWS profile")
URL_RULE = ("expected http:// or https://, a host, and optionally a port and a path, e.g. "
            "https://ec2.example.org:8773/services/Cloud")
_URL = re.compile(r"https?://[A-Za-z0-9.\[\]:-]+(/\S*)?")
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
        _check_environment(environ)
        try:
            self._key, self._secret, url = access_settings(section, environ)
            self._ec2, self._secrets = make_client(section, environ, 3, timeout_s, 2 * timeout_s)
        except ConfigError as err:
            raise self._in_ecm_words(err) from None
        is_aws = not url or (urlparse(url).hostname or "").endswith("amazonaws.com")
        self.endpoint = Endpoint(url, region, self._key,
                                 url or f"AWS ({section.region})", is_aws,
                                 environ.get("S3_URL") or None)
        if not self._key and self._session().get_credentials() is None:
            raise ConfigError(NO_CREDENTIALS)

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

    def flavour_shapes(self, name: str) -> Optional[Dict[str, Tuple[int, int]]]:
        """(cpus, MiB) of the instance types of ``name``'s family (``c5.*`` for
        ``c5.2xlarge``); None when the API cannot describe instance types."""
        prefix = name.rpartition(".")[0]
        query = {"Filters": [{"Name": "instance-type", "Values": [f"{prefix}.*" if prefix else name]}]}
        shapes: Dict[str, Tuple[int, int]] = {}
        while True:
            page = self._call("DescribeInstanceTypes", self._ec2.describe_instance_types,
                              unsupported=UNKNOWN, **query)
            if page is UNKNOWN:
                return None
            for item in (page or {}).get("InstanceTypes", []):
                cpus = (item.get("VCpuInfo") or {}).get("DefaultVCpus")
                memory = (item.get("MemoryInfo") or {}).get("SizeInMiB")
                if item.get("InstanceType") and cpus and memory:
                    shapes[item["InstanceType"]] = (int(cpus), int(memory))
            token = (page or {}).get("NextToken")
            if not token:
                return shapes
            query["NextToken"] = token

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

    def staging_problem(self) -> Optional[str]:
        if self.endpoint.is_aws or self.endpoint.s3_url:
            return None
        return (f"no object store for {self.endpoint.shown}: ecm stages this elastiq's wheel "
                "in the cloud's object store (S3 API) by default; set S3_URL to its endpoint "
                "(ec2rc.sh sets it on OpenStack), or pass --elastiq-source")

    def stage_file(self, path: str, bucket: str, key: str, expires_s: int) -> Tuple[str, bool]:
        problem = self.staging_problem()
        if problem:
            raise ConfigError(problem)
        from botocore.config import Config as BotoConfig
        s3 = self._session().client(
            "s3", endpoint_url=self.endpoint.s3_url, verify=self._section.ca_bundle or None,
            config=BotoConfig(signature_version="s3v4", s3={"addressing_style": "path"},
                              retries={"mode": "standard", "total_max_attempts": 3}))
        created = self._call("HeadBucket", s3.head_bucket, absent="bucket", Bucket=bucket) is None
        if created:
            region = self._section.region
            where = {} if region == DEFAULT_REGION else {
                "CreateBucketConfiguration": {"LocationConstraint": region}}
            self._call("CreateBucket", s3.create_bucket, Bucket=bucket, **where)
        with open(path, "rb") as body:
            self._call("PutObject", s3.put_object, Bucket=bucket, Key=key, Body=body)
        return s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                         ExpiresIn=expires_s), created

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
        """``err`` as ecm's user reads it: ecm's names (EC2_URL, KEY_NAME, --image...) for
        elastiq.yaml's keys, and where ecm takes what to fix."""
        text = str(err).replace(f"; {CREDENTIALS_HINT}", "")
        text = _SETTING.sub(lambda m: SETTINGS.get(m.group(0), m.group(0)), text)
        key = getattr(err, "key", None)
        if key in SETTINGS:
            return ConfigError(text, key=key)
        hint = next((text for kind, text in HINTS.items() if isinstance(err, kind)), None)
        if hint:
            text = f"{text} ({hint.format(where=self.endpoint.shown)})"
        return ConfigError(text, key=key) if isinstance(err, ConfigError) else type(err)(text)


def _check_environment(environ: Mapping[str, str]) -> None:
    """ec2rc.sh's variables as the user set them: both keys or neither, URLs that are URLs."""
    given = [name for name in ("EC2_ACCESS_KEY", "EC2_SECRET_KEY") if environ.get(name)]
    if len(given) == 1:
        missing = "EC2_SECRET_KEY" if given == ["EC2_ACCESS_KEY"] else "EC2_ACCESS_KEY"
        raise ConfigError(f"{missing} is not set ({given[0]} is): source your ec2rc.sh, which "
                          "sets both")
    for name in ("EC2_URL", "S3_URL"):
        value = environ.get(name)
        if value and not _URL.fullmatch(value):
            raise ConfigError(f"{name} {value!r} is not a valid endpoint URL: {URL_RULE}")


def _image(item: dict) -> Image:
    """An image of a DescribeImages answer; one without a name is shown by its description."""
    return Image(item["ImageId"], item.get("Name") or item.get("Description") or "",
                 item.get("CreationDate") or "")

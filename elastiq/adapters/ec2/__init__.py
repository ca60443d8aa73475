"""The EC2 API cloud (AWS and EC2-compatible clouds) through boto3: :mod:`.cloud` (the adapter),
:mod:`.client` (the boto3 client, the only other module importing botocore), :mod:`.request`
(RunInstances requests), :mod:`.translate` (API vocabulary -> domain), :mod:`.settings` (the
online check) and :mod:`.config` (the ``ec2`` section)."""

"""The native OpenStack cloud through openstacksdk: :mod:`.cloud` (the adapter, the only module
importing the SDK), :mod:`.translate` (Nova's vocabulary -> domain), :mod:`.settings` (the
online check) and :mod:`.config` (the ``openstack`` section)."""

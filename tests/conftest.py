# Shared pytest plugins.  EC2: fake cloud fixtures (moto server, fault proxy, configs).
# HTCondor: real pools from the provisioned trixie root (.ci/provision-htcondor-root.sh).
pytest_plugins = ["tests.support.ec2_fixtures", "tests.support.condor_fixtures",
                  "tests.support.openstack_fixtures"]

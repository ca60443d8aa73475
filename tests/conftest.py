# Shared pytest plugins.  EC2: fake cloud fixtures (moto server, fault proxy, configs).
pytest_plugins = ["tests.support.ec2_fixtures"]

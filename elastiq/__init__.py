"""elastiq: grows and shrinks an HTCondor pool on an IaaS cloud (EC2, OpenStack)."""

__version__ = "1.0.0.dev0"

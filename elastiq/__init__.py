"""elastiq: grows and shrinks an HTCondor pool on an EC2-API cloud."""

__version__ = "1.0.0.dev0"

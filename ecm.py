#!/usr/bin/env python3
"""Run the ecm wizard from a source checkout: ``python ecm.py [--help]`` (same as ``ecm``)."""
import sys

from ecm.wizard import main

if __name__ == "__main__":
    sys.exit(main())

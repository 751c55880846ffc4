#!/usr/bin/env python3
"""Run a command; print `<wall seconds> <peak RSS KiB of the largest child>`."""
import resource
import subprocess
import sys
import time

t = time.monotonic()
# Not /dev/null: GNU grep notices it and stops at the first match.
subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, check=False)
wall = time.monotonic() - t
print("%.2f %d" % (wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))

#!/usr/bin/env python3
"""Run a command; print `<wall seconds> <peak RSS KiB of the largest child>
<user CPU seconds> <kernel CPU seconds>`."""
import resource
import subprocess
import sys
import time

t = time.monotonic()
# Not /dev/null: GNU grep notices it and stops at the first match.
subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, check=False)
wall = time.monotonic() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%.2f %d %.2f %.2f" % (wall, ru.ru_maxrss, ru.ru_utime, ru.ru_stime))

#!/usr/bin/env python3
"""exit_status.py N CMD...: runs CMD and succeeds only if it exits with N."""
import subprocess
import sys

want = int(sys.argv[1])
got = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
if got != want:
    print(f"exit status {got}, expected {want}: {' '.join(sys.argv[2:])}")
    sys.exit(1)

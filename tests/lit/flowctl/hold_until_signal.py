"""Runs 'flowctl load ... --sim mlx5' (no --for), waits until it holds the
rules, interrupts it with SIGINT and prints what it printed and its exit
status: the rules must be removed on the signal."""
import signal
import subprocess
import sys

proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
first = proc.stdout.readline()
print(first, end="")
if "holding them until interrupted" in first:
    proc.send_signal(signal.SIGINT)
try:
    rest, _ = proc.communicate(timeout=20)
except subprocess.TimeoutExpired:
    proc.kill()
    print("flowctl did not stop on SIGINT")
    sys.exit(1)
print(rest, end="")
print("exit", proc.returncode)

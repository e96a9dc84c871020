"""A child process that changes a sysctl through the Guard, for the tests that
kill it (SIGKILL, SIGTERM) or let its failure counter fill up.

usage: guard_child.py hold|fail PARAM VALUE READY_FILE
  hold  apply VALUE, touch READY_FILE, sleep until a signal arrives
  fail  apply VALUE, touch READY_FILE, then record failed steps until the
        failure counter stops the run (exit 4 after the guard restored)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from cli_ai.errors import CliAiError
from cli_ai.safety.guard import FailureCounter, Guard
from cli_ai.tactician.backends.sysctl import SysctlBackend


def main() -> int:
    mode, param, value, ready = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    try:
        with Guard(SysctlBackend(), [param], netns_params=[param]) as guard:
            guard.apply({param: value})
            ready.write_text("applied\n")
            if mode == "hold":
                while True:
                    time.sleep(0.1)
            counter = FailureCounter(3)
            step = 0
            while True:
                step += 1
                guard.apply({param: value + step})
                counter.failure(f"step {step} failed on purpose")
    except CliAiError as exc:
        print(f"exit {exc.exit_code}: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())

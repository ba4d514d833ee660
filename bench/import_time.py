"""How much `import jupyter_dataops` adds to a kernel's start (budget: 150 ms).

Measured side by side in one run, best of N fresh interpreters each:
  figure   : python -c "import jupyter_dataops"   (and -X importtime's cumulative total)
  baseline : python -c "pass"                      (the interpreter's own start-up)
Prints the package's own cost, the ratio of the two wall times, and the ratio to the budget.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

N = 15
BUDGET_MS = 150.0


def wall(code: str) -> float:
    best = float("inf")
    for _ in range(N):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def importtime_ms() -> float:
    best = float("inf")
    for _ in range(N):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import jupyter_dataops"],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        m = re.search(r"\|\s*(\d+) \| jupyter_dataops\s*$", err, re.M)
        assert m, err
        best = min(best, int(m.group(1)) / 1000)
    return best


def main() -> None:
    base = wall("pass")
    pkg = wall("import jupyter_dataops")
    cumulative = importtime_ms()
    print(f"interpreter start (baseline): {base:7.1f} ms")
    print(f"import jupyter_dataops:       {pkg:7.1f} ms  (ratio to baseline {pkg / base:.2f}x)")
    print(
        f"-X importtime cumulative:     {cumulative:7.1f} ms  "
        f"(ratio to the {BUDGET_MS:.0f} ms budget {cumulative / BUDGET_MS:.3f})"
    )


if __name__ == "__main__":
    main()

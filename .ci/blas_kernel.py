"""Print a second OpenBLAS kernel that this CPU runs, for re-running the notebooks under it.

    .venv/bin/python .ci/blas_kernel.py            # e.g. "Haswell" on an AVX-512 machine
    .venv/bin/python .ci/blas_kernel.py --default  # the kernel OpenBLAS picks by itself

numpy and scipy bundle OpenBLAS built for many CPUs; at start-up it picks the kernel for the
CPU (SkylakeX on AVX-512, Haswell on AVX2, Sandybridge on AVX, ...) unless the environment
variable OPENBLAS_CORETYPE names another. Kernels round differently, so an optimizer whose
path depends on the last bits can stop elsewhere; .ci/run runs nbval once with the variable
unset and once with the kernel printed here, so that no stored output depends on it.

The second kernel is the first of a preference list (by the default kernel) whose
instructions the CPU has (its flags in /proc/cpuinfo) and which OpenBLAS then reports as the
kernel in use in both numpy's and scipy's copies. Exit status 1, with a message on stderr,
when there is none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# instructions each kernel needs (x86 flags as /proc/cpuinfo spells them)
NEEDS = {
    "SkylakeX": {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"},
    "Haswell": {"avx2", "fma"},
    "Sandybridge": {"avx"},
    "Nehalem": {"sse4_2"},
    "Core2": {"ssse3"},
    "ARMV8": {"asimd"},  # the generic 64-bit ARM kernel (ARM flags: /proc/cpuinfo Features)
}
AVX512 = ("skylakex", "cooperlake", "sapphirerapids")
AVX2 = ("haswell", "zen")

_QUERY = (
    "import json, numpy, scipy.linalg\n"
    "from threadpoolctl import threadpool_info\n"
    "print(json.dumps(sorted({i.get('architecture') or '' for i in threadpool_info()\n"
    "                         if i.get('internal_api') == 'openblas'})))"
)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's instruction-set flags (x86 ``flags``, or ARM ``Features``)."""
    if not cpuinfo.is_file():
        return set()
    for line in cpuinfo.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def preferences(default: str) -> list[str]:
    """Candidate second kernels for a default kernel, best first."""
    d = default.lower()
    if d in AVX512:
        order = ["Haswell", "Sandybridge", "Nehalem"]
    elif d in AVX2:
        order = ["SkylakeX", "Sandybridge", "Nehalem"]
    else:
        order = ["Nehalem", "Core2", "ARMV8"]
    return [k for k in order if k.lower() != d]


def candidates(flags: set[str], default: str) -> list[str]:
    """The preferred kernels that the CPU with ``flags`` can run."""
    return [k for k in preferences(default) if NEEDS[k] <= flags]


def kernels_in_use(coretype: str | None) -> list[str]:
    """The kernels OpenBLAS reports (numpy's and scipy's copies) with OPENBLAS_CORETYPE set."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    out = subprocess.run([sys.executable, "-c", _QUERY], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def main(argv: list[str]) -> int:
    default = kernels_in_use(None)
    if len(default) != 1:
        print(f"error: numpy and scipy report OpenBLAS kernels {default}; expected one",
              file=sys.stderr)
        return 1
    if argv[1:] == ["--default"]:
        print(default[0])
        return 0
    flags = cpu_flags()
    for kernel in candidates(flags, default[0]):
        if [k.lower() for k in kernels_in_use(kernel)] == [kernel.lower()]:
            print(kernel)
            return 0
    print(f"error: no second OpenBLAS kernel for this CPU (default {default[0]}, tried "
          f"{preferences(default[0])}, CPU flags include "
          f"{sorted(flags & set().union(*NEEDS.values()))})", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""The choice of the second OpenBLAS kernel that .ci/run re-runs the notebooks under."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _publishing import require

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".ci" / "blas_kernel.py"
_spec = importlib.util.spec_from_file_location("blas_kernel", SCRIPT)
bk = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bk)

AVX512 = {"sse4_2", "ssse3", "avx", "avx2", "fma", "avx512f", "avx512cd", "avx512bw",
          "avx512dq", "avx512vl", "amx_tile"}
AVX2 = {"sse4_2", "ssse3", "avx", "avx2", "fma"}


@pytest.mark.parametrize(
    ("flags", "default", "expected"),
    [
        (AVX512, "SkylakeX", ["Haswell", "Sandybridge", "Nehalem"]),
        (AVX512, "SapphireRapids", ["Haswell", "Sandybridge", "Nehalem"]),
        (AVX512, "Haswell", ["SkylakeX", "Sandybridge", "Nehalem"]),
        (AVX2, "Haswell", ["Sandybridge", "Nehalem"]),  # no AVX-512: Sandybridge
        (AVX2, "Zen", ["Sandybridge", "Nehalem"]),
        ({"sse4_2", "ssse3", "avx"}, "Sandybridge", ["Nehalem", "Core2"]),
        ({"fp", "asimd"}, "NeoverseN1", ["ARMV8"]),
        (set(), "SkylakeX", []),
    ],
)
def test_candidates_follow_the_cpu_flags(flags, default, expected):
    assert bk.candidates(flags, default) == expected


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 fma\n\nprocessor\t: 1\n")
    assert bk.cpu_flags(info) == {"fpu", "sse4_2", "avx", "avx2", "fma"}
    assert bk.cpu_flags(tmp_path / "missing") == set()


def test_the_printed_kernel_is_another_one_that_openblas_uses():
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    run = [sys.executable, str(SCRIPT)]
    default = subprocess.run([*run, "--default"], env=env, capture_output=True, text=True,
                             check=True).stdout.strip()
    proc = subprocess.run(run, env=env, capture_output=True, text=True)
    if proc.returncode != 0:  # a CPU with one kernel only: the script says so
        assert "no second OpenBLAS kernel" in proc.stderr
    require(proc.returncode == 0, proc.stderr.strip())
    second = proc.stdout.strip()
    assert second and second.lower() != default.lower()
    assert bk.NEEDS[second] <= bk.cpu_flags()
    assert [k.lower() for k in bk.kernels_in_use(second)] == [second.lower()]

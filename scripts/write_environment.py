"""Write environment.yml from requirements.lock, so conda users get the same pins.

Run after changing requirements.lock:  .venv/bin/python scripts/write_environment.py
tests/test_pins.py fails when the two files disagree.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    pins = [
        line.strip()
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    lines = [
        "# Generated from requirements.lock by scripts/write_environment.py: do not edit.",
        "# conda env create -f environment.yml && conda activate mlm-course",
        "name: mlm-course",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        "  - python=3.11",
        "  - pip",
        "  - pip:",
        *[f"      - {pin}" for pin in pins],
        "      - -e .",
        "",
    ]
    (ROOT / "environment.yml").write_text("\n".join(lines))


if __name__ == "__main__":
    main()

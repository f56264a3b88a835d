#!/usr/bin/env python3
"""nvmm-port command line (thin wrapper; also installed as `nvmm-port`)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nvmm_port.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

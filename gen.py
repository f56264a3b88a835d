#!/usr/bin/env python3
"""nvmm-port command line (thin wrapper; also installed as `nvmm-port`)."""
import signal
import sys

if __name__ == "__main__":
    # Ctrl-C or SIGTERM while the package is still being imported: exit 130 quietly (main() handles
    # them from then on, and cleans up after itself).  Once main() has returned, a late signal is
    # held (blocked) so that the exit status stays the command's, not a kill by that signal.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    late = {signal.SIGINT, signal.SIGTERM}
    try:
        from pathlib import Path
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from nvmm_port.cli import main
        rc = main()
        signal.pthread_sigmask(signal.SIG_BLOCK, late)
    except KeyboardInterrupt:
        signal.pthread_sigmask(signal.SIG_BLOCK, late)
        rc = 130
    sys.exit(rc)

"""``python -m anomaly ...``: runs the ``anomaly`` command installed with
this package (useful where the environment's scripts folder is not on
PATH), or says how to get it.

A wheel built by ``scripts/build-wheel`` installs the command, the Rust
binary itself, into the environment's scripts folder (``bin/anomaly``,
``Scripts\\anomaly.exe``). ``pip install .`` from a checkout builds the
Python package only: then this explains where the command comes from.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

EXE = "anomaly.exe" if os.name == "nt" else "anomaly"

MISSING = """\
anomaly: the `anomaly` command is not installed in this environment ({prefix}).
This package was installed from source (`pip install .`), which builds the
Python module only. To get the command too, install a wheel built with
`scripts/build-wheel` (pip install dist/anomaly-*.whl), or build it from the
checkout with `cargo build --release -p anomaly-cli` (target/release/{exe})."""


def find_command() -> Path | None:
    """The ``anomaly`` binary installed with this package, if any: in the
    scripts folder of this environment (or of the user scheme, for
    ``pip install --user``)."""
    folders = [sysconfig.get_path("scripts")]
    user = f"{os.name}_user"
    if user in sysconfig.get_scheme_names():
        folders.append(sysconfig.get_path("scripts", user))
    for folder in folders:
        path = Path(folder) / EXE
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = find_command()
    if command is None:
        print(MISSING.format(prefix=sys.prefix, exe=EXE), file=sys.stderr)
        return 127
    if os.name == "nt":
        # Ctrl+C reaches every process of the console: the command handles
        # it (finishing its batch); this one waits for its exit code.
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        return subprocess.call([str(command), *args])
    # Become the command: same pid, signals and exit code.
    os.execv(command, [str(command), *args])
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())

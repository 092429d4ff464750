"""Entry point of the executable (PyInstaller runs this file): the same as `python -m gateway`."""

import os
import sys

# A windowed build (Windows, macOS .app) has no console: give print() and logging somewhere to write.
for name in ("stdout", "stderr"):
    if getattr(sys, name) is None:
        setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))

from gateway.__main__ import main  # noqa: E402 - after the stream fix above

if __name__ == "__main__":
    sys.exit(main())

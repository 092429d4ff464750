"""Entry point of the executable (PyInstaller runs this file): the same as `python -m gateway`."""

import os
import sys

# A windowed build (Windows, macOS .app) has no console: give print() and logging somewhere to write.
for name in ("stdout", "stderr"):
    if getattr(sys, name) is None:
        setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))

# The Linux bootloader points LD_LIBRARY_PATH at the unpacked libraries; the browser and file manager we
# start must get the user's own (our process already has its libraries, the loader reads it only at exec).
if sys.platform.startswith("linux") and getattr(sys, "frozen", False):
    if "LD_LIBRARY_PATH_ORIG" in os.environ:
        os.environ["LD_LIBRARY_PATH"] = os.environ["LD_LIBRARY_PATH_ORIG"]
    else:
        os.environ.pop("LD_LIBRARY_PATH", None)

from gateway.__main__ import main  # noqa: E402 - after the stream fix above

if __name__ == "__main__":
    sys.exit(main())

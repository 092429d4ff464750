"""Copy text to the system clipboard with the tool each desktop has (no extra Python package)."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys

logger = logging.getLogger(__name__)

LINUX_TOOLS = (["wl-copy"], ["xclip", "-selection", "clipboard"], ["xsel", "--clipboard", "--input"])


def copy_text(text: str) -> bool:
    """Put text on the clipboard; False (and a log line) when no clipboard tool is available."""
    if sys.platform == "win32":
        candidates = [["clip"]]
    elif sys.platform == "darwin":
        candidates = [["pbcopy"]]
    else:
        candidates = [tool for tool in LINUX_TOOLS if shutil.which(tool[0])]
    for command in candidates:
        try:
            subprocess.run(command, input=text.encode("utf-16le" if command == ["clip"] else "utf-8"),
                           check=True, timeout=5, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return True
        except (OSError, subprocess.SubprocessError) as exc:
            logger.debug("clipboard via %s failed: %s", command[0], exc)
    logger.warning("no clipboard tool found (install xclip, xsel or wl-clipboard); open the admin page "
                   "from the tray instead")
    return False

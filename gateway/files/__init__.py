"""Files: uploads kept by the gateway, output files on workers, and finding a file for /view."""

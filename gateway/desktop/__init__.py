"""The desktop app: the gateway on a thread with a tray icon, one instance per data folder, per-user paths."""

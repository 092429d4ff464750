"""The ComfyUI editor through the gateway: its user data, its static files and the views it reads."""

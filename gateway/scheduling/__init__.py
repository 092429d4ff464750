"""Pure decisions without I/O: which job goes where, what jobs cost, what workers can run, ComfyUI's checks."""

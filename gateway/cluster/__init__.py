"""Several gateway instances: what they share through Redis."""

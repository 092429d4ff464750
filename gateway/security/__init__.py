"""Security rules shared by every layer: redaction of secrets, tokens, host names, file modes, addresses."""

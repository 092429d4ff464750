"""Clients: the relay of worker events to client sockets, the wiring that feeds it, and webhooks."""

"""Listening sockets, and the master/worker process model."""

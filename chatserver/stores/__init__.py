"""State shared between instances: one `Store` protocol, a memory and a Redis twin."""

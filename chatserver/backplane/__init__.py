"""The Redis plumbing that the stores and the transport share: `REDIS_URL` parsed once into a
`Topology`, clients for each of its kinds, the channel of each room, what a store publishes to
the other instances (`publish`), and the subscriber that follows a Cluster's masters (`shards`).
It knows nothing of chat rules, stores or Socket.IO."""

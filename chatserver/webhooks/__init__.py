"""Webhooks: what happened in the chat, POSTed to the app's backend, signed, at least once,
in order per room, and never in the way of the chat itself.

`events` names the events and their JSON; `signing` the signature a receiver checks;
`memory_queue` keeps waiting events in process memory (embedded mode); `delivery` posts
them, one at a time per room and many rooms at once, retrying with backoff.
"""

"""Every reach into python-socketio's and python-engineio's internals, in one package.

python-socketio's `AsyncServer` with python-engineio underneath, plus what a public
server needs and the libraries leave out:
- a frame or packet no client could have sent closes that connection with one warning
  line (the libraries log a traceback and carry on, or leave the socket half-open);
- events named like the libraries' own (`connect`, `disconnect`, ...) are unknown events;
- broadcasts are encoded once and written straight to each idle WebSocket (`engine`),
  through client managers that keep a room's messages in `seq` order (`managers`);
- a client that stops reading is cut off once `max_backlog` packets or
  `max_backlog_bytes` bytes wait for it; it catches up with `since`;
- an address may hold at most `max_connections_per_address` connections; a handshake
  past that is answered `429 rate_limited`.
These hooks override private methods of python-socketio and python-engineio; the server
refuses to start on versions other than `TESTED_VERSIONS` (`check_library_versions`).
"""

from .engine import GuardedEngineServer
from .fanout import NAMESPACE, SocketIOFanout, SocketIOPublisher
from .managers import ChatManager, ChatRedisManager
from .server import (
    RESERVED_EVENTS,
    TESTED_VERSIONS,
    ChatSocketServer,
    ReservedEvent,
    UntestedLibrary,
    check_library_versions,
)
from .websocket import websocket_text_frame

__all__ = ["NAMESPACE", "RESERVED_EVENTS", "TESTED_VERSIONS", "ChatManager", "ChatRedisManager", "ChatSocketServer",
           "GuardedEngineServer", "ReservedEvent", "SocketIOFanout", "SocketIOPublisher", "UntestedLibrary",
           "check_library_versions", "websocket_text_frame"]

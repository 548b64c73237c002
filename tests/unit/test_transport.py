"""The transport module's own pieces: the version guard and the pre-built WebSocket frame."""

from __future__ import annotations

import pytest
from wsproto.frame_protocol import FrameProtocol, Opcode

from chatserver.transport import TESTED_VERSIONS, UntestedLibrary, check_library_versions, websocket_text_frame


def test_the_installed_libraries_are_the_tested_ones():
    check_library_versions()


def test_another_version_refuses_to_start_with_one_line():
    installed = {**TESTED_VERSIONS, "python-engineio": "4.99.0"}
    with pytest.raises(UntestedLibrary) as error:
        check_library_versions(installed.__getitem__)
    assert "python-engineio 4.99.0" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 1_000_000])
def test_frames_decode_with_an_independent_websocket_parser(size: int):
    payload = ("x" * max(size - 2, 0) + "é")[:size] if size else ""
    encoded = payload.encode()
    client = FrameProtocol(client=True, extensions=[])
    client.receive_bytes(websocket_text_frame(encoded))
    frames = list(client.received_frames())
    assert len(frames) == 1
    assert frames[0].opcode is Opcode.TEXT and frames[0].frame_finished and frames[0].message_finished
    assert frames[0].payload == payload

"""Fuzzing HTTP20Connection: the server's half of the connection is arbitrary.

Two harnesses play a server that writes a script and closes (see ``harness.py``):

* ``test_arbitrary_server_bytes``: any bytes at all, sometimes behind a valid SETTINGS frame so
  that the h2 frame parser, not only the first-frame check, sees them;
* ``test_structured_frames``: a SETTINGS preface, then random frames built with ``hyperframe``
  and ``hpack`` (random types, flags, stream ids, settings, header blocks, padded DATA,
  CONTINUATION, PUSH_PROMISE, GOAWAY...), usually around a plausible response to stream 1
  whose body may be compressed, then random byte mutations of the whole.

The client sends a request (sometimes with a body), fetches the response and reads it in one
of several ways, optionally collects pushes and sends a second request, then closes. The
property (``harness.check_outcome``): it all ends normally or with a documented hyper
exception, in bounded time, and hyper closes its sockets.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hyper import HTTP20Connection
from tests.fuzz.h2frames import SETTINGS, frame_script, raw_frame, settings_pairs, settings_payload
from tests.fuzz.harness import CLIENT_TIMEOUT, ScriptedPeer, check_outcome, consume, fuzz

# -- the client side --------------------------------------------------------------------------

read_modes = st.sampled_from(["read", "amt", "chunked", "iter", "raw", "close", "trailers"])


@st.composite
def client_plan(draw: st.DrawFn) -> dict[str, Any]:
    """What the client does with the connection."""
    return {
        "push": draw(st.booleans()),
        "body": draw(st.sampled_from([None, None, None, b"", b"upload", b"x" * 70000])),
        "mode": draw(read_modes),
        "amt": draw(st.sampled_from([1, 7, 100, 65536])),
        "second": draw(st.integers(0, 4)) == 0,
        # The script written before the request arrives (see ScriptedPeer).
        "early": draw(st.integers(0, 4)) == 0,
    }


def drive(scripts: list[bytes], plan: dict[str, Any]) -> ScriptedPeer:
    """Run one client session against ``scripts`` and check the property."""
    peer = ScriptedPeer(scripts, early=plan["early"])
    with peer.installed():
        conn = HTTP20Connection(
            "fuzz.invalid", 80, secure=False, enable_push=plan["push"], timeout=CLIENT_TIMEOUT
        )

        def session() -> None:
            try:
                stream_id = conn.request("POST" if plan["body"] else "GET", "/", body=plan["body"])
                response = conn.get_response(stream_id)
                _ = (response.status, response.headers)
                if plan["push"]:
                    for push in conn.get_pushes(stream_id, capture_all=True):
                        _ = push.request_headers
                        consume(push.get_response(), plan)
                consume(response, plan)
                if plan["second"]:
                    conn.get_response(conn.request("GET", "/again")).read()
            finally:
                conn.close()

        check_outcome(session)
        # Whatever happened, close() must have closed every socket (checked on leaving).
        conn.close()
    return peer


@fuzz(ci_default=300)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda payload, tail: raw_frame(SETTINGS, 0, 0, settings_payload(payload)) + tail,
            settings_pairs,
            st.binary(max_size=300),
        ),
    ),
    client_plan(),
)
def test_arbitrary_server_bytes(script: bytes, plan: dict[str, Any]) -> None:
    """Any bytes at all from the server: a documented hyper error or a response."""
    drive([script], plan)


@fuzz(ci_default=500)
@given(frame_script(), client_plan())
def test_structured_frames(script: bytes, plan: dict[str, Any]) -> None:
    """Random but well-framed HTTP/2 traffic around a response, then mutations."""
    drive([script], plan)

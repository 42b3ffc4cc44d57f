"""Coverage-guided fuzzing of HTTP20Connection with Atheris (libFuzzer), for long local runs.

Not collected by pytest (the name does not start with ``test_``). Usage, from the repository
root::

    pip install atheris
    python tests/fuzz/atheris_h2.py -max_total_time=600 [corpus_dir]

Each input is split by a FuzzedDataProvider into a few client choices (read mode, push,
a second request) and the server's bytes, which follow a valid SETTINGS frame half the time.
The property is the one of the hypothesis harnesses (``harness.check_outcome``): a normal
end or a documented hyper exception, in bounded time. A violation raises, which libFuzzer
reports as a crash with the input saved; turn it into a test in ``test_fuzz_regressions.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

with atheris.instrument_imports(include=["hyper", "h2", "hpack", "hyperframe"]):
    from hyper import HTTP20Connection

from tests.fuzz.harness import CLIENT_TIMEOUT, ScriptedPeer, check_outcome

#: An empty SETTINGS frame: the server's preface.
SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
MODES = ("read", "amt", "chunked", "raw")


def one_input(data: bytes) -> None:
    """libFuzzer's entry point: one client session against the bytes in ``data``."""
    provider = atheris.FuzzedDataProvider(data)
    mode = MODES[provider.ConsumeIntInRange(0, len(MODES) - 1)]
    push = provider.ConsumeBool()
    second = provider.ConsumeBool()
    early = provider.ConsumeBool()
    script = (SETTINGS if provider.ConsumeBool() else b"") + provider.ConsumeBytes(
        provider.remaining_bytes()
    )
    peer = ScriptedPeer([script], early=early)
    with peer.installed():
        conn = HTTP20Connection(
            "fuzz.invalid", 80, secure=False, enable_push=push, timeout=CLIENT_TIMEOUT
        )

        def session() -> None:
            try:
                response: Any = conn.get_response(conn.request("GET", "/"))
                if mode == "read":
                    response.read()
                elif mode == "raw":
                    response.read(decode_content=False)
                elif mode == "amt":
                    while response.read(7):
                        pass
                else:
                    for _ in response.read_chunked():
                        pass
                if push:
                    for pushed in conn.get_pushes():
                        pushed.get_response().read()
                if second:
                    conn.get_response(conn.request("GET", "/again")).read()
            finally:
                conn.close()

        check_outcome(session)


def main() -> None:
    """Run libFuzzer with the command-line arguments."""
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

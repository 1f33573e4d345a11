"""The server process itself: readiness line on stdout, clean SIGTERM shutdown."""

import grpc

from conftest import READY_RE, ServerProcess
from helpers import Api


def test_ready_line_and_clean_sigterm_exit(tmp_path):
    server = ServerProcess("lifecycle", "0s", tmp_path)
    server.start()
    try:
        assert READY_RE.match(server.ready_line)
        port = int(server.addr.rsplit(":", 1)[1])
        assert port > 0
        channel = grpc.insecure_channel(server.addr)
        api = Api(channel, server.addr, "lifecycle")
        # it really serves on the announced port
        disk = api.ready_disk("fprocesstest")
        assert api.get_disk(disk.id) == disk
        channel.close()
    finally:
        code = server.stop()
    assert code == 0, f"server did not exit cleanly on SIGTERM (exit code {code})\n{server.stderr_tail()}"
    extra = server.extra_stdout.decode("utf-8", "replace").strip()
    assert extra == "", f"server printed more than one stdout line: {extra!r}"

"""moto in server mode, one request at a time.

`moto_server` serves requests on many threads, and moto's DynamoDB does not lock: two
concurrent conditional PutItems on one key can both pass their condition, and a failed
TransactWriteItems restores a snapshot of the whole table, erasing writes other threads made
meanwhile. Real DynamoDB makes each conditional write and transaction atomic. Serving requests
one at a time gives the tests that atomicity (concurrency still happens in the clients: their
requests interleave, only their execution inside the emulator is serialized).

Usage: moto_serial.py HOST PORT
"""
import os
import signal
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()

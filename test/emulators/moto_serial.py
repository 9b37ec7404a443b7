"""moto in server mode, one request at a time.

`moto_server` serves requests on many threads, and moto's DynamoDB does not lock: two
concurrent conditional PutItems on one key can both pass their condition, and a failed
TransactWriteItems restores a snapshot of the whole table, erasing writes other threads made
meanwhile. Real DynamoDB makes each conditional write and transaction atomic. Serving requests
one at a time gives the tests that atomicity (concurrency still happens in the clients: their
requests interleave, only their execution inside the emulator is serialized).

It also pages what moto returns whole: moto's DescribeSnapshots, DescribeVolumes and
DescribeImages ignore MaxResults and NextToken, and its DescribeLaunchTemplates and
DescribeLaunchTemplateVersions cut the list at MaxResults with no NextToken (the rest is lost).
EC2 pages these; so do the clients under test, and the page counts they report must be real.

Usage: moto_serial.py HOST PORT
"""
import os
import signal
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


PAGED = {
    "describe_snapshots": "Snapshots",
    "describe_volumes": "Volumes",
    "describe_images": "Images",
    "describe_launch_templates": "LaunchTemplates",
    "describe_launch_template_versions": "LaunchTemplateVersions",
}


def page_ec2_listings() -> None:
    """Wraps each listing: moto computes the whole list, this returns the page MaxResults/NextToken ask for."""
    from moto.core.responses import ActionResult
    from moto.ec2.responses import EC2Response

    def paged(original, key):
        def handler(self):
            max_results = self._get_int_param("MaxResults")
            if max_results is None:
                return original(self)
            start = int(self._get_param("NextToken") or 0)
            get_int = self._get_int_param
            # Ask moto for everything, then cut the page.
            self._get_int_param = lambda name, if_none=None: 10**9 if name == "MaxResults" else get_int(name, if_none)
            try:
                result = original(self)
            finally:
                del self._get_int_param
            body = dict(result.result)
            items = list(body.get(key) or [])
            body[key] = items[start : start + max_results]
            if start + max_results < len(items):
                body["NextToken"] = str(start + max_results)
            else:
                body.pop("NextToken", None)
            return ActionResult(body)

        return handler

    for method, key in PAGED.items():
        setattr(EC2Response, method, paged(getattr(EC2Response, method), key))


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    page_ec2_listings()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()

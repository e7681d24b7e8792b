"""What stands between a browser and a Cloud Run service behind IAM, for the local Cloud Run
profile (docker-compose.cloudrun.yml) and the tests: like `gcloud run services proxy`, it
forwards every request to the service with its `Authorization` header replaced by
`Bearer <token>`, whatever the browser sent (a basic-auth login included).

    python docker/cloudrun-proxy.py --listen 127.0.0.1:5555 --upstream http://flower:5555

The token is CLOUDRUN_PROXY_TOKEN (a stand-in for an identity token; Cloud Run checks it, the
container only sees it). Standard library only: it runs in the mlsys image as it is.
"""

from __future__ import annotations

import argparse
import http.client
import os
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: Headers that belong to one connection, not to the request (RFC 9110 section 7.6.1).
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


def handler(upstream: urllib.parse.SplitResult, token: str) -> type[BaseHTTPRequestHandler]:
    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {
                name: value
                for name, value in self.headers.items()
                if name.lower() not in HOP_BY_HOP | {"host", "authorization"}
            }
            headers["Authorization"] = f"Bearer {token}"
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                payload = answer.read()
            except OSError as error:
                self.send_error(502, f"upstream unreachable: {error}")
                return
            finally:
                connection.close()
            self.send_response(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP | {"content-length"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward

    return Forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:5555", help="host:port to serve on")
    parser.add_argument("--upstream", required=True, help="base URL of the service")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    upstream = urllib.parse.urlsplit(args.upstream)
    token = os.environ.get("CLOUDRUN_PROXY_TOKEN", "local-identity-token")
    server = ThreadingHTTPServer((host, int(port)), handler(upstream, token))
    print(f"cloudrun-proxy: {args.listen} -> {args.upstream} (Authorization: Bearer ...)")
    server.serve_forever()


if __name__ == "__main__":
    main()

"""`python -m bench.receiver --port N`: a webhook receiver that answers every event at once
(`204`), for the bench's `--webhooks answering` runs. It checks nothing: what it costs the
chat server to send is what is measured."""

from __future__ import annotations

import argparse

from aiohttp import web


async def take(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=204)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_post("/hooks", take)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()

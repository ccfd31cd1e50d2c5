"""The baseline the receiver is compared with: a bare Starlette endpoint that reads the body and answers 200,
served by uvicorn with the options `hsqbo receiver` uses (services/receiver/__init__.py). Run as
`python -m benchmarks._bare_endpoint --port N`."""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def read_and_accept(request: Request) -> Response:
    await request.body()
    return Response(status_code=200)


async def ready(request: Request) -> Response:
    return Response(status_code=200)


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/webhooks/{provider}", read_and_accept, methods=["POST"]),
            Route("/readyz", ready),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False, proxy_headers=True
    )


if __name__ == "__main__":
    main()

"""The baseline: asyncio + httpx + a semaphore, the same emulator and S3, no orchestration.

Prints one JSON line: images, steady-state seconds (first request to last upload).
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time

import httpx

from catalog_images.destination.storage import S3Settings


async def main(url: str, bucket: str, rows: int, concurrency: int) -> None:
    settings = S3Settings.from_environment()
    semaphore = asyncio.Semaphore(concurrency)
    endpoint = f"{url}/v1beta/models/gemini-3-pro-image:generateContent"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    first_request: float | None = None
    last_upload = 0.0
    done = 0
    async with httpx.AsyncClient(limits=limits, timeout=60) as client, \
            settings.aio_client_context(concurrency) as s3:

        async def one(index: int) -> None:
            nonlocal first_request, last_upload, done
            body = {"contents": [{"parts": [{"text": f"Studio photo of bare product {index}"}]}],
                    "generationConfig": {"responseModalities": ["IMAGE"],
                                         "imageConfig": {"aspectRatio": "1:1",
                                                         "imageSize": "1K"}}}
            async with semaphore:
                first_request = first_request or time.monotonic()
                response = await client.post(endpoint, json=body)
                parts = response.json()["candidates"][0]["content"]["parts"]
                data = next(p["inlineData"]["data"] for p in parts if "inlineData" in p)
                await s3.put_object(Bucket=bucket, Key=f"bare/{index}.png",
                                    Body=base64.b64decode(data), ContentType="image/png")
                last_upload = time.monotonic()
                done += 1

        await asyncio.gather(*(one(i) for i in range(rows)))
    print(json.dumps({"images": done, "steady_s": last_upload - (first_request or 0)}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))

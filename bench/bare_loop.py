"""The baseline: asyncio + httpx + a semaphore, the same emulator and S3, no orchestration.

Prints one JSON line: images, steady-state seconds (first request to last upload) and the
process's own peak RSS (VmHWM, MiB). It holds every answer whole (body, JSON, decoded bytes).

    python -m bench.bare_loop URL BUCKET ROWS CONCURRENCY [RESOLUTION]
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time

import httpx

from catalog_images.destination.storage import S3Settings


def own_peak_mib() -> float:
    """This process's peak RSS (VmHWM) in MiB."""
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return kib / 1024


async def main(url: str, bucket: str, rows: int, concurrency: int,
               resolution: str = "1K") -> None:
    settings = S3Settings.from_environment()
    semaphore = asyncio.Semaphore(concurrency)
    endpoint = f"{url}/v1beta/models/gemini-3-pro-image:generateContent"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    first_request: float | None = None
    last_upload = 0.0
    done = 0
    # 180 s as the pipeline's whole-answer deadline in bench.payload: a 27 MB answer to 32
    # clients on a loaded machine can stall longer than a minute.
    async with httpx.AsyncClient(limits=limits, timeout=180) as client, \
            settings.aio_client_context(concurrency) as s3:

        async def one(index: int) -> None:
            nonlocal first_request, last_upload, done
            body = {"contents": [{"parts": [{"text": f"Studio photo of bare product {index}"}]}],
                    "generationConfig": {"responseModalities": ["IMAGE"],
                                         "imageConfig": {"aspectRatio": "1:1",
                                                         "imageSize": resolution}}}
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
    print(json.dumps({"images": done, "steady_s": last_upload - (first_request or 0),
                      "peak_mib": own_peak_mib()}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
                     *sys.argv[5:6]))
